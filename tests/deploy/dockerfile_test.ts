/** @module The Dockerfile: hadolint, and the properties the image must have. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { cacheDirs, findTool, ROOT, run, testWith } from "./_tools.ts";

const hadolint = findTool("hadolint", {
  candidates: cacheDirs().map((d) => join(d, "hadolint", "bin", "hadolint")),
  install: "scripts/install/hadolint.sh",
});
const dockerfile = Deno.readTextFileSync(join(ROOT, "Dockerfile"));
const instructions = dockerfile.split("\n").filter((l) => /^[A-Z]+ /.test(l));

testWith([hadolint], "hadolint finds nothing in the Dockerfile", async () => {
  const result = await run(hadolint.path!, ["Dockerfile"]);
  assert.equal(result.code, 0, result.stdout + result.stderr);
});

Deno.test("the Dockerfile builds with the official Deno image of the pinned version", () => {
  const pinned = /DENO_VERSION=([\d.]+)/.exec(
    Deno.readTextFileSync(join(ROOT, "scripts/install/deno.sh")),
  )![1];
  assert.ok(instructions.includes(`FROM denoland/deno:${pinned} AS build`));
  assert.ok(
    dockerfile.includes("scripts/compile.ts --host"),
    "the flags of scripts/compile.ts",
  );
});

Deno.test("the image runs as uid 1000 on a minimal base with a healthcheck on 8080", () => {
  const runStage = instructions.slice(
    instructions.findLastIndex((l) => l.startsWith("FROM ")),
  );
  assert.match(runStage[0]!, /^FROM gcr\.io\/distroless\/cc-debian12/);
  assert.ok(runStage.includes("USER 1000:1000"));
  assert.ok(runStage.includes("EXPOSE 8080"));
  assert.ok(runStage.some((l) => l.startsWith("HEALTHCHECK ")));
  assert.match(
    dockerfile,
    /CMD \["\/usr\/local\/bin\/lk-jwt-service", "healthcheck"\]/,
  );
});
