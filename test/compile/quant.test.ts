// kiln compile --quant / --kv-cache: the checkpoint carries exactly what TensorRT-LLM 1.2.1 needs and exactly what
// the CPU simulation of the quantized engine assumes. FP8: every quantized Linear has F8_E4M3 `.weight` [out, in]
// and F32 [1] `.weights_scaling_factor` / `.activation_scaling_factor`, fc and gate share a scale, every attention
// has `kv_cache_scaling_factor`; reading the files back and simulating gives the simulated engine's logits bit for
// bit. Weight-only: half-precision weights, the right quant_algo, no scales at all.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import gpt2 from "../../models/gpt2.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { activationScale, kvScale } from "../../src/quant/calibration.ts";
import { ROUND_TO } from "../../src/quant/fake-quant-model.ts";
import { e4m3ToF32, roundToE4M3 } from "../../src/numerics/fp8-e4m3.ts";
import { DEFAULT_PROMPTS } from "../../src/quant/prompts.ts";
import { calibrateModel, loadQuantizableModel, type QuantizableModel, simulateEngine } from "../../src/driver/quantized-model.ts";
import { DEFAULT_EXCLUDE_MODULES } from "../../src/quant/schemes.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURES } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-quant-compile-"));
const config = (dir: string) => JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));

async function readAll(file: string): Promise<Map<string, { dtype: string; shape: number[]; data: Float32Array | Uint8Array }>> {
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

/** A Python with torch and safetensors (CI installs one; locally .venv), or undefined. */
const python = [process.env.KILN_PYTHON, ".venv/bin/python", "python3"].find((py) => {
  if (!py || (py.includes("/") && !existsSync(py))) return false;
  try {
    execFileSync(py, ["-c", "import torch, safetensors"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
});

let m: QuantizableModel;
beforeAll(async () => {
  m = await loadQuantizableModel(llama, `${FIXTURES}llama3_gqa`);
});

describe("FP8 checkpoint", () => {
  it("holds E4M3 weights with per-rank, per-group scales, calibrated activation and KV scales, and config fields", async () => {
    const out = join(tmp, "fp8-tp2-pp1");
    await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: out, mapping: { tp: 2, pp: 1 }, quant: { weight: "fp8", kv: "fp8" } });
    expect(config(out).quantization).toEqual({ quant_algo: "FP8", kv_cache_quant_algo: "FP8", exclude_modules: DEFAULT_EXCLUDE_MODULES });
    expect(config(out).dtype).toBe("float16");
    const calib = calibrateModel(m, DEFAULT_PROMPTS);
    const ranks = [await readAll(join(out, "rank0.safetensors")), await readAll(join(out, "rank1.safetensors"))];
    const unquantized = join(tmp, "f32-tp2");
    await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: unquantized, mapping: { tp: 2, pp: 1 }, dtype: "float32" });
    const plain = [await readAll(join(unquantized, "rank0.safetensors")), await readAll(join(unquantized, "rank1.safetensors"))];
    for (const [r, files] of ranks.entries())
      for (let l = 0; l < 3; l++) {
        const at = (s: string) => `transformer.layers.${l}.${s}`;
        for (const lin of ["attention.qkv", "attention.dense", "mlp.fc", "mlp.gate", "mlp.proj"]) {
          const w = files.get(at(`${lin}.weight`))!;
          const src = plain[r]!.get(at(`${lin}.weight`))!;
          expect(w.dtype, at(lin)).toBe("F8_E4M3");
          expect(w.shape).toEqual(src.shape);
          for (const s of ["weights_scaling_factor", "activation_scaling_factor"])
            expect(files.get(at(`${lin}.${s}`))).toMatchObject({ dtype: "F32", shape: [1] });
          // The scale is this rank's group max / 448; the codes are E4M3(w / scale).
          const group = lin === "mlp.fc" || lin === "mlp.gate" ? ["mlp.fc", "mlp.gate"] : [lin];
          const amax = Math.max(...group.map((g) => (plain[r]!.get(at(`${g}.weight`))!.data as Float32Array).reduce((a, v) => Math.max(a, Math.abs(v)), 0)));
          const scale = (files.get(at(`${lin}.weights_scaling_factor`))!.data as Float32Array)[0]!;
          expect(scale).toBe(Math.fround(amax / 448));
          expect(Array.from(e4m3ToF32(w.data as Uint8Array))).toEqual(Array.from(src.data as Float32Array, (v) => roundToE4M3(v / scale)));
          expect((files.get(at(`${lin}.activation_scaling_factor`))!.data as Float32Array)[0]).toBe(activationScale(calib, `transformer.layers.${l}.${lin}`));
        }
        expect(files.get(at("attention.kv_cache_scaling_factor"))).toEqual({
          dtype: "F32",
          shape: [1],
          data: Float32Array.of(kvScale(calib, at("attention"), "fp8")),
        });
        expect(files.get(at("input_layernorm.weight"))!.dtype).toBe("F16");
      }
    for (const f of ranks) {
      expect(f.get("lm_head.weight")!.dtype).toBe("F16");
      expect([...f.keys()].filter((n) => n.startsWith("lm_head."))).toEqual(["lm_head.weight"]);
    }
    // Row-parallel shards get their own scales.
    expect(ranks[0]!.get("transformer.layers.0.attention.dense.weights_scaling_factor")!.data).not.toEqual(
      ranks[1]!.get("transformer.layers.0.attention.dense.weights_scaling_factor")!.data,
    );
  });

  it("holds exactly what the simulated engine computes with (tp=1, pp=2: stage-local names)", async () => {
    const out = join(tmp, "fp8-pp2");
    await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: out, mapping: { tp: 1, pp: 2 }, quant: { weight: "fp8", kv: "int8" } });
    const engine = simulateEngine(m, { weight: "fp8", kv: "int8" }, "float16", DEFAULT_PROMPTS);
    const calib = engine.spec.calibration!;
    const round = ROUND_TO.float16;
    const seen = new Set<string>();
    const layerOffset = [0, 2]; // 3 layers over 2 stages: [0, 1] and [2]
    for (const s of [0, 1]) {
      const files = await readAll(join(out, `rank${s}.safetensors`));
      for (const [name, t] of files) {
        const global = name.replace(/^transformer\.layers\.(\d+)\./, (_, l) => `transformer.layers.${Number(l) + layerOffset[s]!}.`);
        const module = global.slice(0, global.lastIndexOf("."));
        const value = (t.data as Float32Array)[0];
        if (name.endsWith(".weights_scaling_factor"))
          continue; // checked through the weight it dequantizes
        else if (name.endsWith(".activation_scaling_factor")) expect(value, name).toBe(activationScale(calib, module));
        else if (name.endsWith(".kv_cache_scaling_factor")) expect(value, name).toBe(kvScale(calib, module, "int8"));
        else if (t.dtype === "F8_E4M3") {
          const scale = (files.get(`${name.slice(0, -".weight".length)}.weights_scaling_factor`)!.data as Float32Array)[0]!;
          expect(e4m3ToF32(t.data as Uint8Array, round(scale)), name).toEqual(engine.weights.get(global)![0]!.data);
        } else expect(t.data, name).toEqual((m.weights.get(global)![0]!.data as Float32Array).map(round));
        seen.add(global);
      }
    }
    expect(seen.size).toBe(m.weights.size + 15 + 3);
  });
});

describe("FP8 checkpoint read by PyTorch", () => {
  it.skipIf(!python)("has float8_e4m3fn weights byte-identical to torch's own conversion, and float32 [1] scales", async () => {
    const [q, ref] = [join(tmp, "torch-fp8"), join(tmp, "torch-f32")];
    await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: q, mapping: { tp: 2, pp: 1 }, quant: { weight: "fp8", kv: "fp8" } });
    await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: ref, mapping: { tp: 2, pp: 1 }, dtype: "float32" });
    const out = execFileSync(python!, ["test/compile/fp8_torch_check.py", q, ref], { encoding: "utf8" });
    expect(out).toMatch(/OK: 30 FP8 weights byte-identical/);
  });
});

describe("weight-only checkpoint", () => {
  it("keeps half-precision weights, sets quant_algo and writes no scales; hints become exclude_modules", async () => {
    const out = join(tmp, "w4a16");
    const r = await compileModel(gpt2, { hfDir: `${FIXTURES}gpt2`, outDir: out, quant: { weight: "w4a16", kv: "int8" } });
    expect(config(out).quantization).toEqual({ quant_algo: "W4A16", kv_cache_quant_algo: "INT8", exclude_modules: DEFAULT_EXCLUDE_MODULES });
    const files = await readAll(join(out, "rank0.safetensors"));
    const plain = r.emission.plans[0]!.tensors.filter((t) => !t.name.endsWith("kv_cache_scaling_factor")).map((t) => t.name);
    expect([...files.keys()].filter((n) => !n.endsWith("kv_cache_scaling_factor"))).toEqual(plain);
    expect([...files.keys()].filter((n) => /scal/.test(n))).toEqual([
      "transformer.layers.0.attention.kv_cache_scaling_factor",
      "transformer.layers.1.attention.kv_cache_scaling_factor",
    ]);
    expect([...files.values()].filter((t) => t.dtype !== "F16").map((t) => t.dtype)).toEqual(["F32", "F32"]);
  });

  it("refuses float32, other targets, and a calibration that does not cover the model", async () => {
    const hfDir = `${FIXTURES}llama`;
    await expect(compileModel(llama, { hfDir, outDir: join(tmp, "x"), dtype: "float32", quant: { weight: "w8a16" } })).rejects.toThrow(
      /--quant w8a16 needs --dtype float16 or bfloat16/,
    );
    await expect(compileModel(llama, { hfDir, outDir: join(tmp, "x"), target: "hf", quant: { kv: "fp8" } })).rejects.toThrow(
      /--quant and --kv-cache apply to the trtllm-engine target only/,
    );
    const other = calibrateModel(await loadQuantizableModel(llama, hfDir), DEFAULT_PROMPTS);
    await expect(compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: join(tmp, "x"), quant: { weight: "fp8", calibration: other } })).rejects.toThrow(
      /no statistics for transformer\.layers\.2\.attention\.qkv/,
    );
  });
});
