// The zoo fixtures are reproducible: scripts/zoo-fixtures/make.py, run with transformers 5.17 (what
// .ci/setup-python.sh installs), writes byte-identical files to the committed ones under test/fixtures/zoo/. Skipped
// with the reason when no Python with torch + transformers 5.17 is found.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs helper without type declarations
import { findPython } from "../../scripts/python.mjs";
import { ZOO, ZOO_FIXTURES, ZOO_MOE_FIXTURES } from "../golden.ts";

const ALL = [...ZOO_FIXTURES, ...ZOO_MOE_FIXTURES];

const py: string | undefined = findPython(["torch", "safetensors", "transformers"]);
const version = py ? execFileSync(py, ["-c", "import transformers; print(transformers.__version__)"], { encoding: "utf8" }).trim() : undefined;
const why = !py ? "no Python with torch, safetensors and transformers" : version !== "5.17.0" ? `transformers ${version}, not 5.17.0` : undefined;

describe("zoo fixtures", () => {
  it("every zoo fixture is listed in test/golden.ts and vice versa", () => {
    expect(readdirSync(ZOO).sort()).toEqual(ALL.map((f) => f.fixture).sort());
  });

  it.skipIf(why !== undefined)(
    `make.py reproduces the committed files byte for byte${why ? ` (SKIPPED: ${why})` : ""}`,
    () => {
      const out = mkdtempSync(join(tmpdir(), "kiln-zoo-make-"));
      execFileSync(py!, ["scripts/zoo-fixtures/make.py", "--out", out], { stdio: "pipe", timeout: 300_000 });
      for (const { fixture } of ALL)
        for (const file of readdirSync(join(ZOO, fixture)))
          expect(readFileSync(join(out, fixture, file)).equals(readFileSync(join(ZOO, fixture, file))), `${fixture}/${file}`).toBe(true);
    },
    300_000,
  );
});
