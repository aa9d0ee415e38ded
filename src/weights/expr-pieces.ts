// Flat element ranges of a weight expression, decomposed into copy pieces: "rows of `count` elements of source s,
// `srcStride` apart, go to dst, `dstStride` apart", "zeros go to dst", or "dst comes from a transpose" (the one
// transform that is not a copy of runs; the reader evaluates it). This is the pure planning half of the
// streaming converter: no bytes are touched here. Invariants: pieces of one call cover exactly
// [dst, dst + count) with no overlap, in destination order; a piece that continues the previous one is merged
// into it, either lengthening it (same source, contiguous on both sides: a plain source or a dim-0 slice or
// concat of sources is one piece per source) or adding a row (same source and length, same strides: a dim-1
// slice is one piece, not one per row); a list never grows past its cap (it throws PIECES_FULL, and the
// caller retries with a smaller range).

import { exprChildren, exprShape, type WeightExpr } from "./weight-map.ts";

/** An expression node with its shape, computed once. */
export interface ShapedExpr {
  readonly expr: WeightExpr;
  readonly shape: readonly number[];
  readonly kids: readonly ShapedExpr[];
}

export function shapeTree(e: WeightExpr, sourceShape: (name: string) => readonly number[] | undefined): ShapedExpr {
  return { expr: e, shape: exprShape(e, sourceShape), kids: exprChildren(e).map((k) => shapeTree(k, sourceShape)) };
}

/** Row r (0 <= r < rows) copies source elements [srcStart + r * srcStride, + count) to dst + r * dstStride. */
export interface ReadPiece {
  kind: "read";
  source: string;
  srcStart: number;
  count: number;
  dst: number;
  rows: number;
  srcStride: number;
  dstStride: number;
}
export interface ZeroPiece {
  kind: "zero";
  count: number;
  dst: number;
}
/** Elements [start, start + count) of a transpose node's output. */
export interface TransposePiece {
  kind: "transpose";
  node: ShapedExpr;
  start: number;
  count: number;
  dst: number;
}
/** Elements [start, start + count) of an offset node's output: the same range of its input, plus the constant. */
export interface OffsetPiece {
  kind: "offset";
  node: ShapedExpr;
  start: number;
  count: number;
  dst: number;
}
export type Piece = ReadPiece | ZeroPiece | TransposePiece | OffsetPiece;

/** Thrown (as a value, not an Error) when a PieceList would pass its cap. */
export const PIECES_FULL: unique symbol = Symbol("PIECES_FULL");

export class PieceList {
  readonly items: Piece[] = [];
  constructor(readonly cap: number) {}

  read(source: string, srcStart: number, count: number, dst: number): void {
    const last = this.items.at(-1);
    if (last?.kind === "read" && last.source === source) {
      if (last.rows === 1 && last.srcStart + last.count === srcStart && last.dst + last.count === dst) {
        last.count += count;
        return;
      }
      if (last.count === count && last.rows === 1 && srcStart >= last.srcStart && dst >= last.dst + count) {
        last.rows = 2;
        last.srcStride = srcStart - last.srcStart;
        last.dstStride = dst - last.dst;
        return;
      }
      if (last.count === count && srcStart === last.srcStart + last.rows * last.srcStride && dst === last.dst + last.rows * last.dstStride) {
        last.rows++;
        return;
      }
    }
    this.#push({ kind: "read", source, srcStart, count, dst, rows: 1, srcStride: 0, dstStride: 0 });
  }

  zero(count: number, dst: number): void {
    const last = this.items.at(-1);
    if (last?.kind === "zero" && last.dst + last.count === dst) last.count += count;
    else this.#push({ kind: "zero", count, dst });
  }

  transpose(node: ShapedExpr, start: number, count: number, dst: number): void {
    this.#push({ kind: "transpose", node, start, count, dst });
  }

  offset(node: ShapedExpr, start: number, count: number, dst: number): void {
    this.#push({ kind: "offset", node, start, count, dst });
  }

  #push(p: Piece): void {
    if (this.items.length >= this.cap) throw PIECES_FULL;
    this.items.push(p);
  }
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Where output index j along an op's axis comes from: kid `kid` (-1: zeros) at index `at` along the same axis,
 * and the exclusive end of the run of j that continues contiguously in that kid.
 */
interface AxisRun {
  kid: number;
  at: number;
  end: number;
}

type AxisOp = "slice" | "pad" | "concat" | "repeat_interleave";
type AxisExpr<K extends AxisOp> = Extract<WeightExpr, { op: K }>;

const AXIS_RUNS: { [K in AxisOp]: (e: AxisExpr<K>, node: ShapedExpr, j: number) => AxisRun } = {
  slice: (e, node, j) => ({ kid: 0, at: j + e.start, end: node.shape[e.dim]! }),
  pad: (e, node, j) => {
    const have = node.kids[0]!.shape[e.dim]!;
    return j < have ? { kid: 0, at: j, end: have } : { kid: -1, at: 0, end: e.to };
  },
  concat: (e, node, j) => {
    let from = 0;
    for (let c = 0; ; c++) {
      const size = node.kids[c]!.shape[e.dim]!;
      if (j < from + size) return { kid: c, at: j - from, end: from + size };
      from += size;
    }
  },
  // Each source index is repeated, so a run never continues past one output index.
  repeat_interleave: (e, _node, j) => ({ kid: 0, at: Math.floor(j / e.repeats), end: j + 1 }),
};

/** Walks [start, start + count) of an axis op's output run by run, recursing into the kid each run reads. */
function collectAxis(e: AxisExpr<AxisOp>, node: ShapedExpr, start: number, count: number, dst: number, out: PieceList): void {
  const runAt = AXIS_RUNS[e.op] as (e: AxisExpr<AxisOp>, node: ShapedExpr, j: number) => AxisRun;
  const n = node.shape[e.dim]!;
  const inner = numel(node.shape.slice(e.dim + 1));
  const slab = n * inner;
  const end = start + count;
  for (let f = start; f < end; ) {
    const o = Math.floor(f / slab);
    const j = Math.floor((f - o * slab) / inner);
    const k = f - o * slab - j * inner;
    const run = runAt(e, node, j);
    const stop = Math.min(end, o * slab + run.end * inner);
    const at = dst + (f - start);
    if (run.kid < 0) out.zero(stop - f, at);
    else {
      const kid = node.kids[run.kid]!;
      collect(kid, (o * kid.shape[e.dim]! + run.at) * inner + k, stop - f, at, out);
    }
    f = stop;
  }
}

/** Appends the pieces that produce elements [start, start + count) of `node` (row-major) at `dst`. */
export function collect(node: ShapedExpr, start: number, count: number, dst: number, out: PieceList): void {
  const e = node.expr;
  if (count === 0) return;
  if ("source" in e) out.read(e.source, start, count, dst);
  else if (e.op === "zeros") out.zero(count, dst);
  else if (e.op === "reshape")
    collect(node.kids[0]!, start, count, dst, out); // row-major order is unchanged
  else if (e.op === "transpose") out.transpose(node, start, count, dst);
  else if (e.op === "offset") out.offset(node, start, count, dst);
  else collectAxis(e, node, start, count, dst, out);
}
