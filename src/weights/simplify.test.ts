// Simplification keeps the value of every expression (checked by evaluation) while removing needless structure.

import { describe, expect, it } from "vitest";
import { simplifyExpr } from "./simplify.ts";
import { concat, type Dense, evalExpr, reshape, slice, src, transpose, type WeightExpr } from "./weight-map.ts";

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

  it("splits a slice that spans two parts into the parts' slices", () => {
    const e = slice(concat(0, src("a"), src("b")), 0, 3, 5);
    expect(simplifyExpr(e, shapeOf)).toEqual(concat(0, slice(src("a"), 0, 3, 4), slice(src("b"), 0, 0, 1)));
    same(e);
  });

  it("moves a slice under a concat on another dim", () => {
    const e = slice(concat(1, src("a"), src("a")), 0, 1, 3);
    expect(simplifyExpr(e, shapeOf)).toEqual(concat(1, slice(src("a"), 0, 1, 3), slice(src("a"), 0, 1, 3)));
    same(e);
  });

  it("reads only the stacked experts a dim-0 slice keeps", () => {
    // [4, 3] stacked as 2 experts of 2 rows: expert 1 is rows 2..4 of the source
    const e = slice(reshape(src("a"), [2, 2, 3]), 0, 1, 2);
    expect(simplifyExpr(e, shapeOf)).toEqual(reshape(slice(src("a"), 0, 2, 4), [1, 2, 3]));
    same(e);
    // a reshape that is not a stacking of dim 0 is left alone
    const flat = slice(reshape(src("a"), [3, 4]), 0, 1, 2);
    expect(simplifyExpr(flat, shapeOf)).toEqual(flat);
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
