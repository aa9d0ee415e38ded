// Pre-quantized FP8 checkpoints (ModelOpt and compressed-tensors layouts, test/fixtures/prequant, made by
// scripts/prequant-fixtures/make.py with transformers and torch's own float8_e4m3fn): `kiln compile` recognizes them
// and writes TensorRT-LLM 1.2.1's FP8 checkpoint from the checkpoint's own codes and scales (no calibration); the
// interpreter and the simulated engine reproduce the goldens; the rank files hold exactly what the simulated engine
// computes with at tp 1 and 2; broken inputs fail with one line naming the tensor.
// Tolerances (relative L2 over all logits): the goldens are float32 transformers runs; Kiln's interpreter differs
// from transformers by float32 summation order only (rel L2 <= 4e-7 on the plain fixtures, README), so 1e-5 leaves
// 25x margin for that roundoff and none for a wrong scale (a scale off by one float16 ulp moves logits ~1e-3).
// With the engine's activation fake-quant, a float32 roundoff difference can move x / s across an E4M3 rounding
// boundary and flip one code; the same 1e-5 bound holds on these fixtures (measured below) and is asserted as is.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { planCommand } from "../../src/cli/commands/plan.ts";
import { loadWeights, instantiateFromDir } from "../../src/driver/instantiate.ts";
import { loadQuantizableModel, logitsOf, simulateEngine } from "../../src/driver/quantized-model.ts";
import { causalInputs } from "../../src/interp/causal-lm.ts";
import { runGraph } from "../../src/interp/run.ts";
import { type RTensor, tensor } from "../../src/interp/tensor.ts";
import { simulateTensorParallel } from "../../src/lower/simulate.ts";
import { e4m3BitsToF32, e4m3ToF32, f32ToE4M3, f32ToE4M3Bits } from "../../src/numerics/fp8-e4m3.ts";
import { SafetensorsFile, type TensorWithData, writeSafetensors } from "../../src/weights/safetensors.ts";
import { PREQUANT, readGolden } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-prequant-"));
const FIXTURES = ["modelopt_fp8", "ct_fp8"] as const;
const TOL = 1e-5;
/** TensorRT-LLM Linear -> the HF modules fused into it (models/llama.ts). */
const SOURCES: Record<string, string[]> = {
  "attention.qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
  "attention.dense": ["self_attn.o_proj"],
  "mlp.fc": ["mlp.gate_proj"],
  "mlp.gate": ["mlp.up_proj"],
  "mlp.proj": ["mlp.down_proj"],
};

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

async function readAll(file: string) {
  const f = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, { dtype: string; shape: number[]; data: Float32Array | Uint8Array }>();
    for (const t of f.tensors())
      out.set(t.name, {
        dtype: t.dtype,
        shape: [...t.shape],
        data: t.dtype === "F8_E4M3" ? new Uint8Array(await f.readBytes(t.name)) : await f.readF32(t.name),
      });
    return out;
  } finally {
    await f.close();
  }
}

describe.each(FIXTURES)("pre-quantized %s", (fixture) => {
  const dir = `${PREQUANT}${fixture}`;

  it("runs in the interpreter as the dequantized model (golden_weights) and in the simulated engine as TensorRT-LLM's FP8 (golden)", async () => {
    const inst = instantiateFromDir(llama, dir);
    const params = await loadWeights(inst, dir);
    const m = await loadQuantizableModel(llama, dir);
    expect(m.prequant?.weight).toBe("fp8");
    const engine = simulateEngine(m, {}, "float16", []);
    for (const [i, g] of (await readGolden(dir, "golden_weights.safetensors")).entries()) {
      const logits = runGraph(inst.graph, causalInputs(g.ids), params).get("logits")!.data as Float32Array;
      expect(relL2(logits, g.logits), `prompt ${i}`).toBeLessThan(TOL);
    }
    for (const [i, g] of (await readGolden(dir)).entries()) expect(relL2(logitsOf(m, g.ids, engine), g.logits), `prompt ${i}`).toBeLessThan(TOL);
  });

  it.each([1, 2])("compiles at tp %i to FP8 rank files holding the source codes and scales, equal to the simulated engine", async (tp) => {
    const out = join(tmp, `${fixture}-tp${tp}`);
    await compileModel(llama, { hfDir: dir, outDir: out, mapping: { tp, pp: 1 } });
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.quantization.quant_algo).toBe("FP8");
    expect(config.quantization.kv_cache_quant_algo).toBeNull();
    expect(config.dtype).toBe("float16");
    const m = await loadQuantizableModel(llama, dir);
    const engine = simulateEngine(m, {}, "float16", []);
    const src = await readAll(join(dir, "model.safetensors"));
    const scalar = (name: string) => (src.get(name)!.data as Float32Array)[0]!;
    const ranks = await Promise.all(Array.from({ length: tp }, (_, r) => readAll(join(out, `rank${r}.safetensors`))));
    const mats = new Map<string, RTensor[]>();
    for (const [r, files] of ranks.entries()) {
      for (const [name, t] of files) {
        if (/scaling_factor$/.test(name)) continue;
        const module = name.slice(0, name.lastIndexOf("."));
        const data =
          t.dtype === "F8_E4M3"
            ? e4m3ToF32(t.data as Uint8Array, (files.get(`${module}.weights_scaling_factor`)!.data as Float32Array)[0]!)
            : (t.data as Float32Array);
        if (t.dtype !== "F8_E4M3") expect(t.dtype, name).toBe("F16");
        const list = mats.get(name) ?? [];
        list[r] = tensor("f32", t.shape, data);
        mats.set(name, list);
      }
      for (let l = 0; l < 3; l++)
        for (const [lin, hfs] of Object.entries(SOURCES)) {
          const at = `transformer.layers.${l}.${lin}`;
          const w = files.get(`${at}.weight`)!;
          expect(w.dtype).toBe("F8_E4M3");
          // Per-tensor scales are the checkpoint's (the group's largest), replicated on every rank.
          const s = (files.get(`${at}.weights_scaling_factor`)!.data as Float32Array)[0]!;
          expect(s).toBe(Math.max(...hfs.map((h) => scalar(`model.layers.${l}.${h}.weight_scale`))));
          expect((files.get(`${at}.activation_scaling_factor`)!.data as Float32Array)[0]).toBe(
            Math.max(...hfs.map((h) => scalar(`model.layers.${l}.${h}.input_scale`))),
          );
          // No requantization where the group's scale is the source's: at tp 1 the codes are the source bytes.
          if (tp === 1) {
            const codes = hfs.map((h) => src.get(`model.layers.${l}.${h}.weight`)!.data as Uint8Array);
            expect(Buffer.from(w.data as Uint8Array).equals(Buffer.concat(codes)), at).toBe(true);
            expect(mats.get(`${at}.weight`)![0]!.data, at).toEqual(engine.weights.get(`${at}.weight`)![0]!.data);
          }
        }
    }
    // The rank files, dequantized as FP8Linear does and run through the tensor-parallel simulator with the engine's
    // activation fake-quant, reproduce the golden.
    for (const [i, g] of (await readGolden(dir)).entries()) {
      const logits = simulateTensorParallel(m.lowered.graph, causalInputs(g.ids), mats, tp, engine.hooks).get("logits")!.data as Float32Array;
      expect(relL2(logits, g.logits), `prompt ${i}`).toBeLessThan(TOL);
    }
  });
});

/** TensorRT-LLM 1.2.1's W4A16_AWQ checkpoint tensors of one Linear, dequantized as its group-wise kernel does. */
function dequantInt4(files: Map<string, { shape: number[]; data: Float32Array | Uint8Array }>, module: string, raw: Uint8Array): RTensor {
  const [halfOut, inF] = files.get(`${module}.weight`)!.shape as [number, number];
  const out = 2 * halfOut;
  const scales = files.get(`${module}.weights_scaling_factor`)!; // [out, in/group]
  const zeros = files.get(`${module}.zero`)!; // [in/group, out]
  const groups = scales.shape[1]!;
  const group = inF / groups;
  const w = new Float32Array(out * inF);
  for (let i = 0; i < halfOut; i++)
    for (let k = 0; k < inF; k++) {
      const byte = raw[i * inF + k]!;
      const codes = [((byte & 0xf) << 28) >> 28, (byte << 24) >> 28]; // signed nibbles: low = row 2i, high = row 2i + 1
      for (const [half, c] of codes.entries()) {
        const o = 2 * i + half;
        const g = Math.floor(k / group);
        w[o * inF + k] = c * (scales.data as Float32Array)[o * groups + g]! + (zeros.data as Float32Array)[g * out + o]!;
      }
    }
  return tensor("f32", [out, inF], w);
}

describe.each(["awq_int4", "gptq_int4"] as const)("pre-quantized %s", (fixture) => {
  const dir = `${PREQUANT}${fixture}`;

  it("runs in the interpreter as the format's dequantization (golden_weights) and in the simulated engine as 1.2.1's kernel (golden)", async () => {
    const inst = instantiateFromDir(llama, dir);
    const params = await loadWeights(inst, dir);
    for (const [i, g] of (await readGolden(dir, "golden_weights.safetensors")).entries())
      expect(relL2(runGraph(inst.graph, causalInputs(g.ids), params).get("logits")!.data as Float32Array, g.logits), `prompt ${i}`).toBeLessThan(TOL);
    const m = await loadQuantizableModel(llama, dir);
    expect(m.prequant?.weight).toBe("w4a16_awq");
    const engine = simulateEngine(m, {}, "float16", []);
    for (const [i, g] of (await readGolden(dir)).entries()) expect(relL2(logitsOf(m, g.ids, engine), g.logits), `prompt ${i}`).toBeLessThan(TOL);
  });

  it.each([1, 2])("compiles at tp %i to W4A16_AWQ rank files that reproduce the golden", async (tp) => {
    const out = join(tmp, `${fixture}-tp${tp}`);
    await compileModel(llama, { hfDir: dir, outDir: out, mapping: { tp, pp: 1 } });
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.quantization).toMatchObject({ quant_algo: "W4A16_AWQ", group_size: 32, has_zero_point: true, pre_quant_scale: false });
    const m = await loadQuantizableModel(llama, dir);
    const mats = new Map<string, RTensor[]>();
    for (let r = 0; r < tp; r++) {
      const files = await readAll(join(out, `rank${r}.safetensors`));
      const raw = await SafetensorsFile.open(join(out, `rank${r}.safetensors`));
      for (const [name, t] of files) {
        if (/\.(weights_scaling_factor|zero)$/.test(name)) continue;
        const module = name.slice(0, name.lastIndexOf("."));
        const w = t.dtype === "I8" ? dequantInt4(files, module, await raw.readBytes(name)) : tensor("f32", t.shape, t.data as Float32Array);
        if (t.dtype === "I8") expect(files.get(`${module}.weights_scaling_factor`)!.dtype).toBe("F16");
        const list = mats.get(name) ?? [];
        list[r] = w;
        mats.set(name, list);
      }
      await raw.close();
    }
    expect([...mats.keys()].filter((n) => /layers\.0\./.test(n)).length).toBe(7);
    for (const [i, g] of (await readGolden(dir)).entries()) {
      const logits = simulateTensorParallel(m.lowered.graph, causalInputs(g.ids), mats, tp).get("logits")!.data as Float32Array;
      expect(relL2(logits, g.logits), `prompt ${i}`).toBeLessThan(TOL);
    }
  });
});

/** A copy of a fixture with its tensors (raw bytes) and config edited. */
async function brokenCopy(
  fixture: string,
  name: string,
  edit: (t: Map<string, TensorWithData>) => void,
  config: (c: Record<string, unknown>) => void = () => {},
): Promise<string> {
  const from = `${PREQUANT}${fixture}`;
  const to = join(tmp, `broken-${name}`);
  cpSync(from, to, { recursive: true });
  const f = await SafetensorsFile.open(join(from, "model.safetensors"));
  const tensors = new Map<string, TensorWithData>();
  for (const t of f.tensors()) tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: [...t.shape], data: new Uint8Array(await f.readBytes(t.name)) });
  await f.close();
  edit(tensors);
  rmSync(join(to, "model.safetensors"));
  await writeSafetensors(join(to, "model.safetensors"), [...tensors.values()]);
  const c = JSON.parse(readFileSync(join(to, "config.json"), "utf8"));
  config(c);
  writeFileSync(join(to, "config.json"), JSON.stringify(c));
  return to;
}

describe("broken pre-quantized checkpoints", () => {
  it("a missing FP8 weight scale is a one-line error naming the tensor", async () => {
    const dir = await brokenCopy("modelopt_fp8", "no-scale", (t) => t.delete("model.layers.1.self_attn.k_proj.weight_scale"));
    await expect(compileModel(llama, { hfDir: dir, outDir: join(tmp, "x1") })).rejects.toThrow(
      /^.*"model\.layers\.1\.self_attn\.k_proj\.weight" is F8_E4M3 but "model\.layers\.1\.self_attn\.k_proj\.weight_scale" is missing$/,
    );
  });

  it("a missing INT4 tensor, or the wrong group size, is a one-line error naming the tensor", async () => {
    const noZeros = await brokenCopy("gptq_int4", "no-qzeros", (t) => t.delete("model.layers.0.mlp.up_proj.qzeros"));
    await expect(loadQuantizableModel(llama, noZeros)).rejects.toThrow(/tensor "model\.layers\.0\.mlp\.up_proj\.qzeros" is missing/);
    const group64 = await brokenCopy(
      "awq_int4",
      "group64",
      () => {},
      (c) => ((c.quantization_config as Record<string, unknown>).group_size = 64),
    );
    await expect(compileModel(llama, { hfDir: group64, outDir: join(tmp, "x2") })).rejects.toThrow(
      /tensor "model\.layers\.0\.mlp\.down_proj\.qweight" is \[256,16\], expected \[512,16\] \(group size 64/,
    );
  });

  it("swapped qzeros nibbles load but fail verification against the golden", async () => {
    const dir = await brokenCopy("awq_int4", "swapped-zeros", (t) => {
      for (const [name, x] of t) if (name.endsWith(".qzeros")) x.data = (x.data as Uint8Array).map((b) => ((b & 0xf) << 4) | (b >> 4));
    });
    const m = await loadQuantizableModel(llama, dir);
    const engine = simulateEngine(m, {}, "float16", []);
    const g = (await readGolden(dir))[0]!;
    expect(relL2(logitsOf(m, g.ids, engine), g.logits)).toBeGreaterThan(100 * TOL);
  });

  it("--quant, --kv-cache or a calibration on a pre-quantized checkpoint is refused", async () => {
    await expect(compileModel(llama, { hfDir: `${PREQUANT}ct_fp8`, outDir: join(tmp, "x3"), quant: { weight: "fp8" } })).rejects.toThrow(
      /ct_fp8 is already quantized \(compressed-tensors FP8 \(per-tensor weight scales\)\): its own scales are used; drop --quant/,
    );
    const m = await loadQuantizableModel(llama, `${PREQUANT}awq_int4`);
    expect(() => simulateEngine(m, { kv: "int8" }, "float16", [])).toThrow(/already quantized/);
  });

  it("a per-channel compressed-tensors checkpoint is refused with the reason", async () => {
    const dir = await brokenCopy(
      "ct_fp8",
      "channel",
      (t) => {
        for (const [name, x] of t)
          if (name.endsWith(".weight_scale")) {
            const rows = t.get(name.replace(/_scale$/, ""))!.shape[0]!;
            const s = new Float32Array(x.data.buffer.slice(0, 4) as ArrayBuffer)[0]!;
            t.set(name, { name, dtype: "F32", shape: [rows, 1], data: new Float32Array(rows).fill(s) });
          }
      },
      (c) => {
        const q = c.quantization_config as { config_groups: { group_0: { weights: { strategy: string } } } };
        q.config_groups.group_0.weights.strategy = "channel";
      },
    );
    await expect(compileModel(llama, { hfDir: dir, outDir: join(tmp, "x4") })).rejects.toThrow(/FP8_PER_CHANNEL_PER_TOKEN/);
    // ... while the dequantized view still reads it (per-row scales), so the interpreter runs it.
    const inst = instantiateFromDir(llama, dir);
    const params = await loadWeights(inst, dir);
    const g = (await readGolden(dir, "golden_weights.safetensors"))[0]!;
    expect(relL2(runGraph(inst.graph, causalInputs(g.ids), params).get("logits")!.data as Float32Array, g.logits)).toBeLessThan(TOL);
  });
});

describe("kiln plan on pre-quantized checkpoints", () => {
  it.each(["modelopt_fp8", "ct_fp8", "awq_int4", "gptq_int4"])("%s: weights per GPU are exactly the bytes of the tp 2 rank file", async (fixture) => {
    const out = join(tmp, `plan-${fixture}`);
    await compileModel(llama, { hfDir: `${PREQUANT}${fixture}`, outDir: out, mapping: { tp: 2, pp: 1 } });
    const f = await SafetensorsFile.open(join(out, "rank0.safetensors"));
    const bytes = f.tensors().reduce((a, t) => a + t.byteLength, 0);
    await f.close();
    let json = "";
    await planCommand(
      "models/llama.ts",
      { hf: `${PREQUANT}${fixture}`, tp: "2", pp: "1", gpu: "h100-80gb", maxBatch: "8", json: true, typecheck: false },
      (s) => (json += s),
    );
    const plan = JSON.parse(json);
    expect(plan.options.quant).toBe(fixture.endsWith("fp8") ? "fp8" : "w4a16_awq");
    expect(plan.weightsPerGpu).toBe(bytes);
  });
});

describe("FP8 KV-cache scales of a pre-quantized checkpoint", () => {
  it("become kv_cache_scaling_factor = max(k_scale, v_scale) on every rank, in both naming styles", async () => {
    const k = [0.02, 0.03, 0.05];
    const v = [0.04, 0.01, 0.05];
    for (const [fixture, style] of [
      ["modelopt_fp8", (l: number, kv: "k" | "v") => `model.layers.${l}.self_attn.${kv}_proj.${kv}_scale`],
      ["ct_fp8", (l: number, kv: "k" | "v") => `model.layers.${l}.self_attn.${kv}_scale`],
    ] as const) {
      const dir = await brokenCopy(
        fixture,
        `kv-${fixture}`,
        (t) => {
          for (let l = 0; l < 3; l++)
            for (const [kv, s] of [
              ["k", k[l]!],
              ["v", v[l]!],
            ] as const)
              t.set(style(l, kv), { name: style(l, kv), dtype: "F32", shape: [], data: Float32Array.of(s) });
        },
        (c) => {
          if (fixture === "ct_fp8")
            (c.quantization_config as Record<string, unknown>).kv_cache_scheme = {
              num_bits: 8,
              type: "float",
              strategy: "tensor",
              dynamic: false,
              symmetric: true,
            };
        },
      );
      if (fixture === "modelopt_fp8") {
        const q = JSON.parse(readFileSync(join(dir, "hf_quant_config.json"), "utf8"));
        q.quantization.kv_cache_quant_algo = "FP8";
        writeFileSync(join(dir, "hf_quant_config.json"), JSON.stringify(q));
      }
      const out = join(tmp, `kv-out-${fixture}`);
      await compileModel(llama, { hfDir: dir, outDir: out, mapping: { tp: 2, pp: 1 } });
      expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization.kv_cache_quant_algo).toBe("FP8");
      for (const r of [0, 1]) {
        const files = await readAll(join(out, `rank${r}.safetensors`));
        for (let l = 0; l < 3; l++)
          expect((files.get(`transformer.layers.${l}.attention.kv_cache_scaling_factor`)!.data as Float32Array)[0]).toBe(Math.fround(Math.max(k[l]!, v[l]!)));
      }
      const m = await loadQuantizableModel(llama, dir);
      expect(simulateEngine(m, {}, "float16", []).spec.kv).toBe("fp8");
    }
  });
});

describe("q/k/v with different FP8 weight scales", () => {
  it("are requantized to the largest, as FP8Linear.postprocess does: e4m3(float32(code) * s_k / s_max)", async () => {
    // k_proj of layer 0 gets half the scale and codes for twice the values (the same weights, a different scale).
    const dir = await brokenCopy("modelopt_fp8", "requant", (t) => {
      const w = t.get("model.layers.0.self_attn.k_proj.weight")!;
      w.data = f32ToE4M3(e4m3ToF32(w.data as Uint8Array, 2));
      const s = t.get("model.layers.0.self_attn.k_proj.weight_scale")!;
      s.data = Float32Array.of(new Float32Array((s.data as Uint8Array).slice().buffer)[0]! / 2);
    });
    const out = join(tmp, "requant-out");
    await compileModel(llama, { hfDir: dir, outDir: out });
    const src = await readAll(join(dir, "model.safetensors"));
    const scale = (n: string) => (src.get(`model.layers.0.self_attn.${n}.weight_scale`)!.data as Float32Array)[0]!;
    const sMax = Math.max(scale("q_proj"), scale("k_proj"), scale("v_proj"));
    expect(scale("k_proj")).toBeLessThan(sMax);
    const files = await readAll(join(out, "rank0.safetensors"));
    expect((files.get("transformer.layers.0.attention.qkv.weights_scaling_factor")!.data as Float32Array)[0]).toBe(sMax);
    const qkv = files.get("transformer.layers.0.attention.qkv.weight")!.data as Uint8Array;
    const [q, k, v] = ["q_proj", "k_proj", "v_proj"].map((n) => src.get(`model.layers.0.self_attn.${n}.weight`)!.data as Uint8Array) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    const sK = scale("k_proj");
    const requant = Uint8Array.from(k, (c) => f32ToE4M3Bits(Math.fround(Math.fround(e4m3BitsToF32(c) * sK) / sMax)));
    expect(Buffer.from(qkv.subarray(0, q.length)).equals(Buffer.from(q))).toBe(true);
    expect(Buffer.from(qkv.subarray(q.length, q.length + k.length)).equals(Buffer.from(requant))).toBe(true);
    expect(Buffer.from(qkv.subarray(q.length + k.length)).equals(Buffer.from(v))).toBe(true);
    expect(requant).not.toEqual(k);
  });
});
