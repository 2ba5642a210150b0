/** @module Tests of the compile task: the binaries get the start task's flags. */

import assert from "node:assert/strict";
import { compileCommands, startFlags } from "../../scripts/compile.ts";

const denoJson = Deno.readTextFileSync(
  new URL("../../deno.json", import.meta.url),
);

Deno.test("compileCommands() builds both release binaries with the start task's flags", () => {
  const { flags } = startFlags(denoJson);
  assert.ok(flags.includes("-P=service"), "the permission set");
  assert.ok(
    flags.some((f) => f.startsWith("--v8-flags=")),
    "the V8 heap flags",
  );
  const commands = compileCommands(denoJson);
  assert.deepEqual(commands.map((c) => c.at(-2)), [
    "dist/lk-jwt-service_linux_amd64",
    "dist/lk-jwt-service_linux_arm64",
  ]);
  for (const command of commands) {
    assert.deepEqual(command.slice(2, 2 + flags.length), flags);
    assert.equal(command.at(-1), "main.ts");
  }
});

Deno.test("the service permission set grants no write, run, FFI or full system access", () => {
  const permissions = JSON.parse(denoJson).permissions.service;
  assert.deepEqual(Object.keys(permissions).sort(), ["env", "net", "read"]);
});

Deno.test("compileCommands() with host builds dist/lk-jwt-service for this machine", () => {
  const [command, ...rest] = compileCommands(denoJson, true);
  assert.equal(rest.length, 0);
  assert.ok(!command!.includes("--target"));
  assert.equal(command!.at(-2), "dist/lk-jwt-service");
});
