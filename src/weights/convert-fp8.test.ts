// The converter's FP8 path (convert.ts + fp8-plan.ts): F8_E4M3 tensors quantized with their scale group's
// amax / 448 over this file, found by a first streaming pass; scale and literal F32 tensors; small blocks force
// both passes across many blocks; float16 sources go through the F32 evaluation; NaN weights and inconsistent
// plans fail before anything is written.

import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { e4m3ToF32, f32ToE4M3 } from "../numerics/fp8-e4m3.ts";
import { openCheckpoint } from "./checkpoint.ts";
import { ConvertError, type PlanTensor, type RankFilePlan, writeCheckpointFiles } from "./convert.ts";
import { constTensor, scaleTensor } from "./fp8-plan.ts";
import { f32ToF16, f16ToF32 } from "./half.ts";
import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
import { slice, src, transpose } from "./weight-map.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-convert-fp8-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const fc = new Float32Array(24 * 40).map((_, i) => Math.sin(i) * (i % 7));
const gate = new Float32Array(24 * 40).map((_, i) => Math.cos(i) * 9.5);
const proj = f32ToF16(new Float32Array(40 * 24).map((_, i) => ((i * 37) % 101) / 50 - 1));

async function checkpoint(name: string) {
  const dir = join(root, name);
  await mkdir(dir);
  await writeSafetensors(join(dir, "model.safetensors"), [
    { name: "fc", dtype: "F32", shape: [24, 40], data: fc },
    { name: "gate", dtype: "F32", shape: [24, 40], data: gate },
    { name: "proj", dtype: "F16", shape: [40, 24], data: proj },
    { name: "bad", dtype: "F32", shape: [2, 2], data: Float32Array.of(1, NaN, 2, 3) },
  ]);
  return openCheckpoint(dir);
}

async function read(file: string) {
  const f = await SafetensorsFile.open(file);
  try {
    return new Map(
      await Promise.all(
        f.tensors().map(async (t) => [t.name, { dtype: t.dtype, shape: [...t.shape], bytes: new Uint8Array(await f.readBytes(t.name)) }] as const),
      ),
    );
  } finally {
    await f.close();
  }
}

const amax = (x: ArrayLike<number>) => Array.from(x).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
const f32 = (b: Uint8Array) => new Float32Array(b.slice().buffer);

describe("FP8 tensors in conversion plans", () => {
  test("quantize with the group's amax / 448 over this file, across many small blocks, with scales and literals beside them", async () => {
    const ckpt = await checkpoint("ok");
    const out = join(root, "ok-out");
    const tensors: PlanTensor[] = [
      { name: "mlp.fc.weight", dtype: "F8_E4M3", expr: src("fc"), scaleGroup: "mlp.fc" },
      scaleTensor("mlp.fc.weights_scaling_factor", "mlp.fc"),
      { name: "mlp.gate.weight", dtype: "F8_E4M3", expr: src("gate"), scaleGroup: "mlp.fc" },
      scaleTensor("mlp.gate.weights_scaling_factor", "mlp.fc"),
      { name: "mlp.proj.weight", dtype: "F8_E4M3", expr: transpose(slice(src("proj"), 0, 0, 20)), scaleGroup: "mlp.proj" },
      scaleTensor("mlp.proj.weights_scaling_factor", "mlp.proj"),
      constTensor("mlp.proj.activation_scaling_factor", [0.125]),
      { name: "plain", dtype: "F16", expr: src("fc") },
    ];
    const plans: RankFilePlan<PlanTensor>[] = [{ file: "rank0.safetensors", tensors }];
    const progress: number[] = [];
    const r = await writeCheckpointFiles(ckpt, plans, out, { blockBytes: 64, onProgress: (d) => progress.push(d) });
    await ckpt.close();
    const got = await read(join(out, "rank0.safetensors"));
    expect([...got.keys()]).toEqual(tensors.map((t) => t.name));
    const shared = Math.fround(Math.max(amax(fc), amax(gate)) / 448);
    expect(f32(got.get("mlp.fc.weights_scaling_factor")!.bytes)).toEqual(Float32Array.of(shared));
    expect(f32(got.get("mlp.gate.weights_scaling_factor")!.bytes)).toEqual(Float32Array.of(shared));
    expect(got.get("mlp.fc.weight")).toEqual({ dtype: "F8_E4M3", shape: [24, 40], bytes: f32ToE4M3(fc, shared) });
    expect(got.get("mlp.gate.weight")!.bytes).toEqual(f32ToE4M3(gate, shared));
    // F16 source: transposed slice [24, 20], evaluated exactly in F32 before quantization.
    const p = f16ToF32(proj);
    const t = new Float32Array(24 * 20).map((_, i) => p[(i % 20) * 24 + Math.floor(i / 20)]!);
    const ps = Math.fround(amax(t) / 448);
    expect(f32(got.get("mlp.proj.weights_scaling_factor")!.bytes)).toEqual(Float32Array.of(ps));
    expect(got.get("mlp.proj.weight")!.bytes).toEqual(f32ToE4M3(t, ps));
    expect(Math.max(...Array.from(e4m3ToF32(got.get("mlp.proj.weight")!.bytes)).map(Math.abs))).toBe(448);
    expect(got.get("mlp.proj.activation_scaling_factor")).toEqual({ dtype: "F32", shape: [1], bytes: new Uint8Array(Float32Array.of(0.125).buffer) });
    expect(got.get("plain")!.dtype).toBe("F16");
    // Bytes as stored: 1 per FP8 element.
    expect(r.bytesWritten).toBe(24 * 40 + 24 * 40 + 24 * 20 + 4 * 4 + 24 * 40 * 2);
    expect(progress.at(-1)).toBe(r.bytesWritten);
  });

  test("a NaN weight and an inconsistent plan fail naming file and tensor, leaving nothing", async () => {
    const ckpt = await checkpoint("bad");
    const out = join(root, "bad-out");
    const nan: RankFilePlan<PlanTensor> = {
      file: "rank0.safetensors",
      tensors: [{ name: "w", dtype: "F8_E4M3", expr: src("bad"), scaleGroup: "w" }, scaleTensor("s", "w")],
    };
    await expect(writeCheckpointFiles(ckpt, [nan], out)).rejects.toThrow(/"rank0\.safetensors: w": non-finite value NaN at index 1/);
    const orphan: RankFilePlan<PlanTensor> = {
      file: "rank1.safetensors",
      tensors: [{ name: "w", dtype: "F8_E4M3", expr: src("fc"), scaleGroup: "w" }, scaleTensor("s", "v")],
    };
    await expect(writeCheckpointFiles(ckpt, [orphan], out)).rejects.toThrow(ConvertError);
    await expect(writeCheckpointFiles(ckpt, [orphan], out)).rejects.toThrow(
      /rank1\.safetensors: scale group "v" has a scale tensor but no F8_E4M3 tensor; rank1\.safetensors: scale group "w" has no scale tensor/,
    );
    await ckpt.close();
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });
});
