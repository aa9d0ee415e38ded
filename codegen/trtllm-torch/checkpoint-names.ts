// How the lowered graph's TensorRT-LLM checkpoint names become the PyTorch backend's module paths and checkpoint
// keys. Module attributes follow the backend's own models (LLaMA, OPT): `model.embed_tokens`, `model.layers.N`,
// `model.norm`, `self_attn`, `post_attention_layernorm`; the layers TensorRT-LLM fuses at load time keep Hugging
// Face's separate tensors (`q_proj`/`k_proj`/`v_proj` -> `qkv_proj`, `gate_proj`/`up_proj` -> `gate_up_proj`), so
// per-rank slicing, KV-head duplication and quantization packing stay TensorRT-LLM's job.
// Invariants: renaming is a bijection on each class's attribute names (clashes are errors); every lowered
// parameter maps to one or more checkpoint tensors whose row ranges tile it exactly.

import type { Node } from "../../src/ir/graph.ts";
import { fail } from "../common/model-py-plan.ts";

/** Top-level attributes of the transformer (DecoderModel reads embed_tokens, layers and norm by name). */
export const MODEL_RENAME: Readonly<Record<string, string>> = { vocab_embedding: "embed_tokens", position_embedding: "embed_positions", ln_f: "norm" };
/** Attributes of a decoder layer. */
export const LAYER_RENAME: Readonly<Record<string, string>> = { attention: "self_attn", post_layernorm: "post_attention_layernorm" };

/** One checkpoint tensor: a row range of a lowered parameter under its backend name. */
export interface TorchTensor {
  readonly name: string;
  readonly param: string;
  readonly rows?: readonly [number, number];
}

/** Renames the first attribute of a class-relative path (the rest is the user's own structure). */
export function renameHead(path: readonly string[], table: Readonly<Record<string, string>>): string[] {
  const [head, ...rest] = path;
  return [table[head!] ?? head!, ...rest];
}

/** Checks that renaming keeps a class's attribute names distinct. */
export function checkRenames(names: Iterable<string>, table: Readonly<Record<string, string>>, where: string): void {
  const seen = new Map<string, string>();
  for (const n of names) {
    const r = table[n] ?? n;
    const other = seen.get(r);
    if (other !== undefined) fail(`'${other}' and '${n}' both become the attribute '${r}' of the generated ${where}; rename one of them`);
    seen.set(r, n);
  }
}

/** The lowered name of a parameter -> the PyTorch-backend attribute path (without module-owned tensor names). */
export function torchPath(name: string): string {
  if (name.startsWith("lm_head.")) return name;
  const m = /^transformer\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) return `model.layers.${m[1]}.${renameHead(m[2]!.split("."), LAYER_RENAME).join(".")}`;
  if (!name.startsWith("transformer.")) fail(`parameter '${name}' is outside the transformer and lm_head`);
  return `model.${renameHead(name.slice("transformer.".length).split("."), MODEL_RENAME).join(".")}`;
}

const slices = (scope: string, own: string, names: readonly string[], sizes: readonly number[]): TorchTensor[] => {
  let at = 0;
  return names.map((n, k) => {
    const rows = [at, at + sizes[k]!] as const;
    at += sizes[k]!;
    return { name: `${torchPath(scope)}.${n}.${own}`, param: `${scope}.qkv.${own}`, rows };
  });
};

/** The lowered MLP Linears (fc, gate, proj) -> the backend's names, per MLP kind (GatedMLP keeps HF's gate_proj /
 * up_proj, fused at load time; MLP has up_proj / down_proj). */
export const MLP_ROLES: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  "trtllm.gated_mlp": [
    ["fc", "gate_proj"],
    ["gate", "up_proj"],
    ["proj", "down_proj"],
  ],
  "trtllm.mlp": [
    ["fc", "up_proj"],
    ["proj", "down_proj"],
  ],
};

/** The attention's q / k / v parts and its output Linear under the backend's names. */
export const ATTENTION_NAMES = { qkv: ["q_proj", "k_proj", "v_proj"], dense: "o_proj" } as const;

/** Checkpoint tensors for the parameters of one module node (attention, MLPs), in the node's input order. */
export function moduleTensors(n: Node): TorchTensor[] {
  const base = torchPath(n.scope);
  const one = (own: string, to: string): TorchTensor => ({ name: `${base}.${to}`, param: `${n.scope}.${own}` });
  const a = n.attrs;
  if (n.op === "trtllm.attention") {
    const hd = a.headDim as number;
    const sizes = [(a.heads as number) * hd, (a.kvHeads as number) * hd, (a.kvHeads as number) * hd];
    const qkv = ATTENTION_NAMES.qkv;
    return [
      ...slices(n.scope, "weight", qkv, sizes),
      ...(a.qkvBias ? slices(n.scope, "bias", qkv, sizes) : []),
      one("dense.weight", `${ATTENTION_NAMES.dense}.weight`),
      ...(a.denseBias ? [one("dense.bias", `${ATTENTION_NAMES.dense}.bias`)] : []),
      // QKNormRoPEAttention's per-head norms (HF Qwen3's self_attn.q_norm / k_norm).
      ...(a.qkNorm ? [one("q_layernorm.weight", "q_norm.weight"), one("k_layernorm.weight", "k_norm.weight")] : []),
    ];
  }
  const r = MLP_ROLES[n.op] ?? fail(`${n.op} in ${n.scope} is not a PyTorch-backend module`);
  return [...r.map(([from, to]) => one(`${from}.weight`, `${to}.weight`)), ...(a.bias ? r.map(([from, to]) => one(`${from}.bias`, `${to}.bias`)) : [])];
}
