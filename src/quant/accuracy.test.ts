// Measured accuracy of every scheme on every fixture (the table in docs/quantization.md), asserted with margin
// both ways: a regression in rounding or scaling makes the error grow past the upper bound, and quantization that
// silently stops happening (a lost hook, a skipped weight) drops it below the lower one. Simulated engine vs the
// unquantized lowered model over the built-in prompts (30 positions), float16 engine dtype.

import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { FIXTURES, hasRealModel, REAL_TINYSTORIES } from "../../test/golden.ts";
import { DEFAULT_PROMPTS } from "./prompts.ts";
import { evaluateQuant, loadQuantizableModel } from "../driver/quantized-model.ts";
import type { QuantOptions } from "./spec.ts";

const SCHEMES: Record<string, QuantOptions> = {
  w8a16: { weight: "w8a16" },
  w4a16: { weight: "w4a16" },
  fp8: { weight: "fp8" },
  "kv int8": { kv: "int8" },
  "kv fp8": { kv: "fp8" },
  "fp8 + kv fp8": { weight: "fp8", kv: "fp8" },
};

/** [relative logit error, top-1 agreement, KL divergence] as measured. */
type Row = readonly [number, number, number];
const MEASURED: Record<string, { dir: string; def: ModelDefinition<any>; rows: Record<string, Row> }> = {
  gpt2: {
    dir: `${FIXTURES}gpt2`,
    def: gpt2,
    rows: {
      w8a16: [6.649e-3, 1, 3.881e-7],
      w4a16: [1.054e-1, 1, 4.417e-5],
      fp8: [3.835e-2, 1, 5.137e-5],
      "kv int8": [3.101e-3, 1, 8.114e-8],
      "kv fp8": [1.086e-2, 1, 1.594e-6],
      "fp8 + kv fp8": [4.088e-2, 1, 4.603e-5],
    },
  },
  gptj: {
    dir: `${FIXTURES}gptj`,
    def: gptj,
    rows: {
      w8a16: [8.471e-3, 0.967, 3.434e-5],
      w4a16: [1.42e-1, 0.8, 9.969e-3],
      fp8: [5.423e-2, 0.9, 1.513e-3],
      "kv int8": [5.609e-3, 0.967, 1.565e-5],
      "kv fp8": [2.01e-2, 0.967, 1.923e-4],
      "fp8 + kv fp8": [5.77e-2, 0.9, 1.656e-3],
    },
  },
  llama: {
    dir: `${FIXTURES}llama`,
    def: llama,
    rows: {
      w8a16: [1.07e-2, 1, 5.494e-5],
      w4a16: [1.813e-1, 0.833, 1.574e-2],
      fp8: [6.338e-2, 0.9, 1.898e-3],
      "kv int8": [7.365e-3, 1, 2.583e-5],
      "kv fp8": [2.446e-2, 0.933, 2.761e-4],
      "fp8 + kv fp8": [7.001e-2, 0.933, 2.327e-3],
    },
  },
  llama3_gqa: {
    dir: `${FIXTURES}llama3_gqa`,
    def: llama,
    rows: {
      w8a16: [1.264e-2, 0.967, 8.11e-5],
      w4a16: [1.972e-1, 0.867, 1.973e-2],
      fp8: [7.835e-2, 0.867, 3.054e-3],
      "kv int8": [1.007e-2, 0.967, 5.055e-5],
      "kv fp8": [3.033e-2, 0.933, 4.724e-4],
      "fp8 + kv fp8": [8.043e-2, 0.933, 3.179e-3],
    },
  },
  tinystories: {
    dir: REAL_TINYSTORIES,
    def: llama,
    rows: {
      w8a16: [6.236e-3, 1, 2.071e-4],
      w4a16: [8.407e-2, 0.8, 4.299e-2],
      fp8: [2.288e-2, 1, 6.868e-3],
      "kv int8": [2.593e-2, 1, 5.266e-3],
      "kv fp8": [2.437e-2, 1, 2.707e-3],
      "fp8 + kv fp8": [4.409e-2, 0.967, 9.954e-3],
    },
  },
};

describe("quantization accuracy (measured bounds)", () => {
  for (const [fixture, { dir, def, rows }] of Object.entries(MEASURED))
    it.skipIf(fixture === "tinystories" && !hasRealModel)(`${fixture}: every scheme within its measured bounds`, async () => {
      const m = await loadQuantizableModel(def, dir);
      for (const [scheme, [rel, top1, kl]] of Object.entries(rows)) {
        const a = evaluateQuant(m, SCHEMES[scheme]!, "float16", DEFAULT_PROMPTS).accuracy;
        const at = `${fixture} ${scheme}`;
        expect(a.relLogitError, at).toBeGreaterThan(0.8 * rel);
        expect(a.relLogitError, at).toBeLessThan(1.25 * rel);
        expect(a.top1Agreement, at).toBeGreaterThanOrEqual(top1 - 1.5 / 30);
        expect(a.klDivergence, at).toBeGreaterThan(0.5 * kl);
        expect(a.klDivergence, at).toBeLessThan(2 * kl);
      }
    });
});
