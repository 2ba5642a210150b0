/** @module Reads certificates with the openssl CLI, independently of Deno's TLS. */

import assert from "node:assert/strict";

/** `openssl x509 -noout -text` of a PEM certificate. */
export async function describe(pem: string): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: ["x509", "-noout", "-text"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(pem));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}
