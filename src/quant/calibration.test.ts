import { beforeAll, describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import { FIXTURES } from "../../test/golden.ts";
import { causalInputs } from "../interp/causal-lm.ts";
import { runGraph } from "../interp/run.ts";
import type { RTensor } from "../interp/tensor.ts";
import { activationScale, type Calibration, formatCalibration, kvScale, parseCalibration } from "./calibration.ts";
import { DEFAULT_PROMPTS } from "./prompts.ts";
import { calibrateModel, loadQuantizableModel, type QuantizableModel } from "../driver/quantized-model.ts";

let m: QuantizableModel;
let c: Calibration;
beforeAll(async () => {
  m = await loadQuantizableModel(llama, `${FIXTURES}llama3_gqa`);
  c = calibrateModel(m, DEFAULT_PROMPTS);
});

const amax = (x: ArrayLike<number>) => Array.from(x).reduce((a, v) => Math.max(a, Math.abs(v)), 0);

describe("calibrate", () => {
  it("covers every quantizable Linear and attention of the lowered model", () => {
    expect(c.prompts).toBe(4);
    expect(c.tokens).toBe(30);
    expect(Object.keys(c.inputs)).toHaveLength(3 * 5);
    expect(Object.keys(c.inputs).slice(0, 5)).toEqual(
      ["attention.qkv", "attention.dense", "mlp.fc", "mlp.gate", "mlp.proj"].map((s) => `transformer.layers.0.${s}`),
    );
    expect(Object.keys(c.kvCache)).toEqual([0, 1, 2].map((l) => `transformer.layers.${l}.attention`));
  });

  it("records max |input| of qkv = the input layernorm's output, and of V = x W_v^T, computed independently", () => {
    // Plain interpreter run of the lowered graph; the layernorm output is the qkv input.
    let normMax = 0;
    let vMax = 0;
    const params = new Map([...m.weights].map(([k, [t]]) => [k, t!]));
    const w = params.get("transformer.layers.1.attention.qkv.weight")!;
    const [, hidden] = w.shape as [number, number];
    const vRows = [(8 + 2) * 8, (8 + 4) * 8]; // heads 8, kv heads 2, head dim 8: V rows [80, 96)
    for (const ids of DEFAULT_PROMPTS)
      runGraph(m.lowered.graph, causalInputs(ids), params, {
        onNode: (n, outs: RTensor[]) => {
          if (n.scope !== "transformer.layers.1.input_layernorm") return;
          const x = outs[0]!.data;
          normMax = Math.max(normMax, amax(x));
          for (let t = 0; t < x.length / hidden; t++)
            for (let r = vRows[0]!; r < vRows[1]!; r++) {
              let s = 0;
              for (let k = 0; k < hidden; k++) s += x[t * hidden + k]! * w.data[r * hidden + k]!;
              vMax = Math.max(vMax, Math.abs(s));
            }
        },
      });
    expect(c.inputs["transformer.layers.1.attention.qkv"]).toBe(normMax);
    expect(c.kvCache["transformer.layers.1.attention"]!.v).toBeCloseTo(vMax, 5);
    expect(c.kvCache["transformer.layers.1.attention"]!.k).toBeGreaterThan(0);
  });

  it("derives scales: activation amax / 448, KV max(k, v) / 127 or / 448", () => {
    const kv = c.kvCache["transformer.layers.0.attention"]!;
    expect(activationScale(c, "transformer.layers.0.mlp.proj")).toBe(Math.fround(c.inputs["transformer.layers.0.mlp.proj"]! / 448));
    expect(kvScale(c, "transformer.layers.0.attention", "int8")).toBe(Math.fround(Math.max(kv.k, kv.v) / 127));
    expect(kvScale(c, "transformer.layers.0.attention", "fp8")).toBe(Math.fround(Math.max(kv.k, kv.v) / 448));
    expect(() => activationScale(c, "lm_head")).toThrow(/no input statistics for 'lm_head'/);
  });

  it("round-trips through its JSON form and rejects malformed files by name", () => {
    expect(parseCalibration(formatCalibration(c), "c.json")).toEqual(c);
    expect(() => parseCalibration("{", "c.json")).toThrow(/^c\.json: not JSON/);
    expect(() => parseCalibration('{"format":"x"}', "c.json")).toThrow(/not a Kiln calibration/);
    expect(() => parseCalibration('{"format":"kiln.calibration/1","inputs":{"a":-1}}', "c.json")).toThrow(/inputs\."a" must be a finite number >= 0/);
    expect(() => parseCalibration('{"format":"kiln.calibration/1","kvCache":{"a":{"k":1}}}', "c.json")).toThrow(/kvCache\."a" must be/);
  });
});
