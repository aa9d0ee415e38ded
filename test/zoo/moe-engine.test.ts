// Mixtral and Qwen2-MoE through `kiln compile` (engine target): TensorRT-LLM's own MoE (LLaMA with a moe config,
// architecture MixtralForCausalLM; QWen's qwen2_moe SharedMoE), the converters' layout (stacked [up ; gate] experts,
// float32 router, shared-expert names), and rank files that reproduce transformers' logits in the CPU
// tensor-parallel simulator at tp in {1, 2, 4} x moe_ep in {1, 2}. Custom code uses tensorrt_llm.layers.MOE and
// passes the API check; --quant keeps routers, gates and experts unquantized; `kiln plan` and `kiln inspect` say so.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkPythonApi } from "../../codegen/apicheck/check-api.ts";
import mixtral from "../../models/mixtral.ts";
import qwen2_moe from "../../models/qwen2_moe.ts";
import { compileModel } from "../../src/driver/compile.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { simulateCheckpoint } from "../../src/driver/simulate-checkpoint.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { lowerMoeToTrtllm } from "../../src/lower/moe-lowering.ts";
import { planMemory } from "../../src/memory-plan/plan.ts";
import { GPUS } from "../../src/memory-plan/gpus.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { loadModelStages } from "../../src/views/model-stages.ts";
import { inspectModel } from "../../src/views/inspect.ts";
import { readGolden, ZOO } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-moe-"));
// The two definitions have different config types; tests only pass them to compile.
const MODELS: Record<"mixtral" | "qwen2_moe", ModelDefinition<any>> = { mixtral, qwen2_moe };
type Family = keyof typeof MODELS;
const SPLITS: [number, number][] = [
  [1, 1],
  [2, 1],
  [4, 1],
  [2, 2],
  [4, 2],
];

async function compile(family: Family, tp: number, moeEp: number, extra: Record<string, unknown> = {}, tag = "", fixture: string = family) {
  const out = join(tmp, `${fixture}-tp${tp}-ep${moeEp}${tag}`);
  const r = await compileModel(MODELS[family], { hfDir: `${ZOO}${fixture}`, outDir: out, mapping: { tp, pp: 1, moeEp }, ...extra });
  return { out, r, config: JSON.parse(readFileSync(join(out, "config.json"), "utf8")) };
}

describe("MoE engine checkpoints reproduce transformers (CPU tensor-parallel simulation)", () => {
  // qwen2_moe_norm: norm_topk_prob, so RENORMALIZE routing (normalization_mode 1) on QWen's SharedMoE
  for (const [fixture, family] of [
    ["mixtral", "mixtral"],
    ["qwen2_moe", "qwen2_moe"],
    ["qwen2_moe_norm", "qwen2_moe"],
  ] as const)
    for (const [tp, ep] of SPLITS)
      it(`${fixture} tp=${tp} moe_ep=${ep}`, async () => {
        const { out, r, config } = await compile(family, tp, ep, {}, "", fixture);
        expect(config.mapping).toMatchObject({ tp_size: tp, moe_tp_size: tp / ep, moe_ep_size: ep });
        expect(config.moe.normalization_mode).toBe(fixture === "qwen2_moe" ? 0 : 1);
        const golden = await readGolden(`${ZOO}${fixture}`);
        const logits = await simulateCheckpoint(
          out,
          r.lowered.graph,
          golden.map((g) => g.ids),
        );
        golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
      });
});

describe("MoE engine checkpoints: TensorRT-LLM's classes and layout", () => {
  it("Mixtral: built-in LLaMA with a moe config, architecture MixtralForCausalLM, converter layout", async () => {
    const { out, r, config } = await compile("mixtral", 2, 2, { dtype: "float16" }, "-f16");
    expect(config.architecture).toBe("MixtralForCausalLM");
    expect(r.emission.info(out).builtin).toBe("llama");
    expect(config.hidden_act).toBe("swiglu");
    expect(config.moe).toMatchObject({ num_experts: 8, top_k: 2, normalization_mode: 1, shared_expert_intermediate_size: 0 });
    const f = await SafetensorsFile.open(join(out, "rank1.safetensors"));
    try {
      expect(f.info("transformer.layers.0.mlp.router.weight")).toMatchObject({ dtype: "F32", shape: [8, 64] });
      expect(f.info("transformer.layers.0.mlp.fc.weight")).toMatchObject({ dtype: "F16", shape: [4, 96, 64] });
      expect(f.info("transformer.layers.0.mlp.proj.weight")).toMatchObject({ dtype: "F16", shape: [4, 64, 48] });
      expect(f.info("transformer.layers.0.post_layernorm.weight")).toBeDefined();
    } finally {
      await f.close();
    }
    // rank 1 = moe_ep rank 1: experts 4..7, fc = [w3 ; w1] of expert 4 first
    const map = JSON.parse(readFileSync(join(out, "weights.map.json"), "utf8")).files["rank1.safetensors"];
    const fc = map["transformer.layers.0.mlp.fc.weight"].from as string;
    expect(fc.indexOf("experts.4.w3")).toBeGreaterThanOrEqual(0);
    expect(fc.indexOf("experts.4.w3")).toBeLessThan(fc.indexOf("experts.4.w1"));
    expect(fc).not.toContain("experts.3.");
  });

  it("Qwen2-MoE: built-in QWen qwen2_moe with the shared expert and its gate", async () => {
    const { out, r, config } = await compile("qwen2_moe", 2, 1);
    expect(config.architecture).toBe("Qwen2MoeForCausalLM");
    expect(r.emission.info(out).builtin).toBe("qwen");
    expect(config).toMatchObject({ qwen_type: "qwen2_moe", hidden_act: "swiglu", mlp_only_layers: [], decoder_sparse_step: 1 });
    expect(config.moe.normalization_mode).toBe(0);
    expect(config.moe_shared_expert_intermediate_size).toBeGreaterThan(0);
    const f = await SafetensorsFile.open(join(out, "rank0.safetensors"));
    try {
      const names = f.tensors().map((t) => t.name);
      for (const n of ["mlp.router.weight", "mlp.shared_expert.fc.weight", "mlp.shared_expert.proj.weight", "mlp.shared_expert_gate.weight"])
        expect(names).toContain(`transformer.layers.0.${n}`);
      expect(f.info("transformer.layers.0.mlp.shared_expert_gate.weight")!.shape).toEqual([1, 64]);
    } finally {
      await f.close();
    }
  });

  it("custom code builds tensorrt_llm.layers.MOE with a MoeConfig and passes the API check", async () => {
    const { out, r } = await compile("mixtral", 2, 1, { customCode: true }, "-custom");
    const py = readFileSync(join(out, "model.py"), "utf8");
    expect(py).toMatch(/MOE\(\s*moe_config=MoeConfig\(num_experts=8, top_k=2, normalization_mode=MoeConfig\.ExpertScaleNormalizationMode\.RENORMALIZE\)/);
    const api = checkPythonApi(join(out, "model.py"));
    expect(api.problems).toEqual([]);
    const golden = await readGolden(`${ZOO}mixtral`);
    const logits = await simulateCheckpoint(
      out,
      r.lowered.graph,
      golden.map((g) => g.ids),
    );
    golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
  });

  it("custom code builds SharedMoE for a gated shared expert and passes the API check", async () => {
    const { out } = await compile("qwen2_moe", 2, 1, { customCode: true }, "-custom");
    const py = readFileSync(join(out, "model.py"), "utf8");
    expect(py).toMatch(
      /SharedMoE\(\s*moe_config=MoeConfig\(num_experts=\d+, top_k=\d+, normalization_mode=MoeConfig\.ExpertScaleNormalizationMode\.NONE, shared_expert_intermediate_size=\d+\)/,
    );
    expect(py).toContain("use_shared_gate=True");
    expect(checkPythonApi(join(out, "model.py")).problems).toEqual([]);
  });

  it("--quant w8a16 never quantizes the router, the shared-expert gate or the experts", async () => {
    const { config } = await compile("qwen2_moe", 1, 1, { quant: { weight: "w8a16" }, dtype: "float16" }, "-w8");
    const ex: string[] = config.quantization.exclude_modules;
    expect(ex).toEqual(expect.arrayContaining(["*router", "*shared_expert_gate", "transformer.layers.0.mlp", "transformer.layers.0.mlp.shared_expert.fc"]));
  });

  it("refuses a moe_ep that does not divide tp, naming the flags", async () => {
    await expect(compile("mixtral", 2, 4, {}, "-bad")).rejects.toThrow(/--moe-tp .* x --moe-ep 4 must equal --tp 2/);
  });
});

describe("MoE in kiln plan and kiln inspect", () => {
  it("plan counts experts per GPU and active parameters per token", async () => {
    const stages = await loadModelStages(MODELS.mixtral, { hfDir: `${ZOO}mixtral` });
    const low = lowerMoeToTrtllm(stages.lowered(), stages.shapeOf);
    const plan = planMemory(low, { dtype: "float16", tp: 4, pp: 1, moeEp: 2, gpu: GPUS["h100-80gb"]!, maxBatch: 1, maxSeq: 64 });
    expect(plan.moe).toMatchObject({ numExperts: 8, topK: 2, moeTp: 2, moeEp: 2, expertsPerGpu: 4 });
    // 3 layers x 8 experts x 3 x 48 x 64 expert weights; a token uses 2 of 8
    const experts = 3 * 8 * 3 * 48 * 64;
    expect(plan.moe!.activeParamsPerToken).toBe(plan.paramCount - experts + experts / 4);
  });

  it("inspect names the built-in class", async () => {
    const stages = await loadModelStages(MODELS.qwen2_moe, { hfDir: `${ZOO}qwen2_moe` });
    const report = inspectModel(stages);
    expect(report.target).toMatchObject({ builtin: true, architecture: "Qwen2MoeForCausalLM" });
  });
});
