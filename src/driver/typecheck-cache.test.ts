// The type-check cache: hit while nothing the check read has changed; a change to the model or to a file it
// imports (or to Kiln's own sources) checks again; and the real check (child process) round-trips diagnostics.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { typecheckModelFile } from "./load-model-file.ts";
import { cachedTypecheck } from "./typecheck-cache.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-tc-"));
let saved: string | undefined;
beforeAll(() => {
  saved = process.env.KILN_CACHE_DIR;
  process.env.KILN_CACHE_DIR = join(dir, "cache");
});
afterAll(() => {
  if (saved === undefined) delete process.env.KILN_CACHE_DIR;
  else process.env.KILN_CACHE_DIR = saved;
});

describe("cachedTypecheck", () => {
  const model = join(dir, "m.ts");
  const helper = join(dir, "helper.ts");
  let runs = 0;
  const check = () => (runs++, { diagnostics: [`run ${runs}`], files: [model, helper] });

  it("hits while the model and the files it imports are unchanged, and checks again when either changes", () => {
    writeFileSync(model, "export const a = 1;\n");
    writeFileSync(helper, "export const b = 2;\n");
    expect(cachedTypecheck(model, check)).toEqual({ diagnostics: ["run 1"], cached: false });
    expect(cachedTypecheck(model, check)).toEqual({ diagnostics: ["run 1"], cached: true });
    writeFileSync(helper, "export const b = 3;\n");
    expect(cachedTypecheck(model, check)).toEqual({ diagnostics: ["run 2"], cached: false });
    expect(cachedTypecheck(model, check)).toEqual({ diagnostics: ["run 2"], cached: true });
    writeFileSync(model, "export const a = 4;\n");
    expect(cachedTypecheck(model, check)).toEqual({ diagnostics: ["run 3"], cached: false });
  });

  it("KILN_TYPECHECK_CACHE=0 always checks", () => {
    process.env.KILN_TYPECHECK_CACHE = "0";
    try {
      expect(cachedTypecheck(model, check).cached).toBe(false);
      expect(cachedTypecheck(model, check).cached).toBe(false);
    } finally {
      delete process.env.KILN_TYPECHECK_CACHE;
    }
  });
});

describe("typecheckModelFile (ts-morph in a child process, cached)", () => {
  it("reports a type error in an imported file, and none once that file is fixed (not a stale cache entry)", () => {
    const model = join(dir, "model.ts");
    const dims = join(dir, "dims.ts");
    writeFileSync(
      model,
      'import { z } from "kiln";\nimport { width } from "./dims.ts";\nexport const schema = z.object({ w: z.number() });\nexport const w: number = width;\n',
    );
    writeFileSync(dims, 'export const width: string = "wide";\n');
    const broken = typecheckModelFile(model);
    expect(broken.map((d) => d.message)).toEqual(["Type 'string' is not assignable to type 'number'."]);
    expect(broken[0]!.line).toBe(4);
    writeFileSync(dims, "export const width = 4;\n");
    expect(typecheckModelFile(model)).toEqual([]);
  }, 120_000);
});
