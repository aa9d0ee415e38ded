// `kiln inspect` as a library: parameter counts per module path (exact, ancestors summed), op counts per stage,
// hints in effect, and the target class — built-in when TensorRT-LLM has the architecture, custom with a reason per
// built-in family otherwise.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import type { Module } from "../dsl/module.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { formatInspect, inspectModel } from "./inspect.ts";
import { loadModelStages } from "./model-stages.ts";

describe("inspectModel", () => {
  it("counts parameters per module and ops per stage (GPT-J fixture)", async () => {
    const r = inspectModel(await loadModelStages(await importModelFile("models/gptj.ts"), { hfDir: `${FIXTURES}gptj` }));
    const params = Object.fromEntries(r.modules.map((m) => [m.path, m.params]));
    // n_embd 64, 2 layers, vocab 512, MLP 256, untied LM head with bias.
    const layer = 2 * 64 + 4 * 64 * 64 + (256 * 64 + 256) + (64 * 256 + 64);
    expect(params).toMatchObject({
      "": 512 * 64 + 2 * layer + 2 * 64 + (512 * 64 + 512),
      embed: 512 * 64,
      layers: 2 * layer,
      "layers.0": layer,
      "layers.0.attn": 4 * 64 * 64,
      "layers.1.mlp.fc": 256 * 64 + 256,
      lmHead: 512 * 64 + 512,
    });
    expect(r.totalParams).toBe(params[""]);
    expect(r.modules[0]!.path).toBe("");
    expect(r.repeated).toEqual([{ list: "layers", first: "layers.0", count: 2 }]);
    expect(r.ops.traced).toMatchObject({ attention: 2, rope: 4, linear: 13 });
    expect(r.ops.trtllm).toEqual({ add: 4, embedding: 1, layer_norm: 3, "trtllm.attention": 2, "trtllm.lm_head": 1, "trtllm.mlp": 2 });
    expect(r.target).toMatchObject({ builtin: true, architecture: "GPTJForCausalLM" });
    const text = formatInspect(r);
    expect(text).toMatch(/\n {4}0 +49,600\n {6}ln +128\n/);
    expect(text).not.toMatch(/\n {4}1 /);
  });

  it("reports hints per module and the model's effective hints", async () => {
    const llama = await importModelFile("models/llama.ts");
    const withHints: ModelDefinition = {
      ...llama,
      create: (c) => {
        const m = llama.create(c);
        m.hints = { plugins: { gemm: "float16" } };
        (m as unknown as { layers: Module[] }).layers[1]!.hints = { fuse: { gatedMlp: false } };
        return m;
      },
    };
    const r = inspectModel(await loadModelStages(withHints, { hfDir: `${FIXTURES}llama` }));
    expect(r.hints.perModule).toEqual({ "": { plugins: { gemm: "float16" } }, "layers.1": { fuse: { gatedMlp: false } } });
    expect(r.hints.model).toEqual({ plugins: { gemm: "float16" } });
    expect(r.ops.fused.gated_activation).toBe(1);
    expect(formatInspect(r)).toContain('hints: <model> {"plugins":{"gemm":"float16"}}; layers.1 {"fuse":{"gatedMlp":false}}\n');
  });

  it("explains a custom target: GPT-2 with per-layer attention scaling matches no built-in class", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-inspect-"));
    const cfg = { ...JSON.parse(readFileSync(`${FIXTURES}gpt2/config.json`, "utf8")), scale_attn_by_inverse_layer_idx: true };
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    const r = inspectModel(await loadModelStages(await importModelFile("models/gpt2.ts"), { configFile: join(dir, "config.json") }));
    expect(r.target.builtin).toBe(false);
    expect(r.target.reasons!.gpt).toMatch(/^layer 1: softmax scale 0\.125 is not 1\/sqrt\(head_dim\)$/);
    expect(r.target.why).toMatch(/^not llama: .+; not gpt: layer 1: softmax scale .+; not gptj: .+$/);
    expect(r.repeated).toEqual([]);
    expect(formatInspect(r)).toMatch(/\ntarget: custom \S+\n {2}why: not llama: /);
  });
});
