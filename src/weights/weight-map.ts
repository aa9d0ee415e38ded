// Weight maps: for each model parameter, an expression saying how to compute it from checkpoint tensors, as plain
// JSON data (serializable, printable, checkable before any bytes are read). Fusion passes compose expressions
// (concat of the q/k/v expressions), sharding wraps them (slices per rank), and converters evaluate them. This file
// holds the expression type, its constructors and one rule per transform (label, shape, in-memory evaluation).

export type WeightExpr =
  | { readonly source: string }
  | { readonly op: "transpose"; readonly x: WeightExpr }
  | { readonly op: "concat"; readonly dim: number; readonly xs: readonly WeightExpr[] }
  | { readonly op: "slice"; readonly dim: number; readonly start: number; readonly end: number; readonly x: WeightExpr }
  | { readonly op: "pad"; readonly dim: number; readonly to: number; readonly x: WeightExpr }
  | { readonly op: "repeat_interleave"; readonly dim: number; readonly repeats: number; readonly x: WeightExpr }
  | { readonly op: "reshape"; readonly shape: readonly number[]; readonly x: WeightExpr }
  | { readonly op: "zeros"; readonly shape: readonly number[] }
  /** x + value, elementwise: a checkpoint that stores a scale minus a constant (Gemma's (1 + w) norms). */
  | { readonly op: "offset"; readonly value: number; readonly x: WeightExpr };

/** target parameter name -> expression, in parameter order. */
export type WeightMap = Readonly<Record<string, WeightExpr>>;

export interface WeightMapSpec {
  readonly map: WeightMap;
  /** Glob patterns (`*` = any run of characters) of checkpoint tensors that may stay unused. */
  readonly ignore?: readonly string[];
}

export const src = (source: string): WeightExpr => ({ source });
export const transpose = (x: WeightExpr): WeightExpr => ({ op: "transpose", x });
export const concat = (dim: number, ...xs: WeightExpr[]): WeightExpr => ({ op: "concat", dim, xs });
export const slice = (x: WeightExpr, dim: number, start: number, end: number): WeightExpr => ({ op: "slice", dim, start, end, x });
export const pad = (x: WeightExpr, dim: number, to: number): WeightExpr => ({ op: "pad", dim, to, x });
export const repeatInterleave = (x: WeightExpr, dim: number, repeats: number): WeightExpr => ({ op: "repeat_interleave", dim, repeats, x });
export const reshape = (x: WeightExpr, shape: readonly number[]): WeightExpr => ({ op: "reshape", shape, x });
export const zeros = (shape: readonly number[]): WeightExpr => ({ op: "zeros", shape });
export const offset = (x: WeightExpr, value: number): WeightExpr => ({ op: "offset", value, x });

/** Builds the entries of every layer from one template function. */
export function perLayer(n: number, entries: (i: number) => Record<string, WeightExpr>): Record<string, WeightExpr> {
  return Object.assign({}, ...Array.from({ length: n }, (_, i) => entries(i)));
}

export class WeightMapError extends Error {}

const fail = (msg: string): never => {
  throw new WeightMapError(msg);
};

type TransformOp = Exclude<WeightExpr, { source: string }>["op"];
type ExprOf<K extends TransformOp> = Extract<WeightExpr, { op: K }>;

/** A dense float32 tensor, the unit in-memory evaluation works on. */
export interface Dense {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

interface TransformRule<K extends TransformOp> {
  readonly label: (e: ExprOf<K>) => string;
  readonly shape: (e: ExprOf<K>, ins: number[][]) => number[];
  readonly apply: (e: ExprOf<K>, ins: Dense[]) => Dense;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const around = (s: readonly number[], dim: number): [number, number, number] => [numel(s.slice(0, dim)), s[dim]!, numel(s.slice(dim + 1))];

function checkDim(dim: number, shape: readonly number[], what: string): number {
  return Number.isInteger(dim) && dim >= 0 && dim < shape.length ? dim : fail(`${what}: dim ${dim} out of range for [${shape}]`);
}

/** Copies rows of `inner`-sized blocks: out block (o, j) <- in block (o, map(j)), or zeros when map gives -1. */
function remapAxis(x: Dense, dim: number, size: number, map: (j: number) => number): Dense {
  const [outer, n, inner] = around(x.shape, dim);
  const out = new Float32Array(outer * size * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < size; j++) {
      const from = map(j);
      if (from >= 0) out.set(x.data.subarray((o * n + from) * inner, (o * n + from + 1) * inner), (o * size + j) * inner);
    }
  return { shape: x.shape.map((d, i) => (i === dim ? size : d)), data: out };
}

const RULES: { [K in TransformOp]: TransformRule<K> } = {
  zeros: {
    label: (e) => `zeros[${e.shape}]`,
    shape: (e) => [...e.shape],
    apply: (e) => ({ shape: [...e.shape], data: new Float32Array(numel(e.shape)) }),
  },
  transpose: {
    label: () => "transpose",
    shape: (_e, [s]) => (s!.length === 2 ? [s![1]!, s![0]!] : fail(`transpose needs a 2-D tensor, got [${s}]`)),
    apply: (_e, [x]) => {
      const [r, c] = x!.shape as [number, number];
      const out = new Float32Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x!.data[i * c + j]!;
      return { shape: [c, r], data: out };
    },
  },
  concat: {
    label: (e) => `concat${e.dim}`,
    shape: (e, shapes) => {
      const first = shapes[0] ?? fail("concat of nothing");
      const dim = checkDim(e.dim, first, "concat");
      for (const s of shapes)
        if (s.length !== first.length || s.some((d, i) => i !== dim && d !== first[i])) fail(`concat on dim ${dim}: [${s}] does not fit [${first}]`);
      return first.map((d, i) => (i === dim ? shapes.reduce((a, s) => a + s[i]!, 0) : d));
    },
    apply: (e, xs) => {
      const total = xs.reduce((a, x) => a + x.shape[e.dim]!, 0);
      const shape = xs[0]!.shape.map((d, i) => (i === e.dim ? total : d));
      const [outer, , inner] = around(shape, e.dim);
      const out = new Float32Array(numel(shape));
      let at = 0;
      for (let o = 0; o < outer; o++)
        for (const x of xs) {
          const len = x.shape[e.dim]! * inner;
          out.set(x.data.subarray(o * len, (o + 1) * len), at);
          at += len;
        }
      return { shape, data: out };
    },
  },
  slice: {
    label: (e) => `slice${e.dim}[${e.start}:${e.end}]`,
    shape: (e, [s]) => {
      const dim = checkDim(e.dim, s!, "slice");
      if (!(e.start >= 0 && e.start < e.end && e.end <= s![dim]!)) fail(`slice [${e.start}, ${e.end}) out of range for dim ${dim} of [${s}]`);
      return s!.map((d, i) => (i === dim ? e.end - e.start : d));
    },
    apply: (e, [x]) => remapAxis(x!, e.dim, e.end - e.start, (j) => e.start + j),
  },
  pad: {
    label: (e) => `pad${e.dim}[${e.to}]`,
    shape: (e, [s]) => {
      const dim = checkDim(e.dim, s!, "pad");
      return e.to >= s![dim]! ? s!.map((d, i) => (i === dim ? e.to : d)) : fail(`pad dim ${dim} of [${s}] to ${e.to} would shrink it`);
    },
    apply: (e, [x]) => remapAxis(x!, e.dim, e.to, (j) => (j < x!.shape[e.dim]! ? j : -1)),
  },
  repeat_interleave: {
    label: (e) => `repeat${e.dim}x${e.repeats}`,
    shape: (e, [s]) => {
      const dim = checkDim(e.dim, s!, "repeat_interleave");
      return Number.isInteger(e.repeats) && e.repeats >= 1
        ? s!.map((d, i) => (i === dim ? d * e.repeats : d))
        : fail(`repeat count ${e.repeats} must be a positive integer`);
    },
    apply: (e, [x]) => remapAxis(x!, e.dim, x!.shape[e.dim]! * e.repeats, (j) => Math.floor(j / e.repeats)),
  },
  offset: {
    label: (e) => `offset[${e.value}]`,
    shape: (_e, [s]) => [...s!],
    apply: (e, [x]) => ({ shape: [...x!.shape], data: x!.data.map((v) => v + e.value) }),
  },
  reshape: {
    label: (e) => `reshape[${e.shape}]`,
    shape: (e, [s]) => (numel(s!) === numel(e.shape) ? [...e.shape] : fail(`cannot reshape [${s}] to [${e.shape}]`)),
    apply: (e, [x]) => ({ shape: [...e.shape], data: x!.data }),
  },
};

const ruleOf = <K extends TransformOp>(e: ExprOf<K>) => RULES[e.op as K] as TransformRule<K>;

export function exprChildren(e: WeightExpr): readonly WeightExpr[] {
  if ("source" in e || e.op === "zeros") return [];
  return e.op === "concat" ? e.xs : [e.x];
}

/** Shape of an expression given source shapes; throws WeightMapError naming the offending transform. */
export function exprShape(e: WeightExpr, sourceShape: (name: string) => readonly number[] | undefined): number[] {
  if ("source" in e) return [...(sourceShape(e.source) ?? fail(`source tensor '${e.source}' is not in the checkpoint`))];
  return ruleOf(e).shape(
    e,
    exprChildren(e).map((c) => exprShape(c, sourceShape)),
  );
}

/** Evaluates an expression in memory (small models, tests, the interpreter). */
export function evalExpr(e: WeightExpr, load: (name: string) => Dense): Dense {
  if ("source" in e) return load(e.source);
  return ruleOf(e).apply(
    e,
    exprChildren(e).map((c) => evalExpr(c, load)),
  );
}

/** Every checkpoint tensor an expression reads. */
export function exprSources(e: WeightExpr): string[] {
  return "source" in e ? [e.source] : exprChildren(e).flatMap(exprSources);
}

/** Compact one-line form, e.g. `concat0(q, slice1[0:64](transpose(c_attn)))`. */
export function formatExpr(e: WeightExpr): string {
  if ("source" in e) return e.source;
  const kids = exprChildren(e);
  return kids.length ? `${ruleOf(e).label(e)}(${kids.map(formatExpr).join(", ")})` : ruleOf(e).label(e);
}

export function globToRegExp(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
}
