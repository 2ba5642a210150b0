/**
 * Turns multi-document YAML into objects using helm's own YAML parser, so the
 * deployment tests need no YAML package (the lockfile is frozen and owned by
 * the service). A throw-away chart reads the text from a file, parses each
 * document with `fromYaml` and prints them as one JSON line, which
 * `helm template` passes through verbatim.
 * @module
 */
import { join } from "node:path";
import { run } from "./_tools.ts";

const CONVERTER = `{{- $docs := list }}
{{- range $doc := regexSplit "(?m)^---[ \\\\t]*$" (.Files.Get "input.yaml") -1 }}
{{- $parsed := fromYaml $doc }}
{{- if hasKey $parsed "Error" }}{{ fail (printf "yaml2json: %s" (get $parsed "Error")) }}{{ end }}
{{- if $parsed }}{{ $docs = append $docs $parsed }}{{ end }}
{{- end }}
{{ toJson (dict "apiVersion" "v1" "kind" "List" "items" $docs) }}
`;

/**
 * Parses every non-empty document of `text` (as printed by `helm template`)
 * with the helm binary at `helm`.
 */
export async function parseYamlDocuments(
  helm: string,
  text: string,
): Promise<unknown[]> {
  const dir = await Deno.makeTempDir({ prefix: "yaml2json-" });
  try {
    await Deno.mkdir(join(dir, "templates"));
    await Deno.writeTextFile(
      join(dir, "Chart.yaml"),
      "apiVersion: v2\nname: yaml2json\nversion: 0.0.0\n",
    );
    await Deno.writeTextFile(join(dir, "input.yaml"), text);
    await Deno.writeTextFile(join(dir, "templates", "out.yaml"), CONVERTER);
    const out = await run(helm, [
      "template",
      "yaml2json",
      dir,
      "--show-only",
      "templates/out.yaml",
    ], { env: { HOME: dir } });
    if (out.code !== 0) {
      throw new Error(`helm could not parse the YAML: ${out.stderr.trim()}`);
    }
    const json = out.stdout.slice(out.stdout.indexOf("{"));
    return (JSON.parse(json) as { items: unknown[] }).items;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
