import { describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import { FIXTURES } from "../../test/golden.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import type { Hints } from "../dsl/hints.ts";
import type { LlamaLayer } from "../../models/llama.ts";
import type { CausalLM } from "../dsl/modules/causal-lm.ts";
import { excludeModules, fnmatchLiteral } from "./exclusions.ts";
import { fnmatchCase } from "./fnmatch.ts";
import { loadQuantizableModel } from "../driver/quantized-model.ts";
import { DEFAULT_EXCLUDE_MODULES } from "./schemes.ts";
import { resolveQuant } from "./spec.ts";

type Llama = CausalLM<LlamaLayer>;
/** The fixture LLaMA with hints set on some of its modules. */
function hinted(set: (m: Llama) => void): ModelDefinition<any> {
  return {
    ...llama,
    create: (c: any) => {
      const m = llama.create(c) as unknown as Llama;
      set(m);
      return m as any;
    },
  } as ModelDefinition<any>;
}
const off: Hints = { quantize: false };
const L = (l: number, s: string) => `transformer.layers.${l}.${s}`;

describe("quantize: false hints", () => {
  it("exclude the Linears of the hinted module and below", async () => {
    const m = await loadQuantizableModel(
      hinted((x) => (x.layers[1]!.attn.hints = off)),
      `${FIXTURES}llama3_gqa`,
    );
    expect(m.excluded).toEqual([L(1, "attention.qkv"), L(1, "attention.dense")]);
  });

  it("exclude fc and gate together (TensorRT-LLM fuses them), even when only one projection is hinted", async () => {
    const m = await loadQuantizableModel(
      hinted((x) => (x.layers[0]!.mlp.up.hints = off)),
      `${FIXTURES}llama3_gqa`,
    );
    expect(m.excluded).toEqual([L(0, "mlp.fc"), L(0, "mlp.gate")]);
  });

  it("let a closer `quantize: true` win over the model-wide `false`", async () => {
    const m = await loadQuantizableModel(
      hinted((x) => {
        x.hints = off;
        x.layers[2]!.mlp.down.hints = { quantize: true };
      }),
      `${FIXTURES}llama3_gqa`,
    );
    expect(m.excluded).toHaveLength(14);
    expect(m.excluded).not.toContain(L(2, "mlp.proj"));
  });
});

describe("exclude_modules", () => {
  it("keeps TensorRT-LLM's defaults and adds the excluded Linears; weight-only also names their weights", async () => {
    const m = await loadQuantizableModel(
      hinted((x) => (x.layers[0]!.attn.hints = off)),
      `${FIXTURES}llama3_gqa`,
    );
    const ex = excludeModules(resolveQuant(m.lowered.graph, { weight: "w8a16", excluded: m.excluded }), m.lowered.graph, 3, 1);
    expect(ex).toEqual([
      ...DEFAULT_EXCLUDE_MODULES,
      L(0, "attention.qkv"),
      `${L(0, "attention.qkv")}.weight`,
      L(0, "attention.dense"),
      `${L(0, "attention.dense")}.weight`,
    ]);
    // Each pattern does its job under fnmatchcase: the module for quantize_layers, the tensor for the load-time quantizer.
    expect(ex.some((p) => fnmatchCase(`${L(0, "attention.qkv")}.weight`, p))).toBe(true);
    expect(ex.some((p) => fnmatchCase(`${L(1, "attention.qkv")}.weight`, p))).toBe(false);
    expect(excludeModules(resolveQuant(m.lowered.graph, { weight: "w4a16" }), m.lowered.graph, 3, 1)).toEqual(DEFAULT_EXCLUDE_MODULES);
  });

  it("uses stage-local layer names and rejects exclusions that differ between pipeline stages", async () => {
    const m = await loadQuantizableModel(llama, `${FIXTURES}llama`); // 2 layers
    const g = m.lowered.graph;
    const ok = resolveQuant(g, { weight: "w8a16", excluded: [L(0, "attention.dense"), L(1, "attention.dense")] });
    expect(excludeModules(ok, g, 2, 2).slice(DEFAULT_EXCLUDE_MODULES.length)).toEqual([L(0, "attention.dense"), `${L(0, "attention.dense")}.weight`]);
    const bad = resolveQuant(g, { weight: "w8a16", excluded: [L(1, "attention.dense")] });
    expect(() => excludeModules(bad, g, 2, 2)).toThrow(
      /'transformer\.layers\.0\.attention\.dense' is quantized but 'transformer\.layers\.0\.attention\.dense' is excluded on another pipeline stage/,
    );
    expect(excludeModules(bad, g, 2, 1)).toContain(L(1, "attention.dense"));
  });

  it("guards tensors whose names only look like quantizable weights from load-time quantization", async () => {
    const m = await loadQuantizableModel(llama, `${FIXTURES}llama`);
    const g = {
      ...m.lowered.graph,
      params: [...m.lowered.graph.params, { name: L(1, "my_proj.weight"), value: -1 }, { name: "transformer.odd[fc.weight", value: -2 }],
    };
    const ex = excludeModules(resolveQuant(g, { weight: "w8a16" }), g, 2, 1);
    expect(ex.slice(DEFAULT_EXCLUDE_MODULES.length)).toEqual([L(1, "my_proj.weight"), "transformer.odd[[]fc.weight"]);
    expect(fnmatchCase("transformer.odd[fc.weight", fnmatchLiteral("transformer.odd[fc.weight"))).toBe(true);
    expect(
      excludeModules(
        resolveQuant(g, {
          weight: "fp8",
          calibration: {
            format: "kiln.calibration/1",
            model: "x",
            prompts: 0,
            tokens: 0,
            inputs: Object.fromEntries(
              ["0", "1"].flatMap((l) => ["attention.qkv", "attention.dense", "mlp.fc", "mlp.gate", "mlp.proj"].map((s) => [L(Number(l), s), 1])),
            ),
            kvCache: {},
          },
        }),
        g,
        2,
        1,
      ),
    ).toEqual(DEFAULT_EXCLUDE_MODULES);
  });
});

describe("resolveQuant", () => {
  it("needs a calibration for FP8 and KV-cache schemes that covers every module, and none for weight-only", async () => {
    const m = await loadQuantizableModel(llama, `${FIXTURES}llama`);
    const g = m.lowered.graph;
    expect(() => resolveQuant(g, { weight: "fp8" })).toThrow(/--quant fp8 needs calibration/);
    expect(() => resolveQuant(g, { kv: "int8" })).toThrow(/--kv-cache int8 needs calibration/);
    const partial = { format: "kiln.calibration/1" as const, model: "llama", prompts: 1, tokens: 1, inputs: { [L(0, "attention.qkv")]: 1 }, kvCache: {} };
    expect(() => resolveQuant(g, { weight: "fp8", calibration: partial })).toThrow(
      /calibration of model 'llama' has no statistics for transformer\.layers\.0\.attention\.dense, .* and 5 more$/,
    );
    expect(() => resolveQuant(g, { kv: "fp8", calibration: partial })).toThrow(
      /no statistics for transformer\.layers\.0\.attention, transformer\.layers\.1\.attention$/,
    );
    expect(resolveQuant(g, { weight: "w4a16" }).linears).toHaveLength(10);
    expect(() => resolveQuant(g, { weight: "w4a16", excluded: ["lm_head"] })).toThrow(/'lm_head' is not a quantizable Linear/);
  });
});
