// `kiln compile --target hf --lora DIR[,DIR...]`: each PEFT adapter rewritten for the generated remote-code model,
// whose Linears are TensorRT-LLM-named and fused (transformer.layers.N.attention.qkv, .dense, mlp.fc/gate/proj), so
// PEFT itself loads it: `PeftModel.from_pretrained(model, OUT/lora/<task>)`. The rows come from the same derivation
// as the engine's runtime LoRA (codegen/trtllm-engine/lora-runtime.ts, scale folded into B); the q, k and v terms of
// a fused qkv Linear become one LoRA of rank r_q + r_k + r_v with A stacked and B block-diagonal over the q|k|v
// rows, which is exactly their sum. Every module gets r and alpha equal to its combined rank (rank_pattern /
// alpha_pattern with escaped full names), so PEFT's scale alpha / r is 1 and B carries the adapter's own scale.

import { LoraError } from "../../src/lora/adapter.ts";
import { type Dense, exprShape, type WeightMap } from "../../src/weights/weight-map.ts";
import type { RuntimeLoraAdapter } from "../common/lora-runtime.ts";
import { LAYER_MODULES, runtimeLoraRows } from "../common/lora-runtime.ts";

export interface HfAdapterFiles {
  readonly config: string;
  readonly tensors: { name: string; shape: number[]; data: Float32Array }[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function hfPeftAdapter(a: RuntimeLoraAdapter, lowered: WeightMap, shapeOf: (name: string) => readonly number[] | undefined): HfAdapterFiles {
  const rows = runtimeLoraRows(a.adapter, a.bound, lowered);
  const byModule = new Map<string, typeof rows>();
  for (const r of rows) {
    const kind = Object.keys(LAYER_MODULES).find((k) => LAYER_MODULES[k]!.includes(r.module))!;
    const module = `transformer.layers.${r.layer}.${kind}`;
    byModule.set(module, [...(byModule.get(module) ?? []), r]);
  }
  const tensors: HfAdapterFiles["tensors"] = [];
  const ranks: Record<string, number> = {};
  for (const [module, mrows] of [...byModule].sort(([x], [y]) => x.localeCompare(y, "en", { numeric: true }))) {
    const expr = lowered[`${module}.weight`];
    if (!expr) throw new LoraError(`${a.adapter.dir}: the hf model has no Linear '${module}'`);
    const [outTotal, inDim] = exprShape(expr, shapeOf) as [number, number];
    const names = LAYER_MODULES[module.split(".").slice(3).join(".")]!;
    const outSizes = names.length > 1 && "op" in expr && expr.op === "concat" ? expr.xs.map((x) => exprShape(x, shapeOf)[0]!) : [outTotal];
    const R = mrows.reduce((s, r) => s + r.A.shape[0]!, 0);
    const A = new Float32Array(R * inDim);
    const B = new Float32Array(outTotal * R);
    let k0 = 0;
    for (const r of mrows) {
      const part = names.indexOf(r.module);
      const rowStart = outSizes.slice(0, part).reduce((s, n) => s + n, 0);
      const rank = r.A.shape[0]!;
      A.set(r.A.data, k0 * inDim);
      const b: Dense = r.B;
      for (let o = 0; o < b.shape[0]!; o++) for (let k = 0; k < rank; k++) B[(rowStart + o) * R + k0 + k] = b.data[o * rank + k]!;
      k0 += rank;
    }
    tensors.push({ name: `base_model.model.${module}.lora_A.weight`, shape: [R, inDim], data: A });
    tensors.push({ name: `base_model.model.${module}.lora_B.weight`, shape: [outTotal, R], data: B });
    ranks[escapeRe(module)] = R;
  }
  const modules = [...byModule.keys()].sort((x, y) => x.localeCompare(y, "en", { numeric: true }));
  const maxRank = Math.max(...Object.values(ranks));
  const config = {
    peft_type: "LORA",
    base_model_name_or_path: null,
    r: maxRank,
    lora_alpha: maxRank,
    rank_pattern: ranks,
    alpha_pattern: ranks,
    use_rslora: false,
    target_modules: modules,
    fan_in_fan_out: false,
    bias: "none",
    lora_dropout: 0,
    inference_mode: true,
  };
  return { config: `${JSON.stringify(config, null, 2)}\n`, tensors };
}
