import { describe, expect, it } from "vitest";
import { QuantError } from "../numerics/quant-error.ts";
import { DEFAULT_EXCLUDE_MODULES, KV_CACHE_SCHEMES, WEIGHT_SCHEMES, matchesExclusion, parseKvCacheQuant, parseWeightQuant } from "./schemes.ts";

describe("scheme table", () => {
  it("names TensorRT-LLM's algorithms", () => {
    expect(WEIGHT_SCHEMES.w8a16.quantAlgo).toBe("W8A16");
    expect(WEIGHT_SCHEMES.w4a16.quantAlgo).toBe("W4A16");
    expect(WEIGHT_SCHEMES.fp8.quantAlgo).toBe("FP8");
    expect(KV_CACHE_SCHEMES.int8.kvCacheQuantAlgo).toBe("INT8");
    expect(KV_CACHE_SCHEMES.fp8.kvCacheQuantAlgo).toBe("FP8");
  });

  it("lists the FP8 tensors per Linear", () => {
    expect(WEIGHT_SCHEMES.fp8.checkpointTensors).toEqual([
      { suffix: "weight", dtype: "F8_E4M3", shape: ["out", "in"] },
      { suffix: "weights_scaling_factor", dtype: "F32", shape: [1] },
      { suffix: "activation_scaling_factor", dtype: "F32", shape: [1] },
    ]);
    expect(WEIGHT_SCHEMES.fp8.needsCalibration).toBe(true);
  });

  it("writes weight-only weights unquantized and relies on load-time quantization", () => {
    for (const s of [WEIGHT_SCHEMES.w8a16, WEIGHT_SCHEMES.w4a16]) {
      expect(s.checkpointTensors).toEqual([{ suffix: "weight", dtype: "model", shape: ["out", "in"] }]);
      expect(s.loadTimeQuantizedNames).toContain("qkv.weight");
      expect(s.engineTensors.map((t) => t.suffix)).toEqual(["weight", "per_channel_scale"]);
      expect(s.needsCalibration).toBe(false);
    }
    expect(WEIGHT_SCHEMES.w4a16.engineTensors[0]!.shape).toEqual(["in", "out/2"]);
  });

  it("gives the KV cache one F32 [1] scale per attention module", () => {
    for (const s of Object.values(KV_CACHE_SCHEMES)) {
      expect(s.checkpointTensors).toEqual([{ suffix: "kv_cache_scaling_factor", dtype: "F32", shape: [1] }]);
    }
  });

  it("parses CLI values and rejects others, listing the choices", () => {
    expect(parseWeightQuant("w4a16")).toBe("w4a16");
    expect(parseKvCacheQuant("fp8")).toBe("fp8");
    expect(() => parseWeightQuant("int8")).toThrow(/--quant "int8" is not one of w8a16, w4a16, fp8$/);
    // Group-wise INT4 comes only with a pre-quantized AWQ/GPTQ checkpoint's codes and scales.
    expect(() => parseWeightQuant("w4a16_awq")).toThrow(/--quant w4a16_awq comes only from a pre-quantized AWQ\/GPTQ checkpoint/);
    expect(() => parseKvCacheQuant("toString")).toThrow(QuantError);
  });
});

describe("matchesExclusion (defaults)", () => {
  it.each([
    ["lm_head", true],
    ["transformer.vocab_embedding", true],
    ["transformer.position_embedding", true],
    ["transformer.layers.3.mlp.router", true],
    ["transformer.layers.3.mlp.shared_expert_gate", true],
    ["transformer.layers.0.attention.qkv", false],
    ["transformer.layers.0.mlp.fc", false],
    ["lm_head.weight", false], // whole-name match: a tensor name is not its module
    ["LM_HEAD", false], // case-sensitive
    ["lm_headx", false],
  ])("%s -> %s", (path, excluded) => {
    expect(matchesExclusion(path, DEFAULT_EXCLUDE_MODULES)).toBe(excluded);
    expect(matchesExclusion(path)).toBe(excluded);
  });

  it("uses only the given patterns", () => {
    expect(matchesExclusion("lm_head", ["*mlp*"])).toBe(false);
    expect(matchesExclusion("transformer.layers.1.mlp.fc", ["*mlp*"])).toBe(true);
    expect(matchesExclusion("lm_head", [])).toBe(false);
  });
});
