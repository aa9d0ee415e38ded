// Kiln's example custom op: fused residual add + RMSNorm, `(x, residual, weight) -> (normed, new_residual)`, as
// vLLM and others run it in pre-norm decoders. One Triton kernel (fused_add_rms_norm.py beside this file) reads x and
// the residual once and writes both outputs, where the unfused sequence writes the sum, reads it back for the
// statistics and again for the scaling. The op lowers to a TensorRT-LLM Python plugin that launches that kernel.
// The fusion rule rewrites `rms_norm(x + residual, w)` into the op and hands its second output to every later reader
// of the sum; it only fires inside one decoder layer, so each layer still passes one hidden state to the next.

import { ANY, defineOp, F, fusionPass, fusionRule, layerRootOf, pattern, rtensor, ShapeError, type Tensor, type ValueType } from "kiln";

const fmt = (t: ValueType) => `${t.dtype}[${t.shape.join(", ")}]`;

export const FUSED_ADD_RMS_NORM = defineOp({
  name: "fused_add_rms_norm",
  doc: "new_residual = x + residual; normed = new_residual / sqrt(mean(new_residual^2) + eps) * weight (last axis)",
  attrs: { eps: "number" },
  inputs: ["x", "residual", "weight"],
  outputs: ["normed", "new_residual"],
  infer: ([x, residual, weight]) => {
    if (!["f32", "f16", "bf16"].includes(x!.dtype)) throw new ShapeError(`x must be a float tensor, got ${fmt(x!)}`);
    if (residual!.dtype !== x!.dtype || residual!.shape.join() !== x!.shape.join())
      throw new ShapeError(`residual ${fmt(residual!)} must have the type of x ${fmt(x!)}`);
    if (weight!.dtype !== x!.dtype || weight!.shape.length !== 1 || weight!.shape[0] !== x!.shape.at(-1))
      throw new ShapeError(`weight ${fmt(weight!)} must be [${String(x!.shape.at(-1))}] of ${x!.dtype}`);
    return [x!, x!];
  },
  // The interpreter's add followed by its rms_norm, in one loop: the same float32 sum and float64 statistics, so the
  // fused graph reproduces the unfused one bit for bit.
  reference: ([x, residual, weight], { eps }) => {
    const d = x!.shape.at(-1)!;
    const sum = new Float32Array(x!.data.length);
    const normed = new Float32Array(x!.data.length);
    for (let row = 0; row < sum.length; row += d) {
      let ss = 0;
      for (let i = row; i < row + d; i++) {
        sum[i] = x!.data[i]! + residual!.data[i]!;
        ss += sum[i]! ** 2;
      }
      const inv = 1 / Math.sqrt(ss / d + eps);
      for (let i = 0; i < d; i++) normed[row + i] = sum[row + i]! * inv * weight!.data[i]!;
    }
    return [rtensor(x!.dtype, x!.shape, normed), rtensor(x!.dtype, x!.shape, sum)];
  },
  lowering: {
    kind: "python_plugin",
    kernel: new URL("./fused_add_rms_norm.py", import.meta.url),
    launch: "launch",
    torchReference: "torch_reference",
    outputLike: [0, 0],
    pluginName: "KilnFusedAddRmsNorm",
  },
  // The trtllm-torch and hf targets call this plain-PyTorch version (no Triton on their import path).
  pytorch: { module: new URL("./fused_add_rms_norm_torch.py", import.meta.url), function: "fused_add_rms_norm" },
  verify: {
    cases: [
      { shapes: [[4, 64], [4, 64], [64]], attrs: { eps: 1e-6 } },
      { shapes: [[2, 5, 96], [2, 5, 96], [96]], attrs: { eps: 1e-5 } },
      { shapes: [[3, 7, 1000], [3, 7, 1000], [1000]], attrs: { eps: 1e-6 } },
      { shapes: [[16, 4096], [16, 4096], [4096]], attrs: { eps: 1e-5 } },
      { shapes: [[5, 8192], [5, 8192], [8192]], attrs: { eps: 1e-6 } },
    ],
    dtypes: ["f32", "f16", "bf16"],
    // Token counts x hidden sizes of real models (LLaMA 7B/8B: 4096, 70B: 8192), from decode to long prefill.
    bench: [
      { shapes: [[1, 4096], [1, 4096], [4096]], attrs: { eps: 1e-5 } },
      { shapes: [[256, 4096], [256, 4096], [4096]], attrs: { eps: 1e-5 } },
      { shapes: [[4096, 4096], [4096, 4096], [4096]], attrs: { eps: 1e-5 } },
      { shapes: [[16384, 4096], [16384, 4096], [4096]], attrs: { eps: 1e-5 } },
      { shapes: [[4096, 8192], [4096, 8192], [8192]], attrs: { eps: 1e-5 } },
    ],
  },
});

/** x, residual: [..., hidden], weight: [hidden] -> [normed, x + residual]. */
export function fusedAddRmsNorm(x: Tensor, residual: Tensor, weight: Tensor, eps: number): [normed: Tensor, newResidual: Tensor] {
  const [normed, sum] = FUSED_ADD_RMS_NORM.apply([x, residual, weight], { eps });
  return [normed!, sum!];
}

export const ADD_RMS_NORM_FUSION = fusionRule({
  name: "add+rms_norm -> fused_add_rms_norm",
  pattern: pattern("residual add + rms norm", { x: "value", residual: "value", w: "param" }, ({ x, residual, w }) => F.rmsNorm(x.add(residual), w, ANY)),
  check: (m, g) => {
    const add = m.nodes.find((n) => n.outputs.includes(m.root.inputs[0]!))!;
    const [layer, normLayer] = [layerRootOf(add.scope), layerRootOf(m.root.scope)];
    if (layer === undefined || layer !== normLayer)
      return `the add (${add.scope || "top level"}) and the norm (${m.root.scope || "top level"}) are not in one decoder layer`;
    const w = g.values.get(m.values.w)!;
    const x = g.values.get(m.values.x)!;
    return w.dtype === x.dtype ? undefined : `weight is ${w.dtype}, activations ${x.dtype}`;
  },
  alsoReplaces: (m) => [m.root.inputs[0]!],
  rewrite: ({ t, match }) => fusedAddRmsNorm(t.x, t.residual, t.w, match.root.attrs.eps as number),
  enables: "python_plugin KilnFusedAddRmsNorm",
});

export const FUSE_ADD_RMS_NORM = fusionPass(
  "fuse-add-rms-norm",
  "rms_norm(x + residual, w) in one decoder layer -> fused_add_rms_norm (one Triton kernel, both outputs)",
  [ADD_RMS_NORM_FUSION],
);
