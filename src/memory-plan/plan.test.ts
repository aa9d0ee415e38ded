// The memory planner against hand calculations for LLaMA-3 8B and 70B (HF config.json only, no weights): parameter
// counts, weights per GPU with tensor and pipeline parallelism and quantization, KV cache bytes per token with GQA,
// replicated key/value heads, int8/fp8 caches, and the token count TensorRT-LLM's 0.9 free-memory fraction gives.

import { describe, expect, it } from "vitest";
import { importModelFile } from "../driver/load-model-file.ts";
import { loadModelStages } from "../views/model-stages.ts";
import { formatBytes, formatPlan } from "./format.ts";
import { GPUS, parseGpu } from "./gpus.ts";
import { type PlanOptions, planMemory } from "./plan.ts";

const CONFIGS = new URL("../../test/fixtures/configs/", import.meta.url).pathname;
const llama = await importModelFile("models/llama.ts");
const lowered8b = (await loadModelStages(llama, { configFile: `${CONFIGS}llama3-8b.json` })).lowered();
const lowered70b = (await loadModelStages(llama, { configFile: `${CONFIGS}llama3-70b.json` })).lowered();
const H100 = GPUS["h100-80gb"]!;
const base: PlanOptions = { dtype: "bfloat16", tp: 1, pp: 1, gpu: H100, maxBatch: 8, maxSeq: 8192 };

// LLaMA-3 8B by hand: hidden 4096, 32 layers, 32 heads, 8 kv heads of 128, MLP 14336, vocab 128256.
const E8 = 128256 * 4096; // embedding and lm_head, each
const QKV8 = (32 + 2 * 8) * 128 * 4096;
const DENSE8 = 4096 * 4096;
const MLP8 = 3 * 14336 * 4096;
const LAYER8 = QKV8 + DENSE8 + MLP8 + 2 * 4096;
const PARAMS8 = 32 * LAYER8 + 2 * E8 + 4096;

describe("planMemory: LLaMA-3 8B", () => {
  it("bf16 on one H100", () => {
    const p = planMemory(lowered8b, base);
    expect(PARAMS8).toBe(8_030_261_248);
    expect(p.paramCount).toBe(PARAMS8);
    expect(p.weightsPerGpu).toBe(2 * PARAMS8);
    const act = 8192 * 2 * (2 * 4096 + 48 * 128 + 32 * 128 + 3 * 14336) + 8 * 128256 * 4;
    expect(p.activationsPerGpu).toBe(act);
    expect(p.kvBytesPerTokenPerLayer).toBe(2 * 8 * 128 * 2);
    expect(p.kvBytesPerTokenPerGpu).toBe(32 * 4096);
    const tokens = Math.floor((0.9 * (85_017_493_504 - 2 * PARAMS8 - act)) / (32 * 4096));
    expect(p.kvTokens).toBe(tokens);
    expect(p.kvTokens).toBe(466_549);
    expect(p.kvBlocks).toBe(Math.ceil(tokens / 32));
    expect(p.fullSequences).toBe(56);
    expect(p.fits).toBe(true);
    expect(p.problems).toEqual([]);
  });

  it("tp=2 halves the sharded weights and the KV heads; tp=16 replicates key/value heads", () => {
    const p2 = planMemory(lowered8b, { ...base, tp: 2 });
    const lmHead2 = (128256 / 2) * 4096;
    expect(p2.weightsPerGpu).toBe(2 * (32 * ((QKV8 + DENSE8 + MLP8) / 2 + 2 * 4096) + E8 + lmHead2 + 4096));
    expect(p2.kvBytesPerTokenPerLayer).toBe(2 * 4 * 128 * 2);
    const p16 = planMemory(lowered8b, { ...base, tp: 16 });
    expect(p16.kvBytesPerTokenPerLayer).toBe(2 * 1 * 128 * 2);
    expect(p16.kvBytesPerTokenAllGpus).toBe(2 * 1 * 128 * 2 * 32 * 16); // 8 kv heads cached on 16 ranks: twice the data
    expect(() => planMemory(lowered8b, { ...base, tp: 3 })).toThrow(/tp=3 does not divide the 32 query heads/);
  });

  it("pp=2 splits layers; embedding on the first stage, lm_head and final norm on the last", () => {
    const p = planMemory(lowered8b, { ...base, pp: 2 });
    expect(p.stages.map((s) => s.layers)).toEqual([16, 16]);
    expect(p.stages.map((s) => s.weightBytes)).toEqual([2 * (16 * LAYER8 + E8), 2 * (16 * LAYER8 + E8 + 4096)]);
    expect(p.kvBytesPerTokenPerGpu).toBe(16 * 4096);
    expect(p.stages[0]!.activationBytes + 8 * 128256 * 4).toBe(p.stages[1]!.activationBytes);
  });

  it("--quant w4a16/fp8 and --kv-cache fp8 change byte sizes only", () => {
    const outs = (32 + 2 * 8) * 128 + 4096 + 14336 + 14336 + 4096; // per-channel scales per layer
    const w4 = planMemory(lowered8b, { ...base, quant: "w4a16" });
    expect(w4.paramCount).toBe(PARAMS8);
    expect(w4.weightsPerGpu).toBe(32 * ((QKV8 + DENSE8 + MLP8) / 2 + 2 * outs + 2 * 2 * 4096) + 2 * (2 * E8 + 4096));
    const w8 = planMemory(lowered8b, { ...base, quant: "w8a16" });
    expect(w8.weightsPerGpu).toBe(32 * (QKV8 + DENSE8 + MLP8 + 2 * outs + 2 * 2 * 4096) + 2 * (2 * E8 + 4096));
    const fp8 = planMemory(lowered8b, { ...base, quant: "fp8", kvCache: "fp8" });
    expect(fp8.weightsPerGpu).toBe(32 * (QKV8 + DENSE8 + MLP8 + 5 * 8 + 2 * 2 * 4096 + 4) + 2 * (2 * E8 + 4096));
    expect(fp8.kvBytesPerTokenPerLayer).toBe(2 * 8 * 128 * 1);
    expect(planMemory(lowered8b, { ...base, kvCache: "int8" }).kvTokens).toBeGreaterThan(2 * 466_549 - 2);
  });
});

describe("planMemory: LLaMA-3 70B", () => {
  const LAYER = (8192 + 2 * 1024) * 8192 + 8192 * 8192 + 3 * 28672 * 8192;
  const E = 128256 * 8192;

  it("does not fit one H100 in bf16 and suggests tp=2, which fits", () => {
    const p = planMemory(lowered70b, base);
    expect(p.paramCount).toBe(80 * (LAYER + 2 * 8192) + 2 * E + 8192);
    expect(p.paramCount).toBe(70_553_706_496);
    expect(p.fits).toBe(false);
    expect(p.problems[0]).toMatch(/^weights \(131\.42 GiB\) and activations \(1\.\d+ GiB\) exceed the 79\.18 GiB of one NVIDIA H100 80GB HBM3$/);
    expect(p.suggestedTp).toBe(2);

    const p2 = planMemory(lowered70b, { ...base, tp: 2 });
    const weights = 2 * (80 * (LAYER / 2 + 2 * 8192) + E + E / 2 + 8192);
    const act = 8192 * 2 * (2 * 8192 + (32 + 8) * 128 + 32 * 128 + 3 * 14336) + 8 * 128256 * 4;
    expect(p2.weightsPerGpu).toBe(weights);
    expect(p2.activationsPerGpu).toBe(act);
    expect(p2.kvBytesPerTokenPerGpu).toBe(80 * 2 * 4 * 128 * 2);
    expect(p2.kvTokens).toBe(Math.floor((0.9 * (H100.bytes - weights - act)) / (80 * 2048)));
    expect(p2.fits).toBe(true);
  });

  it("tp=4 on H100 and tp=1 on H200 with fp8", () => {
    const p4 = planMemory(lowered70b, { ...base, tp: 4 });
    expect(p4.kvBytesPerTokenPerLayer).toBe(2 * 2 * 128 * 2);
    expect(p4.fits).toBe(true);
    const h200 = planMemory(lowered70b, { ...base, gpu: GPUS["h200-141gb"]!, quant: "fp8" });
    expect(h200.fits).toBe(true);
    expect(h200.weightsPerGpu).toBe(80 * (LAYER + 5 * 8 + 2 * 2 * 8192) + 2 * (2 * E + 8192));
  });
});

describe("GPUs and formatting", () => {
  it("parses GPU names and memory sizes", () => {
    expect(parseGpu("H200-141GB")).toBe(GPUS["h200-141gb"]);
    expect(parseGpu("24GiB")!.bytes).toBe(24 * 2 ** 30);
    expect(parseGpu("80GB")!.bytes).toBe(80e9);
    expect(parseGpu("48")!.bytes).toBe(48 * 2 ** 30);
    expect(parseGpu("1.5 TiB")!.bytes).toBe(1.5 * 2 ** 40);
    expect(parseGpu("fast")).toBeUndefined();
    expect(parseGpu("0GiB")).toBeUndefined();
  });

  it("formats bytes and the plan table", () => {
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(131072)).toBe("128.00 KiB");
    const text = formatPlan(planMemory(lowered70b, base), "llama");
    expect(text).toMatch(/^plan for llama: bfloat16, tp=1 pp=1, NVIDIA H100 80GB HBM3 \(79\.18 GiB\)\n/);
    expect(text).toContain("  fits                    NO\n");
    expect(text).toContain("hint: the smallest tensor-parallel size that fits is --tp 2\n");
    expect(formatPlan(planMemory(lowered8b, base), "llama")).toContain(
      "  KV cache per token      4.00 KiB per layer per GPU, 128.00 KiB per GPU, 128.00 KiB all GPUs\n",
    );
  });
});

describe("hints", () => {
  it("a model-level `quantize: false` hint keeps every weight in dtype under --quant", () => {
    const noQuant = { ...lowered8b, graph: { ...lowered8b.graph, hints: { "": { quantize: false } } } };
    expect(planMemory(noQuant, { ...base, quant: "w4a16" }).weightsPerGpu).toBe(2 * PARAMS8);
  });
});
