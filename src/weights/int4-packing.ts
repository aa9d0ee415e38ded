// Readers of the two INT4 group-quantized checkpoint layouts, written from the formats' own packers:
//   - AWQ, AutoAWQ's GEMM layout (casper-hansen/AutoAWQ awq/modules/linear/gemm.py, WQLinear_GEMM.from_linear):
//     `qweight` I32 [in, out/8] and `qzeros` I32 [in/group, out/8] pack eight 4-bit values along the OUTPUT dim,
//     nibble i (bits 4i..4i+3) of word c holding column 8c + AWQ_ORDER[i] with AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];
//     `scales` F16 [in/group, out]; w[o, k] = (q[k, o] - z[k / group, o]) * s[k / group, o].
//   - GPTQ, AutoGPTQ's layout (AutoGPTQ/AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack):
//     `qweight` I32 [in/8, out] packs eight values along the INPUT dim in natural order (nibble j of row r is input
//     8r + j); `qzeros` I32 [in/group, out/8] packs along the output dim in natural order and stores zero - 1 (the
//     historical GPTQ-for-LLaMA offset that TensorRT-LLM's own GPTQ converter undoes with USE_GPTQ_FOR_LLAMA = 1,
//     tensorrt_llm/models/llama/convert.py load_weights_from_gptq); `scales` F16 [in/group, out]; `g_idx` I32 [in]
//     gives each input row its group: w[o, k] = (q[k, o] - (qz[g_idx[k], o] + 1)) * s[g_idx[k], o].
// Invariants: shapes must agree with the group size (a wrong group size is a one-line error naming the tensor);
// act-order (g_idx other than k / group) is refused, as TensorRT-LLM 1.2.1's groupwise kernels index groups by
// position; codes come out as unsigned 0..15 in [out, in] order.

import type { Checkpoint } from "./checkpoint.ts";
import { type Int4Format, PrequantError } from "./prequant-format.ts";

/** AutoAWQ's interleave: nibble i of a packed word holds column AWQ_ORDER[i] of its eight. */
export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] as const;

/** Where one INT4 Linear's packed tensors are and what shape they unpack to (checked; nothing unpacked yet). */
export interface Int4Layout {
  readonly module: string;
  readonly producer: "awq" | "gptq";
  readonly out: number;
  readonly in: number;
  readonly groupSize: number;
  readonly consumed: readonly string[];
}

/** One INT4 Linear, unpacked: codes [out, in] (0..15), zero points and scales [groups, out]. */
export interface Int4Module extends Int4Layout {
  readonly q: Uint8Array;
  /** The zero point z of each group and output (GPTQ's stored value + 1, so 1..16). */
  readonly zeros: Uint8Array;
  readonly scales: Float32Array;
}

const nibble = (word: number, i: number) => (word >>> (4 * i)) & 0xf;

function expectShape(ckpt: Checkpoint, name: string, want: readonly number[], why: string): void {
  const info = ckpt.info(name);
  if (!info) throw new PrequantError(`${ckpt.dir}: tensor "${name}" is missing`);
  if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i]))
    throw new PrequantError(`${ckpt.dir}: tensor "${name}" is [${info.shape}], expected [${want}] (${why})`);
}

const names = (module: string) => ["qweight", "qzeros", "scales", "g_idx"].map((s) => `${module}.${s}`) as [string, string, string, string];

/** Checks one module's packed tensors against the group size (and GPTQ's g_idx against act-order). */
export async function int4Layout(ckpt: Checkpoint, module: string, f: Int4Format): Promise<Int4Layout> {
  const [qw, qz, sc, gi] = names(module);
  for (const n of [qw, qz, sc]) if (!ckpt.info(n)) throw new PrequantError(`${ckpt.dir}: tensor "${n}" is missing (every "${qw}" needs it)`);
  const scaleShape = ckpt.info(sc)!.shape;
  if (scaleShape.length !== 2) throw new PrequantError(`${ckpt.dir}: tensor "${sc}" is [${scaleShape}], expected [in/group, out]`);
  const [groups, out] = scaleShape as [number, number];
  const inFeatures = groups * f.groupSize;
  const why = `group size ${f.groupSize} from ${f.from}, ${groups} groups and ${out} outputs in "${sc}"`;
  if (f.producer === "awq") expectShape(ckpt, qw, [inFeatures, out / 8], why);
  else expectShape(ckpt, qw, [inFeatures / 8, out], why);
  expectShape(ckpt, qz, [groups, out / 8], why);
  const consumed = [qw, qz, sc];
  if (f.producer === "gptq" && ckpt.info(gi)) {
    expectShape(ckpt, gi, [inFeatures], why);
    const idx = await ckpt.readI32(gi);
    const k = idx.findIndex((g, i) => g !== Math.floor(i / f.groupSize));
    if (k >= 0)
      throw new PrequantError(
        `${ckpt.dir}: tensor "${gi}" puts input row ${k} in group ${idx[k]}, not ${Math.floor(k / f.groupSize)}: act-order (desc_act) checkpoints are not supported by TensorRT-LLM 1.2.1's groupwise INT4 kernels`,
      );
    consumed.push(gi);
  }
  return { module, producer: f.producer, out, in: inFeatures, groupSize: f.groupSize, consumed };
}

/** Reads and unpacks one module's packed tensors. */
export async function readInt4(ckpt: Checkpoint, l: Int4Layout): Promise<Int4Module> {
  const [qw, qz, sc] = names(l.module);
  const { out, in: inFeatures } = l;
  const groups = inFeatures / l.groupSize;
  const [packedW, packedZ, scales] = [await ckpt.readI32(qw), await ckpt.readI32(qz), await ckpt.readF32(sc)];
  const q = new Uint8Array(out * inFeatures);
  const zeros = new Uint8Array(groups * out);
  const words = out / 8;
  if (l.producer === "awq") {
    for (let k = 0; k < inFeatures; k++)
      for (let c = 0; c < words; c++) {
        const w = packedW[k * words + c]!;
        for (let i = 0; i < 8; i++) q[(8 * c + AWQ_ORDER[i]!) * inFeatures + k] = nibble(w, i);
      }
    for (let g = 0; g < groups; g++)
      for (let c = 0; c < words; c++) for (let i = 0; i < 8; i++) zeros[g * out + 8 * c + AWQ_ORDER[i]!] = nibble(packedZ[g * words + c]!, i);
  } else {
    for (let r = 0; r < inFeatures / 8; r++)
      for (let o = 0; o < out; o++) {
        const w = packedW[r * out + o]!;
        for (let j = 0; j < 8; j++) q[o * inFeatures + 8 * r + j] = nibble(w, j);
      }
    for (let g = 0; g < groups; g++)
      for (let c = 0; c < words; c++) for (let j = 0; j < 8; j++) zeros[g * out + 8 * c + j] = nibble(packedZ[g * words + c]!, j) + 1;
  }
  return { ...l, q, zeros, scales };
}

/** w [out, in] float32: (q - z) * s per element, as the format defines it. */
export function dequantizeInt4(m: Int4Module): Float32Array {
  const w = new Float32Array(m.out * m.in);
  for (let o = 0; o < m.out; o++)
    for (let k = 0; k < m.in; k++) {
      const g = Math.floor(k / m.groupSize) * m.out + o;
      w[o * m.in + k] = (m.q[o * m.in + k]! - m.zeros[g]!) * m.scales[g]!;
    }
  return w;
}
