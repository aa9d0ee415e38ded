// --lora-merge end to end: the adapter folded into the rank files at tp 1 and 2 reproduces PEFT's logits when the
// CPU tensor-parallel simulator runs those files (LLaMA with rsLoRA on every Linear, GPT-2's fused Conv1D qkv split
// across ranks, GQA), weights.map.json records the merge, nothing but the usual files is left behind, and a merge
// that skipped the overlay (a planted bug) is caught by the same comparison.

import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import llama from "../../models/llama.ts";
import { adapterDir, baseDir, readLoraGolden } from "../../test/lora-fixtures.ts";
import { kiln } from "../../test/cli/kiln.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { relL2 } from "../interp/tensor.ts";
import { compileModel } from "../driver/compile.ts";
import { simulateCheckpoint } from "../driver/simulate-checkpoint.ts";
import { readAdapter } from "./adapter.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-lora-merge-"));
const MODELS: Record<string, ModelDefinition<any>> = { gpt2, llama };
const CASES = [
  ["llama", "all_rslora", "llama"],
  ["llama3_gqa", "all_rslora", "llama"],
  ["gpt2", "all_rslora", "gpt2"],
] as const;

describe("kiln compile --lora-merge: merged rank files reproduce PEFT (tensor-parallel simulator)", () => {
  for (const [fixture, adapter, model] of CASES)
    for (const tp of [1, 2])
      it(`${fixture}/${adapter} tp=${tp}`, async () => {
        const out = join(tmp, `${fixture}-${adapter}-tp${tp}`);
        const a = await readAdapter(adapterDir(fixture, adapter));
        const r = await compileModel(MODELS[model]!, { hfDir: baseDir(fixture), outDir: out, mapping: { tp, pp: 1 }, loraMerge: a });
        const golden = await readLoraGolden(fixture, adapter);
        const logits = await simulateCheckpoint(
          out,
          r.lowered.graph,
          golden.map((g) => g.ids),
        );
        golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
        const record = JSON.parse(readFileSync(join(out, "weights.map.json"), "utf8")).lora;
        expect(record.mode).toBe("merged");
        expect(record.modules).toHaveLength(a.modules.length);
        expect(readdirSync(tmp).filter((f) => f.includes("lora-merged"))).toEqual([]);
      });

  it("without the adapter the same rank files miss PEFT's logits (the comparison can fail)", async () => {
    const out = join(tmp, "llama-base");
    const r = await compileModel(llama, { hfDir: baseDir("llama"), outDir: out, mapping: { tp: 2, pp: 1 } });
    const [g] = await readLoraGolden("llama", "all_rslora");
    const [logits] = await simulateCheckpoint(out, r.lowered.graph, [g!.ids]);
    expect(relL2(logits!, g!.logits)).toBeGreaterThan(0.05);
    expect(JSON.parse(readFileSync(join(out, "weights.map.json"), "utf8")).lora).toBeUndefined();
  });

  it("the CLI: --lora DIR --lora-merge, and its usage errors", async () => {
    const out = join(tmp, "cli-merge");
    const ok = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      out,
      "--lora",
      adapterDir("llama", "attn_qv"),
      "--lora-merge",
      "--json",
      "--no-typecheck",
    ]);
    expect(ok.err).toBe("");
    expect(JSON.parse(ok.out).loraMerged).toBe(adapterDir("llama", "attn_qv"));
    expect(existsSync(join(out, "rank0.safetensors"))).toBe(true);
    const two = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      out,
      "--lora",
      `${adapterDir("llama", "attn_qv")},${adapterDir("llama", "all_rslora")}`,
      "--lora-merge",
      "--no-typecheck",
    ]);
    expect(two.code).toBe(1);
    expect(two.err).toMatch(/^kiln: --lora-merge folds one adapter into the weights, got 2 \(/);
    const lone = await kiln(["compile", "models/llama.ts", "--hf", baseDir("llama"), "--out", out, "--lora-merge", "--no-typecheck"]);
    expect(lone.err).toBe("kiln: --lora-merge needs --lora DIR\n");
  });
});
