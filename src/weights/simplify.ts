// Algebraic simplification of weight expressions, so that emitted weight maps read like what they mean and the
// converter streams from the source tensors directly: a slice of a concatenation along the same dim that falls
// inside one part becomes a slice of that part; a full-range slice disappears; a transpose of a transpose cancels;
// a concat of adjacent slices of the same tensor becomes one slice; a slice across several parts of a concat becomes
// the concat of the parts' slices, and one across a concat on another dim the concat of slices; a slice on dim 0 of a
// reshape that only splits dim 0 ([E*r, ...] -> [E, r, ...], stacked experts) becomes a reshape of a dim-0 slice.

import { exprShape, type WeightExpr } from "./weight-map.ts";

type ShapeOf = (name: string) => readonly number[] | undefined;

const sameExpr = (a: WeightExpr, b: WeightExpr) => JSON.stringify(a) === JSON.stringify(b);

export function simplifyExpr(e: WeightExpr, shapeOf: ShapeOf): WeightExpr {
  if ("source" in e || e.op === "zeros") return e;
  if (e.op === "concat") {
    const xs = e.xs.map((x) => simplifyExpr(x, shapeOf));
    // concat(slice(t, a, b), slice(t, b, c)) -> slice(t, a, c)
    const merged: WeightExpr[] = [];
    for (const x of xs) {
      const prev = merged[merged.length - 1];
      if (
        prev &&
        !("source" in prev) &&
        prev.op === "slice" &&
        !("source" in x) &&
        x.op === "slice" &&
        prev.dim === e.dim &&
        x.dim === e.dim &&
        prev.end === x.start &&
        sameExpr(prev.x, x.x)
      )
        merged[merged.length - 1] = { ...prev, end: x.end };
      else merged.push(x);
    }
    return merged.length === 1 ? simplifyExpr(merged[0]!, shapeOf) : { ...e, xs: merged };
  }
  const inner = simplifyExpr(e.x, shapeOf);
  if (e.op === "transpose" && !("source" in inner) && inner.op === "transpose") return inner.x;
  if (e.op === "slice") {
    const shape = exprShape(inner, shapeOf);
    if (e.start === 0 && e.end === shape[e.dim]) return inner;
    if (!("source" in inner) && inner.op === "concat" && inner.dim === e.dim) {
      let at = 0;
      const pieces: WeightExpr[] = [];
      for (const part of inner.xs) {
        const len = exprShape(part, shapeOf)[e.dim]!;
        if (e.start >= at && e.end <= at + len) return simplifyExpr({ ...e, start: e.start - at, end: e.end - at, x: part }, shapeOf);
        const [a, b] = [Math.max(e.start, at), Math.min(e.end, at + len)];
        if (a < b) pieces.push({ op: "slice", dim: e.dim, start: a - at, end: b - at, x: part });
        at += len;
      }
      return simplifyExpr({ op: "concat", dim: e.dim, xs: pieces }, shapeOf);
    }
    if (!("source" in inner) && inner.op === "concat") return simplifyExpr({ op: "concat", dim: inner.dim, xs: inner.xs.map((x) => ({ ...e, x })) }, shapeOf);
    if (!("source" in inner) && inner.op === "reshape" && e.dim === 0) {
      const from = exprShape(inner.x, shapeOf);
      const to = inner.shape;
      const rows = to[1] ?? 1;
      // [E * rows, ...rest] -> [E, rows, ...rest]: expert k is rows k*rows .. (k+1)*rows of the source.
      if (to.length === from.length + 1 && from[0] === to[0]! * rows && from.slice(1).every((d, i) => d === to[i + 2]))
        return simplifyExpr(
          { op: "reshape", shape: [e.end - e.start, ...to.slice(1)], x: { ...e, start: e.start * rows, end: e.end * rows, x: inner.x } },
          shapeOf,
        );
    }
    if (!("source" in inner) && inner.op === "slice" && inner.dim === e.dim)
      return simplifyExpr({ ...e, start: inner.start + e.start, end: inner.start + e.end, x: inner.x }, shapeOf);
    // A slice of a transpose is a transpose of the slice on the other dim (reads fewer source bytes).
    if (!("source" in inner) && inner.op === "transpose") return { op: "transpose", x: simplifyExpr({ ...e, dim: 1 - e.dim, x: inner.x }, shapeOf) };
  }
  return { ...e, x: inner } as WeightExpr;
}
