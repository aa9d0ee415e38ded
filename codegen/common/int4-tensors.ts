// Group-wise INT4 Linears (pre-quantized AWQ/GPTQ checkpoints) as TensorRT-LLM 1.2.1 checkpoint tensors, per rank.
// Kiln writes the layout 1.2.1's `from_checkpoint -> preprocess_weights` expects for quant_algo W4A16_AWQ
// (tensorrt_llm/models/modeling_utils.py @ b35ac1b6, preprocess_perlayer_weights), the layout ModelOpt exports
// (NVIDIA/TensorRT-Model-Optimizer modelopt/torch/export/quant_utils.py, to_quantized_weight for int4_awq):
//   - `<linear>.weight` I8 [out/2, in]: signed codes c = q - 8 in [-8, 7], two output rows per byte,
//     byte[i, k] = (c[2i, k] & 0xF) | (c[2i + 1, k] << 4). At load TensorRT-LLM transposes it to [in, out/2] and
//     runs `preprocess_weights_for_mixed_gemm` (the CUTLASS interleave for the GPU it loads on: that architecture-
//     dependent step is TensorRT-LLM's, on the build machine), then views it as float16/bfloat16 [in, out/4].
//   - `<linear>.weights_scaling_factor` [out, in/group] in the model dtype (transposed to [in/group, out] at load).
//   - `<linear>.zero` [in/group, out] in the model dtype, loaded as is: the kernel computes w = c * s + zero
//     (weight_only_groupwise_quant_matmul with the ZERO flag), so zero = (8 - z) * s for w = (q - z) * s. This is
//     also TensorRT-LLM's own GPTQ convention (models/llama/convert.py load_weights_from_gptq: zeros_x_scales =
//     (-qzeros + 8 - 1) * scales with qzeros = z - 1).
// Invariants: a rank's input slice holds whole groups (else an error names the Linear); out is even.

import type { Dense } from "../../src/weights/weight-map.ts";

export interface Int4RankTensors {
  /** I8 [out/2, in]. */
  readonly weight: Int8Array;
  /** [out, in/group], float32 values to be cast to the model dtype. */
  readonly scales: Float32Array;
  /** [in/group, out], float32 values (already rounded by `round`). */
  readonly zeros: Float32Array;
}

/**
 * From one rank's per-element planes ([out, in] each: unsigned codes q, scales s and zero points z, every element
 * of a group carrying its group's s and z): the checkpoint tensors. `round` is the model dtype's rounding.
 */
export function int4RankTensors(name: string, q: Dense, s: Dense, z: Dense, group: number, round: (x: number) => number): Int4RankTensors {
  const [out, inF] = q.shape as [number, number];
  if (out % 2 !== 0) throw new Error(`${name}: ${out} output rows cannot pack two per byte`);
  if (inF % group !== 0) throw new Error(`${name}: this rank's ${inF} input columns are not whole groups of ${group}`);
  const groups = inF / group;
  const weight = new Int8Array((out / 2) * inF);
  for (let i = 0; i < out / 2; i++)
    for (let k = 0; k < inF; k++) {
      const lo = (q.data[2 * i * inF + k]! - 8) & 0xf;
      const hi = (q.data[(2 * i + 1) * inF + k]! - 8) & 0xf;
      weight[i * inF + k] = (((hi << 4) | lo) << 24) >> 24;
    }
  const scales = new Float32Array(out * groups);
  const zeros = new Float32Array(groups * out);
  for (let o = 0; o < out; o++)
    for (let g = 0; g < groups; g++) {
      const at = o * inF + g * group;
      for (let k = at; k < at + group; k++)
        if (s.data[k] !== s.data[at] || z.data[k] !== z.data[at]) throw new Error(`${name}: a group of ${group} inputs straddles this rank's slice`);
      scales[o * groups + g] = s.data[at]!;
      zeros[g * out + o] = round((8 - z.data[at]!) * s.data[at]!);
    }
  return { weight, scales, zeros };
}
