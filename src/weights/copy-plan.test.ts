// copy-plan.ts: which tensors are plain copies, the byte ranges of a block (exact cover, zeros, strided rows), and
// the header residue that puts the most copied bytes at their source page offsets.

import { describe, expect, test } from "vitest";
import { bestDataResidue, blockRanges, isPlainCopy } from "./copy-plan.ts";
import { shapeTree } from "./expr-pieces.ts";
import type { SourceSlot } from "./expr-reader.ts";
import { concat, pad, repeatInterleave, reshape, slice, src, transpose, type WeightExpr } from "./weight-map.ts";

const SHAPES: Record<string, number[]> = { q: [8, 4096], k: [2, 4096], small: [4, 64], w: [4, 32768] };
const DTYPES: Record<string, string> = { q: "BF16", k: "BF16", small: "BF16", w: "BF16", f: "F32" };
const node = (e: WeightExpr) => shapeTree(e, (n) => SHAPES[n]);
const slot = (name: string, fd: number, byteOffset: number): [string, SourceSlot] => [name, { name, path: `${name}.st`, fd, byteOffset, dtype: "BF16" }];
const SLOTS = new Map([slot("q", 3, 1592), slot("k", 4, 152), slot("small", 4, 9000), slot("w", 3, 1592 + 65536)]);
const numel = (e: WeightExpr) => node(e).shape.reduce((a, b) => a * b, 1);
const plain = (e: WeightExpr, dtype: "BF16" | "F16" = "BF16") => isPlainCopy(node(e), numel(e), dtype, (n) => DTYPES[n]!);

describe("isPlainCopy", () => {
  test("slices, concats, pads and repeats of same-dtype sources are copies; transposes, casts and short strided rows are not", () => {
    expect(plain(src("q"))).toBe(true);
    expect(plain(concat(0, slice(src("q"), 0, 0, 4), src("k")))).toBe(true);
    expect(plain(pad(src("k"), 0, 3))).toBe(true);
    expect(plain(repeatInterleave(reshape(src("k"), [1, 8192]), 0, 2))).toBe(true); // whole 16 KiB rows, repeated
    expect(plain(repeatInterleave(src("k"), 0, 2))).toBe(false); // 8 KiB rows, each read twice
    expect(plain(slice(src("w"), 1, 16384, 32768))).toBe(true); // 32 KiB rows
    expect(plain(slice(src("w"), 1, 0, 4096))).toBe(false); // 8 KiB rows
    expect(plain(transpose(src("small")))).toBe(false);
    expect(plain(src("q"), "F16")).toBe(false);
  });
});

describe("blockRanges", () => {
  test("a block of [q_r; k] covers its bytes exactly once, in order, from the right files and offsets", () => {
    const e = concat(0, slice(src("q"), 0, 4, 8), src("k"));
    // Elements 4096 .. 4096 * 5 + 100: the last 3 q rows (of 4) and the first k row plus 100 elements.
    const { ranges, sources } = blockRanges(node(e), 4096, 4096 * 4 + 100, "BF16", SLOTS);
    expect([...ranges]).toEqual([3, 1592 + 5 * 8192, 0, 3 * 8192, 4, 152, 3 * 8192, 8192 + 200]);
    expect(sources.map((s) => s?.name)).toEqual(["q", "k"]);
  });

  test("strided rows become one range each; padding becomes a zero range (fd -1)", () => {
    const cols = blockRanges(node(slice(src("w"), 1, 16384, 32768)), 0, 2 * 16384, "BF16", SLOTS).ranges;
    expect([...cols]).toEqual([3, 1592 + 65536 + 32768, 0, 32768, 3, 1592 + 65536 + 65536 + 32768, 32768, 32768]);
    const padded = blockRanges(node(pad(src("k"), 0, 3)), 4096, 8192, "BF16", SLOTS);
    expect([...padded.ranges]).toEqual([4, 152 + 8192, 0, 8192, -1, 0, 8192, 8192]);
    expect(padded.sources).toEqual([SLOTS.get("k"), undefined]);
  });
});

describe("bestDataResidue", () => {
  const placed = (e: WeightExpr, at: number) => ({ node: node(e), elements: numel(e), dtype: "BF16" as const, at });

  test("picks the residue of the most copied bytes: D + at + dst = src (mod 4096)", () => {
    // q (64 KiB, at 0) wants D = 1592; k (16 KiB, at 64 KiB) wants D = 152: q wins.
    expect(bestDataResidue([placed(src("q"), 0), placed(src("k"), 65536)], SLOTS, 4096)).toBe(1592);
    // Three copies of k outweigh one q.
    expect(bestDataResidue([placed(src("q"), 0), ...[1, 2, 3, 4, 5].map((i) => placed(src("k"), 65536 * i))], SLOTS, 4096)).toBe(152);
    // A tensor placed 100 bytes in shifts what it wants by 100, rounded down to a multiple of 8.
    expect(bestDataResidue([placed(src("q"), 100)], SLOTS, 4096)).toBe(1488);
    expect(bestDataResidue([], SLOTS, 4096)).toBeUndefined();
  });

  test("strided rows count only when both strides keep the page offset", () => {
    // w's dim-1 half: 32 KiB rows, source stride 64 KiB, destination stride 32 KiB: every row lands alike.
    expect(bestDataResidue([placed(slice(src("w"), 1, 16384, 32768), 0)], SLOTS, 4096)).toBe((1592 + 65536 + 32768) % 4096);
    // Rows whose destination stride shifts the page offset row by row do not count.
    const shifted = { ...placed(slice(src("w"), 1, 16384, 32768 - 2), 0) };
    expect(bestDataResidue([shifted], SLOTS, 4096)).toBeUndefined();
  });
});
