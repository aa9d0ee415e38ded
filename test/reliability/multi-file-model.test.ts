// A model file anywhere on disk may import sibling .ts files that import "kiln" themselves (red-team D6): the real
// `kiln` binary resolves "kiln" for every file, with no package.json beside them.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, expect, it } from "vitest";
import { FIXTURES } from "../golden.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-multi-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("a two-file model outside the package runs with the real binary, same tokens as models/llama.ts", () => {
  writeFileSync(
    join(dir, "helper.ts"),
    'import { RMSNorm } from "kiln";\nexport const makeNorm = (d: number, eps: number, o: { offset: number }) => new RMSNorm(d, eps, o);\n',
  );
  const source = readFileSync("models/llama.ts", "utf8");
  const edited = source
    .replace(/^import \{/m, 'import { makeNorm } from "./helper.ts";\nimport {')
    .replace("this.postNorm = new RMSNorm(c.hidden, c.eps, { offset: c.normOffset });", "this.postNorm = makeNorm(c.hidden, c.eps, { offset: c.normOffset });");
  expect(edited).toContain("makeNorm(c.hidden");
  writeFileSync(join(dir, "model.ts"), edited);
  const r = spawnSync(
    process.execPath,
    [resolve("bin/kiln.js"), "run", join(dir, "model.ts"), "--hf", `${FIXTURES}llama`, "--ids", "1,2,3", "--max-new-tokens", "1", "--no-typecheck"],
    { cwd: tmpdir(), encoding: "utf8" },
  );
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe("model llama: prompt [1,2,3] -> generated [343]\n");
}, 60_000);

it("an error the model's own code throws is the model's, with its file and line, not an internal error", async () => {
  const { kiln } = await import("../cli/kiln.ts");
  const file = join(dir, "boom.ts");
  writeFileSync(
    file,
    readFileSync("models/llama.ts", "utf8")
      .replace(
        "this.postNorm = new RMSNorm(c.hidden, c.eps, { offset: c.normOffset });",
        'this.postNorm = new RMSNorm(c.hidden, c.eps, { offset: c.normOffset });\n    if (c.hidden > 0) throw new Error("boom from create");',
      )
      .replace(/from "kiln"/g, `from ${JSON.stringify(resolve("src/index.ts"))}`),
  );
  const r = await kiln(["run", file, "--hf", `${FIXTURES}llama`, "--ids", "1", "--no-typecheck"]);
  expect(r.code).toBe(1);
  expect(r.err).toMatch(
    new RegExp(
      `^kiln: model 'llama' threw while building or tracing: boom from create \\(at ${file.replaceAll("/", "\\/").replaceAll(".", "\\.")}:\\d+:\\d+; KILN_DEBUG=1 shows the stack\\)\\n$`,
    ),
  );
});
