// (1 + w) RMSNorms as TensorRT-LLM's built-in classes take them: Gemma's norm computes rms_norm(x) * (1 + w), which
// Kiln lowers as glue (rms_norm without weight, mul by w, add the normalized value back). TensorRT-LLM's Gemma has
// plain RmsNorm layers and its converter stores w + 1 instead (models/gemma/convert.py @ 65b31db1: `param + 1.0` for
// every input_layernorm, post_attention_layernorm, pre/post_feedforward_layernorm and model.norm weight). This rewrite
// gives the engine target that form: each such triple becomes one rms_norm whose weight is offset(w, 1), named as
// GemmaDecoderLayer names the norm by where it sits: input_layernorm before attention, ln_f before lm_head, and for
// Gemma (post_layernorm before the MLP) or Gemma 2 (inter_layernorms: post_layernorm on the attention output,
// pre_feedforward_layernorm before the MLP, post_feedforward_layernorm on the MLP output).
// Invariant: all or nothing; a graph with any (1 + w) norm it cannot name is returned undefined (custom code keeps
// the glue), and the rewritten graph computes the same function (only the rounding of 1 + w moves into the weight).

import type { Graph, Node, ValueId } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { offset } from "../../src/weights/weight-map.ts";
import { layerIndexOfScope } from "./layer-program.ts";

interface Fold {
  readonly norm: Node;
  readonly mul: Node;
  readonly add: Node;
  readonly weight: ValueId;
  readonly name: string;
}

const isMlp = (n: Node | undefined) => n?.op === "trtllm.gated_mlp" || n?.op === "trtllm.mlp";

/** The GemmaDecoderLayer / GemmaModel module of a norm reading `from` (the producer of its input) whose output `v`
 *  goes to `user`; `inter` says the layers have Gemma 2's four norms. Undefined when it is none of them. */
function normModule(from: Node | undefined, user: Node, v: ValueId, layer: number | undefined, inter: boolean): string | undefined {
  if (user.op === "trtllm.lm_head" && user.inputs[0] === v) return "transformer.ln_f";
  if (layer === undefined) return undefined;
  const at = `transformer.layers.${layer}`;
  if (from?.op === "trtllm.attention") return inter ? `${at}.post_layernorm` : undefined;
  if (isMlp(from)) return inter ? `${at}.post_feedforward_layernorm` : undefined;
  if (user.inputs[0] !== v) return undefined;
  if (user.op === "trtllm.attention") return `${at}.input_layernorm`;
  if (isMlp(user)) return `${at}.${inter ? "pre_feedforward_layernorm" : "post_layernorm"}`;
  return undefined;
}

function findFolds(g: Graph): Fold[] | undefined {
  const users = new Map<ValueId, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) users.set(i, [...(users.get(i) ?? []), n]);
  const params = new Set(g.params.map((p) => p.value));
  const def = new Map<ValueId, Node>();
  for (const n of g.nodes) for (const o of n.outputs) def.set(o, n);
  // Gemma 2's layers normalize the attention output itself (before the residual add).
  const inter = g.nodes.some((n) => n.op === "rms_norm" && def.get(n.inputs[0]!)?.op === "trtllm.attention");
  const folds: Fold[] = [];
  for (const norm of g.nodes) {
    if (norm.op !== "rms_norm" || norm.inputs.length !== 1) continue;
    const y = norm.outputs[0]!;
    const uses = users.get(y) ?? [];
    const mul = uses.find((u) => u.op === "mul" && u.inputs.includes(y) && u.inputs.some((i) => params.has(i)));
    const add = uses.find((u) => u.op === "add" && u !== mul && mul !== undefined && u.inputs.includes(mul.outputs[0]!) && u.inputs.includes(y));
    if (!mul || !add || uses.length !== 2 || (users.get(mul.outputs[0]!) ?? []).length !== 1) return undefined;
    const weight = mul.inputs.find((i) => params.has(i))!;
    if ((users.get(weight) ?? []).length !== 1) return undefined;
    const after = users.get(add.outputs[0]!) ?? [];
    const layer = layerIndexOfScope(norm.scope);
    const modules = after.map((u) => normModule(def.get(norm.inputs[0]!), u, add.outputs[0]!, layer, inter));
    if (modules.length !== 1 || modules[0] === undefined) return undefined;
    folds.push({ norm, mul, add, weight, name: modules[0] });
  }
  return folds.length ? folds : undefined;
}

/** The lowered model with every (1 + w) norm folded into a plain rms_norm, or undefined when there is none (or one
 *  that cannot be folded). */
export function foldOffsetNorms(low: LoweredModel): LoweredModel | undefined {
  const g = low.graph;
  const folds = findFolds(g);
  if (!folds) return undefined;
  const byAdd = new Map(folds.map((f) => [f.add, f]));
  const dropped = new Set(folds.flatMap((f) => [f.norm, f.mul]));
  const renamed = new Map(folds.map((f) => [f.weight, `${f.name}.weight`]));
  const nodes = g.nodes.flatMap((n): Node[] => {
    if (dropped.has(n)) return [];
    const f = byAdd.get(n);
    if (!f) return [n];
    // One rms_norm with the folded weight, writing the add's output (so every consumer stays as it was).
    return [{ ...f.norm, inputs: [f.norm.inputs[0]!, f.weight], outputs: [...f.add.outputs], scope: f.name }];
  });
  const gone = new Set(folds.flatMap((f) => [...f.norm.outputs, ...f.mul.outputs]));
  const params = g.params.map((p) => (renamed.has(p.value) ? { ...p, name: renamed.get(p.value)! } : p));
  const oldName = new Map(g.params.map((p) => [p.value, p.name]));
  const weights = Object.fromEntries(
    g.params.map((p) => {
      const e = low.weights[p.name]!;
      return renamed.has(p.value) ? [renamed.get(p.value)!, offset(e, 1)] : [oldName.get(p.value)!, e];
    }),
  );
  const values = new Map([...g.values].filter(([id]) => !gone.has(id)));
  return { ...low, graph: { ...g, nodes, params, values }, weights };
}
