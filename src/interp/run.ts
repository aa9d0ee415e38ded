// Executes an IR graph on the CPU. Symbolic dims are bound from the concrete input shapes (a symbol seen twice
// must have one size); parameters come from a name -> tensor map. Kernels come from the core table or, for ops
// registered later (custom ops, target ops), from `registerKernel`; core ops prefer the fast table (fast/kernels.ts). Errors name the node and its source line.

import { isFloat } from "../ir/dtype.ts";
import { describeNode, type Graph, type ValueId } from "../ir/graph.ts";
import { islandValues } from "../ir/islands.ts";
import { formatShape } from "../ir/shape.ts";
import { type Kernel, KERNELS, type KernelContext } from "./kernels.ts";
import { FAST_KERNELS } from "./fast/kernels.ts";
import { type RTensor, tensor } from "./tensor.ts";
import { roundToBf16, roundToF16 } from "../weights/half.ts";

export type AnyKernel = (ins: RTensor[], attrs: any, ctx: KernelContext) => RTensor[];
const extraKernels = new Map<string, AnyKernel>();

export function registerKernel(op: string, k: AnyKernel): void {
  if (op in KERNELS || extraKernels.has(op)) throw new Error(`a kernel for op '${op}' already exists`);
  extraKernels.set(op, k);
}

/** The kernel runGraph uses for an op: the fast one where there is one, else the reference, else a registered one. */
export function kernelFor(op: string): AnyKernel | undefined {
  const table = (t: object) => (t as Record<string, Kernel<never> | undefined>)[op] as AnyKernel | undefined;
  return table(FAST_KERNELS) ?? table(KERNELS) ?? extraKernels.get(op);
}

export class InterpError extends Error {}

export interface RunOptions {
  /** Called after each node with its outputs (for tracing values, calibration, debugging). */
  readonly onNode?: (node: Graph["nodes"][number], outputs: RTensor[]) => void;
  /** A kernel to use for this node instead of the op's (the KV cache's attention, kv-cache.ts). */
  readonly kernelOverride?: (node: Graph["nodes"][number]) => AnyKernel | undefined;
  /**
   * Emulates a half-precision build: float parameters and every float value outside the graph's float32 islands
   * (src/ir/islands.ts) are rounded to this dtype after each op, as a float16/bfloat16 engine stores them; island
   * values keep float32. Kernels still accumulate in float32/64, so this models storage rounding, not a GPU's kernels.
   */
  readonly half?: "f16" | "bf16";
}

const HALF_ROUND = { f16: roundToF16, bf16: roundToBf16 } as const;

/** t rounded to a half dtype (float tensors only; integer tensors pass through). */
function roundHalf(t: RTensor, half: "f16" | "bf16"): RTensor {
  if (!isFloat(t.dtype)) return t;
  const r = HALF_ROUND[half];
  return tensor(
    t.dtype,
    t.shape,
    Float32Array.from(t.data, (v) => r(v)),
  );
}

function bindSymbols(g: Graph, inputs: ReadonlyMap<string, RTensor>): Map<string, number> {
  const bindings = new Map<string, number>();
  for (const i of g.inputs) {
    const t = inputs.get(i.name);
    const decl = g.values.get(i.value)!;
    if (!t) throw new InterpError(`missing graph input '${i.name}'`);
    if (t.shape.length !== decl.shape.length) throw new InterpError(`input '${i.name}' has shape [${t.shape}], graph expects ${formatShape(decl.shape)}`);
    decl.shape.forEach((d, k) => {
      const size = t.shape[k]!;
      const prev = typeof d === "string" ? bindings.get(d) : d;
      if (prev !== undefined && prev !== size) throw new InterpError(`input '${i.name}' dim ${k} is ${size}, expected ${prev} (${formatShape(decl.shape)})`);
      if (typeof d === "string") bindings.set(d, size);
    });
  }
  return bindings;
}

/** For each node, the values whose last reader it is (graph outputs excluded): dropped once it has run, so a
 * forward holds only live activations instead of every intermediate until the end. Cached per graph. */
const dropsByGraph = new WeakMap<Graph, ValueId[][]>();
function dropsAfter(g: Graph): ValueId[][] {
  let drops = dropsByGraph.get(g);
  if (drops) return drops;
  const last = new Map<ValueId, number>();
  g.nodes.forEach((n, i) => {
    for (const v of n.inputs) last.set(v, i);
  });
  for (const o of g.outputs) last.delete(o.value);
  drops = g.nodes.map(() => []);
  for (const [v, i] of last) drops[i]!.push(v);
  dropsByGraph.set(g, drops);
  return drops;
}

/** Runs the graph; returns its outputs by name. */
export function runGraph(g: Graph, inputs: ReadonlyMap<string, RTensor>, params: ReadonlyMap<string, RTensor>, opts: RunOptions = {}): Map<string, RTensor> {
  const env = new Map<ValueId, RTensor>();
  const ctx: KernelContext = { bindings: bindSymbols(g, inputs) };
  const half = opts.half;
  const island = half ? islandValues(g) : new Set<ValueId>();
  for (const i of g.inputs) env.set(i.value, inputs.get(i.name)!);
  for (const p of g.params) {
    const t = params.get(p.name);
    const decl = g.values.get(p.value)!;
    if (!t) throw new InterpError(`no weights for parameter '${p.name}'`);
    if (t.shape.length !== decl.shape.length || t.shape.some((d, k) => d !== decl.shape[k]))
      throw new InterpError(`parameter '${p.name}' has shape [${t.shape}], graph expects ${formatShape(decl.shape)}`);
    env.set(p.value, half ? roundHalf(t, half) : t);
  }
  const drops = dropsAfter(g);
  for (const [index, n] of g.nodes.entries()) {
    const kernel = opts.kernelOverride?.(n) ?? kernelFor(n.op);
    if (!kernel) throw new InterpError(`no interpreter kernel for op '${n.op}' (${describeNode(n)})`);
    let outs: RTensor[];
    try {
      outs = kernel(
        n.inputs.map((v) => env.get(v)!),
        n.attrs,
        ctx,
      );
    } catch (e) {
      throw new InterpError(`${describeNode(n)}: ${(e as Error).message}`);
    }
    if (half) outs = outs.map((t, k) => (island.has(n.outputs[k]!) ? t : roundHalf(t, half)));
    n.outputs.forEach((o, k) => env.set(o, outs[k]!));
    opts.onNode?.(n, outs);
    for (const v of drops[index]!) env.delete(v);
  }
  return new Map(g.outputs.map((o) => [o.name, env.get(o.value)!]));
}
