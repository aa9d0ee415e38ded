// Lowering a fused core graph to the TensorRT-LLM level: decoder layers are found by their attention ops, each
// layer's q/k/v projection + rope + attention + output projection becomes one `trtllm.attention`, each gated or plain
// feed-forward block one `trtllm.gated_mlp` / `trtllm.mlp`, the final projection `trtllm.lm_head`. Parameters are
// renamed to TensorRT-LLM checkpoint names (global layer indices here; per-stage local indices are applied when rank
// files are written) and their weight expressions are carried over, still over the Hugging Face tensor names.
// Nodes that are not part of a recognized layer are kept as core ops (custom code handles them).

import { GraphBuilder, type Graph, type Node, type ValueId } from "../ir/graph.ts";
import { simplifyExpr } from "../weights/simplify.ts";
import { slice, type WeightExpr, type WeightMap, concat } from "../weights/weight-map.ts";
import "./trtllm-ops.ts";

export class LowerError extends Error {}

export interface LoweredModel {
  /** TensorRT-LLM level graph; node scopes are TensorRT-LLM module paths. */
  readonly graph: Graph;
  /** TensorRT-LLM parameter name (global layer index) -> expression over checkpoint tensors. */
  readonly weights: WeightMap;
  readonly numLayers: number;
}

type ShapeOf = (name: string) => readonly number[] | undefined;

const LAYER_ROOT = /^(.*?\.\d+)(?:\.|$)/;
/** "layers.3.attn" -> "layers.3"; the module-list item a node belongs to. */
export const layerRootOf = (scope: string): string | undefined => LAYER_ROOT.exec(scope)?.[1];

interface Ctx {
  readonly g: Graph;
  readonly def: ReadonlyMap<ValueId, Node>;
  readonly users: ReadonlyMap<ValueId, Node[]>;
  readonly paramName: ReadonlyMap<ValueId, string>;
}

function context(g: Graph): Ctx {
  const def = new Map<ValueId, Node>();
  const users = new Map<ValueId, Node[]>();
  for (const n of g.nodes) {
    n.outputs.forEach((o) => def.set(o, n));
    n.inputs.forEach((i) => users.set(i, [...(users.get(i) ?? []), n]));
  }
  return { g, def, users, paramName: new Map(g.params.map((p) => [p.value, p.name])) };
}

const where = (n: Node) => `${n.op}${n.scope ? ` in ${n.scope}` : ""}${n.loc ? ` at ${n.loc.file}:${n.loc.line}` : ""}`;

function need<T>(v: T | undefined | false, msg: string): T {
  if (v === undefined || v === false) throw new LowerError(msg);
  return v;
}

interface AttentionBlock {
  readonly kind: "attention";
  readonly x: ValueId;
  readonly positions?: ValueId;
  readonly anchor: Node;
  readonly interior: Set<Node>;
  readonly qkvW: ValueId[];
  readonly qkvB: ValueId[];
  readonly denseW: ValueId;
  readonly denseB?: ValueId;
  /** QK-norm weights [q, k], each [head_dim] (TensorRT-LLM q_layernorm / k_layernorm). */
  readonly qkNormW?: [ValueId, ValueId];
  readonly attrs: Record<string, unknown>;
}

interface MlpBlock {
  readonly kind: "gated_mlp" | "mlp";
  readonly x: ValueId;
  readonly anchor: Node;
  readonly interior: Set<Node>;
  /** For gated: fc (activated), gate, proj; for plain: fc, proj. Each weight as (param, optional row range). */
  readonly weights: { readonly name: string; readonly param: ValueId; readonly rows?: [number, number] }[];
  readonly act: string;
}

type Block = AttentionBlock | MlpBlock;

function analyzeAttention(c: Ctx, A: Node): AttentionBlock {
  const interior = new Set<Node>([A]);
  const parts = A.inputs.map((v, k) => {
    let n = need(c.def.get(v), `${where(A)}: ${"qkv"[k]} is a graph input; expected a projection`);
    let rope: Node | undefined;
    if (n.op === "rope") {
      rope = n;
      interior.add(n);
      n = need(c.def.get(n.inputs[0]!), `${where(rope)}: rope of a graph input`);
    }
    // QK-norm: a per-head RMSNorm of q / k between the head reshape and the rotary embedding.
    let norm: Node | undefined;
    if (n.op === "rms_norm" && n.inputs.length === 2 && (c.users.get(n.outputs[0]!) ?? []).length === 1) {
      norm = n;
      interior.add(n);
      n = need(c.def.get(n.inputs[0]!), `${where(norm)}: rms_norm of a graph input`);
    }
    need(n.op === "reshape", `${where(A)}: expected reshape to heads before attention, found ${n.op}`);
    interior.add(n);
    const heads = n.attrs.shape as (number | string)[];
    const src = need(c.def.get(n.inputs[0]!), `${where(n)}: reshape of a graph input`);
    return { rope, norm, heads: heads[2] as number, headDim: heads[3] as number, src };
  });
  const [q, k, v] = parts as [(typeof parts)[0], (typeof parts)[0], (typeof parts)[0]];
  need(!v.rope, `${where(A)}: rope on v is not something TensorRT-LLM's Attention does`);
  need(!v.norm, `${where(A)}: a norm on v is not something TensorRT-LLM's Attention does`);
  need(!!q.norm === !!k.norm, `${where(A)}: a norm on only one of q and k (TensorRT-LLM's qk_layernorm normalizes both)`);
  if (q.norm && k.norm) need(q.norm.attrs.eps === k.norm.attrs.eps, `${where(A)}: q and k norms have different epsilons`);
  need(!!q.rope === !!k.rope, `${where(A)}: rope on only one of q and k`);
  if (q.rope && k.rope) need(JSON.stringify(q.rope.attrs) === JSON.stringify(k.rope.attrs), `${where(A)}: q and k use different rotary settings`);
  let qkvW: ValueId[];
  let qkvB: ValueId[];
  let x: ValueId;
  if (q.src.op === "split" && q.src === k.src && k.src === v.src) {
    const lin = need(c.def.get(q.src.inputs[0]!), `${where(q.src)}: split of a graph input`);
    need(lin.op === "linear", `${where(A)}: fused q/k/v must come from a linear, found ${lin.op}`);
    interior.add(q.src).add(lin);
    x = lin.inputs[0]!;
    qkvW = [lin.inputs[1]!];
    qkvB = lin.inputs[2] !== undefined ? [lin.inputs[2]] : [];
  } else {
    const lins = [q.src, k.src, v.src];
    for (const l of lins) need(l.op === "linear" && l.inputs[0] === q.src.inputs[0], `${where(A)}: q, k and v must be linear projections of one input`);
    lins.forEach((l) => interior.add(l));
    x = q.src.inputs[0]!;
    qkvW = lins.map((l) => l.inputs[1]!);
    const biases = lins.map((l) => l.inputs[2]);
    need(biases.every((b) => b === undefined) || biases.every((b) => b !== undefined), `${where(A)}: only some of q, k, v have a bias`);
    qkvB = biases.filter((b): b is ValueId => b !== undefined);
  }
  const outUsers = c.users.get(A.outputs[0]!) ?? [];
  const reshape = need(
    outUsers.length === 1 && outUsers[0]!.op === "reshape" && outUsers[0],
    `${where(A)}: the attention output must be reshaped to [batch, seq, heads*head_dim] and projected`,
  );
  const dense = need(
    (c.users.get(reshape.outputs[0]!) ?? []).length === 1 && c.users.get(reshape.outputs[0]!)![0],
    `${where(reshape)}: expected one output projection`,
  );
  need(dense.op === "linear", `${where(A)}: expected the output projection (linear) after attention, found ${dense.op}`);
  interior.add(reshape);
  const ropeAttrs = q.rope?.attrs;
  return {
    kind: "attention",
    x,
    ...(q.rope && { positions: q.rope.inputs[1]! }),
    anchor: dense,
    interior,
    qkvW,
    qkvB,
    denseW: dense.inputs[1]!,
    ...(dense.inputs[2] !== undefined && { denseB: dense.inputs[2] }),
    ...(q.norm && k.norm && { qkNormW: [q.norm.inputs[1]!, k.norm.inputs[1]!] as [ValueId, ValueId] }),
    attrs: {
      heads: q.heads,
      kvHeads: k.heads,
      headDim: q.headDim,
      rope: ropeAttrs ? ropeAttrs.style : "none",
      rotaryDim: ropeAttrs ? ropeAttrs.rotaryDim : 0,
      ropeTheta: ropeAttrs ? ropeAttrs.theta : 10000,
      ropeScaling: ropeAttrs ? ropeAttrs.scaling : null,
      scale: A.attrs.scale,
      qkvBias: qkvB.length > 0,
      denseBias: dense.inputs[2] !== undefined,
      window: A.attrs.window,
      softcap: A.attrs.softcap,
      qkNorm: q.norm !== undefined,
      qkNormEps: (q.norm?.attrs.eps as number | undefined) ?? 1e-6,
      reduce: "allreduce",
    },
  };
}

const ACT_OF: Record<string, (n: Node) => string | undefined> = {
  silu: () => "silu",
  relu: () => "relu",
  gelu: (n) => (n.attrs.approximate === "tanh" ? "gelu_tanh" : "gelu"),
};

/** MLP blocks anchored at their output projection: gated (fused or not) or plain. */
function analyzeMlp(c: Ctx, down: Node): MlpBlock | undefined {
  const mid = c.def.get(down.inputs[0]!);
  if (!mid || down.inputs.length < 2) return undefined;
  const single = (n: Node) => (c.users.get(n.outputs[0]!) ?? []).length === 1;
  const bias = (l: Node) => l.inputs[2];
  if (mid.op === "gated_activation" && single(mid)) {
    const fused = c.def.get(mid.inputs[0]!);
    if (fused?.op !== "linear" || !single(fused)) return undefined;
    const rows = c.g.values.get(fused.inputs[1]!)!.shape[0] as number;
    const ffn = rows / 2;
    const ws = [
      { name: "fc", param: fused.inputs[1]!, rows: [ffn, rows] as [number, number] },
      { name: "gate", param: fused.inputs[1]!, rows: [0, ffn] as [number, number] },
      { name: "proj", param: down.inputs[1]! },
    ];
    const bs =
      bias(fused) !== undefined
        ? [
            { name: "fc.b", param: bias(fused)!, rows: [ffn, rows] as [number, number] },
            { name: "gate.b", param: bias(fused)!, rows: [0, ffn] as [number, number] },
          ]
        : [];
    return {
      kind: "gated_mlp",
      x: fused.inputs[0]!,
      anchor: down,
      interior: new Set([mid, fused]),
      weights: [...ws, ...bs, ...(bias(down) !== undefined ? [{ name: "proj.b", param: bias(down)! }] : [])],
      act: mid.attrs.act as string,
    };
  }
  if (mid.op === "mul" && single(mid)) {
    const [a, b] = mid.inputs.map((v) => c.def.get(v));
    for (const [actNode, up] of [
      [a, b],
      [b, a],
    ] as const) {
      const act = actNode && ACT_OF[actNode.op]?.(actNode);
      const gate = actNode && c.def.get(actNode.inputs[0]!);
      if (!act || !gate || gate.op !== "linear" || up?.op !== "linear" || gate.inputs[0] !== up.inputs[0] || !single(actNode!) || !single(gate) || !single(up))
        continue;
      if ((bias(gate) === undefined) !== (bias(up) === undefined)) continue;
      const bs =
        bias(gate) !== undefined
          ? [
              { name: "fc.b", param: bias(gate)! },
              { name: "gate.b", param: bias(up)! },
            ]
          : [];
      return {
        kind: "gated_mlp",
        x: gate.inputs[0]!,
        anchor: down,
        interior: new Set([mid, actNode!, gate, up]),
        weights: [
          { name: "fc", param: gate.inputs[1]! },
          { name: "gate", param: up.inputs[1]! },
          { name: "proj", param: down.inputs[1]! },
          ...bs,
          ...(bias(down) !== undefined ? [{ name: "proj.b", param: bias(down)! }] : []),
        ],
        act,
      };
    }
    return undefined;
  }
  const act = ACT_OF[mid.op]?.(mid);
  const fc = c.def.get(mid.inputs[0]!);
  if (!act || !single(mid) || fc?.op !== "linear" || !single(fc)) return undefined;
  if ((bias(fc) === undefined) !== (bias(down) === undefined)) return undefined;
  const bs =
    bias(fc) !== undefined
      ? [
          { name: "fc.b", param: bias(fc)! },
          { name: "proj.b", param: bias(down)! },
        ]
      : [];
  return {
    kind: "mlp",
    x: fc.inputs[0]!,
    anchor: down,
    interior: new Set([mid, fc]),
    weights: [{ name: "fc", param: fc.inputs[1]! }, { name: "proj", param: down.inputs[1]! }, ...bs],
    act,
  };
}

/** `transformer.layers.N.<first path segment>` of every weight a kept (generic) layer op names after its own path. */
function keptWeightModules(
  g: Graph,
  c: Ctx,
  interior: ReadonlySet<Node>,
  blocks: ReadonlyMap<Node, Block>,
  head: Node,
  layerOf: (n: Node) => number | undefined,
): Set<string> {
  const out = new Set<string>();
  for (const n of g.nodes) {
    const layer = layerOf(n);
    const root = layerRootOf(n.scope);
    if (interior.has(n) || blocks.has(n) || n === head || layer === undefined || !root) continue;
    if (n.op === "rms_norm" || n.op === "layer_norm" || n.op === "embedding") continue;
    for (const v of n.inputs) {
      const name = c.paramName.get(v);
      if (name?.startsWith(`${root}.`)) out.add(`transformer.layers.${layer}.${name.slice(root.length + 1).split(".")[0]}`);
    }
  }
  return out;
}

/** Parameters read only after the last decoder layer (they live on the last pipeline stage, with ln_f and lm_head). */
export function postLayerParams(g: Graph): Set<string> {
  const lastLayerNode = g.nodes.reduce((at, n, i) => (/^transformer\.layers\.\d+/.test(n.scope) ? i : at), -1);
  const names = new Map(g.params.map((p) => [p.value, p.name]));
  const before = new Set(g.nodes.slice(0, lastLayerNode + 1).flatMap((n) => n.inputs));
  return new Set(g.nodes.slice(lastLayerNode + 1).flatMap((n) => n.inputs.filter((v) => names.has(v) && !before.has(v)).map((v) => names.get(v)!)));
}

export function lowerToTrtllm(g: Graph, weights: WeightMap, shapeOf: ShapeOf): LoweredModel {
  const c = context(g);
  const attentions = g.nodes.filter((n) => n.op === "attention");
  if (!attentions.length) throw new LowerError(`graph '${g.name}' has no attention op; TensorRT-LLM decoder models need one per layer`);
  const layerIndex = new Map<string, number>();
  for (const a of attentions) {
    const root = need(layerRootOf(a.scope), `${where(a)}: attention must live in a numbered decoder layer (a module list item such as layers.0)`);
    need(!layerIndex.has(root), `${where(a)}: two attention ops in decoder layer '${root}'`);
    layerIndex.set(root, layerIndex.size);
  }
  const layerOf = (n: Node) => {
    const root = layerRootOf(n.scope);
    return root === undefined ? undefined : layerIndex.get(root);
  };

  // Blocks, keyed by their anchor (the node whose output the block produces).
  const blocks = new Map<Node, Block>();
  for (const a of attentions) {
    const blk = analyzeAttention(c, a);
    blocks.set(blk.anchor, blk);
  }
  const inAttention = new Set([...blocks.values()].flatMap((b) => [...b.interior, b.anchor]));
  for (const n of g.nodes) {
    if (n.op !== "linear" || inAttention.has(n) || layerOf(n) === undefined) continue;
    const m = analyzeMlp(c, n);
    if (m) blocks.set(n, m);
  }
  const interior = new Set([...blocks.values()].flatMap((b) => [...b.interior]));

  const logitsOut = need(
    g.outputs.find((o) => o.name === "logits"),
    `graph '${g.name}' has no 'logits' output`,
  );
  let head = need(c.def.get(logitsOut.value), "logits are a graph input");
  // Final-logit soft-capping (Gemma 2) right after the LM head folds into trtllm.lm_head's softcap attribute.
  let headSoftcap = 0;
  if (head.op === "softcap") {
    headSoftcap = head.attrs.cap as number;
    interior.add(head);
    head = need(c.def.get(head.inputs[0]!), `${where(head)}: soft-capping of a graph input`);
    need((c.users.get(head.outputs[0]!) ?? []).length === 1, `${where(head)}: the LM head's logits are used elsewhere besides the soft-capping`);
  }
  need(head.op === "linear", `${where(head)}: logits must come straight from a linear layer (the LM head), optionally soft-capped`);
  const finalNorm = c.def.get(head.inputs[0]!);

  // Names for the TensorRT-LLM module of each remaining node.
  const exprs: Record<string, WeightExpr> = {};
  const b = GraphBuilder.from(g, { keepParams: false });
  const subst = new Map<ValueId, ValueId>();
  const map = (v: ValueId) => subst.get(v) ?? v;
  const exprOf = (v: ValueId, rows?: [number, number]): WeightExpr => {
    const name = need(c.paramName.get(v), `a layer weight is computed inside the graph, not a parameter`);
    const e = need(weights[name], `parameter '${name}' has no weight map entry`);
    return rows ? simplifyExpr(slice(e, 0, rows[0], rows[1]), shapeOf) : simplifyExpr(e, shapeOf);
  };
  const paramCache = new Map<string, ValueId>();
  const param = (name: string, e: WeightExpr, shape: number[], dtype = g.values.get(g.params[0]!.value)!.dtype): ValueId => {
    const existing = paramCache.get(name);
    if (existing !== undefined) return existing;
    exprs[name] = e;
    const v = b.param(name, { dtype, shape });
    paramCache.set(name, v);
    return v;
  };
  const shapeOfParam = (v: ValueId, rows?: [number, number]) => {
    const s = [...(g.values.get(v)!.shape as number[])];
    if (rows) s[0] = rows[1] - rows[0];
    return s;
  };
  const positionsInput = g.inputs.find((i) => i.name === "position_ids")?.value;
  const normCount = new Map<number, number>();
  // Module names already given in each layer, so that a second MLP-shaped block (experts written as GatedMLPs, two
  // feed-forward blocks) or its norm gets its own name instead of clashing: mlp, mlp_1, mlp_2, ... Names that kept
  // ops' own weights use (the first segment of their path in the layer) are taken from the start.
  const taken = keptWeightModules(g, c, interior, blocks, head, layerOf);
  const claim = (name: string): string => {
    let unique = name;
    for (let k = 1; taken.has(unique); k++) unique = `${name}_${k}`;
    taken.add(unique);
    return unique;
  };

  /** A norm feeding the attention is TensorRT-LLM's input_layernorm; one feeding only the MLP, post_layernorm. */
  const normName = (n: Node, layer: number): string => {
    const feeds = (isAttention: boolean) => [...blocks.values()].some((blk) => (blk.kind === "attention") === isAttention && blk.x === n.outputs[0]);
    if (feeds(true)) return `transformer.layers.${layer}.input_layernorm`;
    const post = `transformer.layers.${layer}.post_layernorm`;
    // A norm feeding a mixture-of-experts block is the MLP's norm too (TensorRT-LLM's MOE sits where GatedMLP does).
    const feedsMoe = (c.users.get(n.outputs[0]!) ?? []).some((u) => u.op === "moe");
    if ((feeds(false) || feedsMoe) && !taken.has(post)) return claim(post);
    const k = normCount.get(layer) ?? 0;
    normCount.set(layer, k + 1);
    return `transformer.layers.${layer}.norm_${k}`;
  };

  for (const n of g.nodes) {
    if (interior.has(n)) continue;
    const layer = layerOf(n);
    const blk = blocks.get(n);
    const opts = (scope: string, meta?: Record<string, string>) => ({ scope, ...(n.loc && { loc: n.loc }), ...(meta && { meta }) });
    if (blk?.kind === "attention") {
      const scope = `transformer.layers.${layer}.attention`;
      const qkvE = blk.qkvW.length === 1 ? exprOf(blk.qkvW[0]!) : simplifyExpr(concat(0, ...blk.qkvW.map((w) => exprOf(w))), shapeOf);
      const qkvShape = [blk.qkvW.reduce((s, w) => s + (g.values.get(w)!.shape[0] as number), 0), g.values.get(blk.qkvW[0]!)!.shape[1] as number];
      const ins = [map(blk.x), map(blk.positions ?? need(positionsInput, "the graph has no position_ids input")), param(`${scope}.qkv.weight`, qkvE, qkvShape)];
      if (blk.qkvB.length) {
        const e = blk.qkvB.length === 1 ? exprOf(blk.qkvB[0]!) : simplifyExpr(concat(0, ...blk.qkvB.map((w) => exprOf(w))), shapeOf);
        ins.push(param(`${scope}.qkv.bias`, e, [qkvShape[0]!]));
      }
      ins.push(param(`${scope}.dense.weight`, exprOf(blk.denseW), shapeOfParam(blk.denseW)));
      if (blk.denseB !== undefined) ins.push(param(`${scope}.dense.bias`, exprOf(blk.denseB), shapeOfParam(blk.denseB)));
      if (blk.qkNormW) blk.qkNormW.forEach((w, k) => ins.push(param(`${scope}.${["q", "k"][k]}_layernorm.weight`, exprOf(w), shapeOfParam(w))));
      subst.set(n.outputs[0]!, b.node("trtllm.attention", ins, blk.attrs, opts(scope, { trtllm: "Attention" }))[0]!);
      continue;
    }
    if (blk) {
      const scope = claim(`transformer.layers.${layer}.mlp`);
      const w = (name: string) => blk.weights.find((x) => x.name === name);
      const p = (name: string, tname: string) => {
        const x = w(name)!;
        return param(`${scope}.${tname}`, exprOf(x.param, x.rows), shapeOfParam(x.param, x.rows));
      };
      const names = blk.kind === "gated_mlp" ? ["fc", "gate", "proj"] : ["fc", "proj"];
      const ins = [map(blk.x), ...names.map((nm) => p(nm, `${nm}.weight`))];
      const hasBias = w("proj.b") !== undefined;
      if (hasBias) ins.push(...names.map((nm) => p(`${nm}.b`, `${nm}.bias`)));
      const op = blk.kind === "gated_mlp" ? "trtllm.gated_mlp" : "trtllm.mlp";
      subst.set(
        n.outputs[0]!,
        b.node(op, ins, { act: blk.act, bias: hasBias, reduce: "allreduce" }, opts(scope, { trtllm: blk.kind === "gated_mlp" ? "GatedMLP" : "MLP" }))[0]!,
      );
      continue;
    }
    if (n === head) {
      const vocab = g.values.get(n.inputs[1]!)!.shape[0] as number;
      const ins = [map(n.inputs[0]!), param("lm_head.weight", exprOf(n.inputs[1]!), shapeOfParam(n.inputs[1]!))];
      if (n.inputs[2] !== undefined) ins.push(param("lm_head.bias", exprOf(n.inputs[2]), shapeOfParam(n.inputs[2])));
      const logits = b.node("trtllm.lm_head", ins, { vocab, softcap: headSoftcap }, opts("lm_head", { trtllm: "ColumnLinear(gather_output)" }))[0]!;
      subst.set(n.outputs[0]!, logits);
      subst.set(logitsOut.value, logits);
      continue;
    }
    // Everything else keeps its op; parameters get TensorRT-LLM module names.
    let scope: string;
    const ids = n.op === "embedding" ? g.inputs.find((i) => i.value === n.inputs[1])?.name : undefined;
    const isNorm = n.op === "rms_norm" || n.op === "layer_norm";
    if (layer === undefined && ids === "input_ids") scope = "transformer.vocab_embedding";
    else if (layer === undefined && ids === "position_ids") scope = "transformer.position_embedding";
    else if (isNorm && layer !== undefined) scope = normName(n, layer);
    else if (isNorm && n === finalNorm) scope = "transformer.ln_f";
    else if (layer !== undefined) scope = `transformer.layers.${layer}`;
    else scope = "transformer";
    const root = layerRootOf(n.scope);
    const ownName = (k: number) => {
      const name = c.paramName.get(n.inputs[k]!) ?? "";
      return root && name.startsWith(`${root}.`) ? name.slice(root.length + 1) : name;
    };
    // Recognized embeddings and norms use TensorRT-LLM's names; any other weight keeps its own (unique) path.
    const standard = (n.op === "embedding" || isNorm) && scope !== "transformer" && scope !== `transformer.layers.${layer}`;
    const suffix = (k: number) => (standard ? ["weight", "weight", "bias"][k]! : ownName(k));
    const inputs = n.inputs.map((v, k) => (c.paramName.has(v) ? param(`${scope}.${suffix(k)}`, exprOf(v), shapeOfParam(v), g.values.get(v)!.dtype) : map(v)));
    const out = b.node(n.op, inputs, { ...n.attrs }, opts(scope));
    n.outputs.forEach((o, k) => subst.set(o, out[k]!));
  }
  for (const o of g.outputs) b.output(o.name, map(o.value));
  const graph = b.build();
  return { graph, weights: exprs, numLayers: layerIndex.size };
}
