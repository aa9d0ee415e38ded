// Simplification keeps the value of every expression (checked by evaluation) while removing needless structure.

import { describe, expect, it } from "vitest";
import { simplifyExpr } from "./simplify.ts";
import { concat, type Dense, evalExpr, slice, src, transpose, type WeightExpr } from "./weight-map.ts";

const shapes: Record<string, number[]> = { a: [4, 3], b: [2, 3], c: [3, 5] };
const data = (n: string): Dense => ({
  shape: shapes[n]!,
  data: Float32Array.from({ length: shapes[n]!.reduce((x, y) => x * y) }, (_, i) => i + 100 * n.charCodeAt(0)),
});
const shapeOf = (n: string) => shapes[n];
const same = (e: WeightExpr) => expect(evalExpr(simplifyExpr(e, shapeOf), data)).toEqual(evalExpr(e, data));

describe("simplifyExpr", () => {
  it("takes a slice of a concat from the part it falls in", () => {
    const e = slice(concat(0, src("a"), src("b")), 0, 4, 6);
    expect(simplifyExpr(e, shapeOf)).toEqual(src("b"));
    same(e);
    const partial = slice(concat(0, src("a"), src("b")), 0, 1, 3);
    expect(simplifyExpr(partial, shapeOf)).toEqual(slice(src("a"), 0, 1, 3));
    same(partial);
  });

  it("keeps a slice that spans two parts", () => {
    const e = slice(concat(0, src("a"), src("b")), 0, 3, 5);
    expect(simplifyExpr(e, shapeOf)).toEqual(e);
  });

  it("merges adjacent slices, drops full slices and double transposes", () => {
    const e = concat(0, slice(src("a"), 0, 0, 2), slice(src("a"), 0, 2, 4));
    expect(simplifyExpr(e, shapeOf)).toEqual(src("a"));
    same(e);
    expect(simplifyExpr(transpose(transpose(src("c"))), shapeOf)).toEqual(src("c"));
  });

  it("moves a slice under a transpose", () => {
    const e = slice(transpose(src("c")), 0, 1, 3);
    expect(simplifyExpr(e, shapeOf)).toEqual(transpose(slice(src("c"), 1, 1, 3)));
    same(e);
  });
});
