/**
 * @module `deno task compile`: one static binary per architecture in dist/,
 * named like the reference's release files, with exactly the permission set
 * and V8 flags of the `start` task (so the black-box tests, which run that
 * task's flags, prove the binary's permissions).
 *
 * `--print` lists the commands instead of running them; `--host` builds only
 * `dist/lk-jwt-service` for the machine's own architecture (the container build).
 */

/** Release file name by Deno target triple. */
export const TARGETS: Record<string, string> = {
  "x86_64-unknown-linux-gnu": "lk-jwt-service_linux_amd64",
  "aarch64-unknown-linux-gnu": "lk-jwt-service_linux_arm64",
};

/** The flags of `deno task start` between `deno run` and the entry point. */
export function startFlags(
  denoJson: string,
): { flags: string[]; entry: string } {
  const start: string = JSON.parse(denoJson).tasks.start;
  const words = start.split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run") {
    throw new Error(
      `the start task must be "deno run …", not ${JSON.stringify(start)}`,
    );
  }
  const entry = words.at(-1)!;
  return { flags: words.slice(2, -1), entry };
}

/**
 * The `deno compile` argument lists, one per target (or one for the host).
 * Types are checked by `deno task check`; here `--no-check`, because the V8
 * heap limit given to the binary also applies to the compiler's own process.
 */
export function compileCommands(denoJson: string, host = false): string[][] {
  const { flags, entry } = startFlags(denoJson);
  const outputs: [string[], string][] = host
    ? [[[], "lk-jwt-service"]]
    : Object.entries(TARGETS).map((
      [target, name],
    ) => [["--target", target], name]);
  return outputs.map(([target, name]) => [
    "compile",
    "--no-check",
    ...flags,
    ...target,
    "--output",
    `dist/${name}`,
    entry,
  ]);
}

if (import.meta.main) {
  const commands = compileCommands(
    await Deno.readTextFile("deno.json"),
    Deno.args.includes("--host"),
  );
  for (const args of commands) {
    console.log(`deno ${args.join(" ")}`);
    if (Deno.args.includes("--print")) continue;
    const { code } = await new Deno.Command(Deno.execPath(), { args }).spawn()
      .status;
    if (code !== 0) Deno.exit(code);
  }
}
