// `kiln verify`: argument plumbing, the no-Python message, and one real run of a compiled trtllm-torch package
// through the bridge (skipped, with the reason, when no Python with torch is found).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kiln } from "../../../test/cli/kiln.ts";
import { bridgeArgs, findTorchPython, verifyCommand } from "./verify.ts";

const FIXTURE = "../shared/fixtures/hf/llama";

describe("kiln verify", () => {
  it("passes every flag to the bridge", () => {
    expect(
      bridgeArgs("out", { hf: "h", device: "cuda", dtype: "bfloat16", tp: "2", pp: "2", kernel: ["k=f.py"], lora: ["a=d1", "2=d2"], tol: "0.1", json: true }),
    ).toEqual([
      "-m",
      "kiln_bridge",
      "verify",
      "--ckpt",
      "out",
      "--hf",
      "h",
      "--device",
      "cuda",
      "--dtype",
      "bfloat16",
      "--tp",
      "2",
      "--pp",
      "2",
      "--kernel",
      "k=f.py",
      "--lora",
      "a=d1",
      "--lora",
      "2=d2",
      "--tol",
      "0.1",
      "--json",
    ]);
  });

  it("finds no Python when none imports torch, and says so in one line", () => {
    const none = (() => ({ status: 1 })) as unknown as typeof import("node:child_process").spawnSync;
    expect(findTorchPython(none)).toBeUndefined();
  });

  const python = findTorchPython();
  it.skipIf(!python)(
    "verifies a compiled trtllm-torch package and reports a missing golden as one line",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "kiln-verify-"));
      try {
        const out = join(dir, "out");
        const c = await kiln(["compile", "models/llama.ts", "--hf", FIXTURE, "--out", out, "--target", "trtllm-torch", "--no-typecheck"]);
        expect(c.code, c.err).toBe(0);
        let printed = "";
        verifyCommand(out, { hf: FIXTURE, tp: "2" }, (s) => (printed += s));
        expect(printed).toMatch(/KilnLlamaForCausalLM tp=2 pp=1 .*\n[\s\S]*PASS/);
        const bad = await kiln(["verify", out, "--hf", dir]);
        expect(bad.code).toBe(1);
        expect(bad.err.trim()).toBe(`kiln: verify: ${dir}/golden.safetensors: not found (the HF fixture directory must hold golden.safetensors)`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
