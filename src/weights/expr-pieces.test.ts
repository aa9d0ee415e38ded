// expr-pieces.ts: the exact pieces planned for each transform, including the fast paths (one read per source
// for plain, dim-0 slice and dim-0 concat expressions; one strided piece for a dim-1 slice) and the cap.

import { describe, expect, test } from "vitest";
import { collect, PieceList, PIECES_FULL, shapeTree, type Piece } from "./expr-pieces.ts";
import { concat, pad, repeatInterleave, reshape, slice, src, transpose, type WeightExpr, zeros } from "./weight-map.ts";

const SHAPES: Record<string, number[]> = { a: [4, 3], b: [2, 3], v: [5] };

function pieces(e: WeightExpr, start?: number, count?: number): Piece[] {
  const node = shapeTree(e, (n) => SHAPES[n]);
  const list = new PieceList(1000);
  collect(node, start ?? 0, count ?? node.shape.reduce((x, y) => x * y, 1), 0, list);
  return list.items;
}
const read = (source: string, srcStart: number, count: number, dst: number, rows = 1, srcStride = 0, dstStride = 0) => ({
  kind: "read",
  source,
  srcStart,
  count,
  dst,
  rows,
  srcStride,
  dstStride,
});

describe("pieces", () => {
  test("a plain source, a reshape, a dim-0 slice and a dim-0 concat are one read per source", () => {
    expect(pieces(src("a"))).toEqual([read("a", 0, 12, 0)]);
    expect(pieces(reshape(src("a"), [3, 2, 2]))).toEqual([read("a", 0, 12, 0)]);
    expect(pieces(slice(src("a"), 0, 1, 3))).toEqual([read("a", 3, 6, 0)]);
    expect(pieces(concat(0, src("a"), src("b"), slice(src("a"), 0, 0, 1)))).toEqual([read("a", 0, 12, 0), read("b", 0, 6, 12), read("a", 0, 3, 18)]);
  });

  test("a sub-range reads only the elements it needs", () => {
    // concat0(a, b) elements [10, 14): a[10..12) then b[0..2).
    expect(pieces(concat(0, src("a"), src("b")), 10, 4)).toEqual([read("a", 10, 2, 0), read("b", 0, 2, 2)]);
  });

  test("a dim-1 slice is one strided piece: 4 rows of 2, 3 apart in the source, 2 apart in the output", () => {
    expect(pieces(slice(src("a"), 1, 1, 3))).toEqual([read("a", 1, 2, 0, 4, 3, 2)]);
    // Output elements [3, 7) = a[5], a[7..9), a[10]: rows of unequal length stay separate pieces.
    expect(pieces(slice(src("a"), 1, 1, 3), 3, 4)).toEqual([read("a", 5, 1, 0), read("a", 7, 2, 1), read("a", 10, 1, 3)]);
  });

  test("a dim-1 concat interleaves row runs, and runs that continue each other merge", () => {
    expect(pieces(concat(1, src("b"), slice(src("b"), 1, 0, 1)))).toEqual([read("b", 0, 3, 0), read("b", 0, 1, 3), read("b", 3, 3, 4), read("b", 3, 1, 7)]);
    expect(pieces(concat(1, slice(src("b"), 1, 0, 2), slice(src("b"), 1, 2, 3)))).toEqual([read("b", 0, 6, 0)]);
  });

  test("pad, zeros and repeat_interleave", () => {
    expect(pieces(pad(src("v"), 0, 8))).toEqual([read("v", 0, 5, 0), { kind: "zero", count: 3, dst: 5 }]);
    expect(pieces(concat(0, zeros([1, 3]), zeros([2, 3])))).toEqual([{ kind: "zero", count: 9, dst: 0 }]);
    // Each row of b twice: a strided piece with source stride 0 per row of b.
    expect(pieces(repeatInterleave(src("b"), 0, 2))).toEqual([read("b", 0, 3, 0, 2, 0, 3), read("b", 3, 3, 6, 2, 0, 3)]);
    expect(pieces(repeatInterleave(src("v"), 0, 2), 3, 3)).toEqual([read("v", 1, 2, 0), read("v", 2, 1, 2)]);
  });

  test("a transpose is left to the reader as one piece of its output range", () => {
    const got = pieces(concat(0, transpose(src("b")), reshape(src("a"), [6, 2])), 2, 6);
    expect(got.map((p) => p.kind)).toEqual(["transpose", "read"]);
    expect(got[0]).toMatchObject({ start: 2, count: 4, dst: 0 });
    expect(got[1]).toEqual(read("a", 0, 2, 4));
  });

  test("a list never passes its cap", () => {
    const list = new PieceList(3);
    // concat1(a, a): each output row reads a row of a twice, one strided piece per row: 4 pieces.
    const node = shapeTree(concat(1, src("a"), src("a")), (n) => SHAPES[n]);
    let thrown: unknown;
    try {
      collect(node, 0, 24, 0, list);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBe(PIECES_FULL);
    expect(list.items).toHaveLength(3);
  });
});
