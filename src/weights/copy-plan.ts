// Which output tensors are plain copies of source elements, and the byte ranges of one block of such a tensor: the
// planning half of the converter's native path (copy-ranges.ts runs the ranges). A tensor qualifies when all its
// sources have one dtype (it may be written in another 16-bit dtype: the helper casts) and its expression is made
// of slices, concats, pads, repeats, reshapes and zeros only (no transpose): then every output element is a source
// element or a zero. Invariants: ranges of one block cover [0, block bytes) exactly once, in destination order; a
// tensor whose strided rows are shorter than MIN_ROW_BYTES is not a copy (one native call per short row costs more
// than reading the rows in bulk, which the read/write path does).

import { FLOAT_BYTES, type FloatDtype } from "./float-cast.ts";
import { collect, PieceList, PIECES_FULL, type ShapedExpr } from "./expr-pieces.ts";
import type { SourceSlot } from "./expr-reader.ts";
import { ZERO_FD, type CopyRanges } from "./copy-ranges.ts";

/**
 * Strided rows shorter than this go through memory instead (each row is one native call; the memory path reads
 * many rows with one call). Measured on the 2-core benchmark VM: in C, copying half of every row of a 760 MB file
 * into two files, 4 KiB rows were as fast either way and 16 KiB rows 10% faster with copy_file_range; in Kiln,
 * tp=2 of the benchmark LLaMA (o_proj and down_proj halves, 2 and 5.5 KiB rows) was 10% faster with those rows
 * through memory, both with kernel copies and with mapped writes (0.95 s against 1.08 s), and also faster than
 * a native read of a span of rows at a time (1.06-1.11 s).
 */
const MIN_ROW_BYTES = 16 << 10;
/** Pieces a whole-tensor check may list before the tensor is declared not a copy. */
const CHECK_CAP = 1 << 12;

/** True when every element of the tensor is a source element (all sources in `dtype`) or zero, in runs worth a native call each. */
export function isPlainCopy(node: ShapedExpr, elements: number, dtype: FloatDtype, dtypeOf: (source: string) => string): boolean {
  const list = new PieceList(CHECK_CAP);
  try {
    collect(node, 0, elements, 0, list);
  } catch (e) {
    if (e === PIECES_FULL) return false;
    throw e;
  }
  return list.items.every(
    (p) => p.kind === "zero" || (p.kind === "read" && dtypeOf(p.source) === dtype && (p.rows === 1 || p.count * FLOAT_BYTES[dtype] >= MIN_ROW_BYTES)),
  );
}

/**
 * Byte ranges ([fdIn, srcPos, dstOffset, length], see copy-ranges.ts) of elements [start, start + count), and
 * the source slot each range reads (undefined: zeros), to name the source when a copy fails.
 */
export function blockRanges(
  node: ShapedExpr,
  start: number,
  count: number,
  dtype: FloatDtype,
  slots: ReadonlyMap<string, SourceSlot>,
): { ranges: CopyRanges; sources: (SourceSlot | undefined)[] } {
  const list = new PieceList(Number.POSITIVE_INFINITY);
  collect(node, start, count, 0, list);
  const b = FLOAT_BYTES[dtype];
  const quads: number[] = [];
  const sources: (SourceSlot | undefined)[] = [];
  for (const p of list.items) {
    if (p.kind === "zero") {
      quads.push(ZERO_FD, 0, p.dst * b, p.count * b);
      sources.push(undefined);
    } else if (p.kind === "read") {
      const slot = slots.get(p.source)!;
      for (let r = 0; r < p.rows; r++) {
        quads.push(slot.fd, slot.byteOffset + (p.srcStart + r * p.srcStride) * b, (p.dst + r * p.dstStride) * b, p.count * b);
        sources.push(slot);
      }
    } else throw new Error(`internal: block of a plain-copy tensor has a ${p.kind} piece`);
  }
  return { ranges: Float64Array.from(quads), sources };
}

/** A copied tensor of an output file: its expression and where its data starts relative to the data section. */
export interface PlacedCopy {
  node: ShapedExpr;
  elements: number;
  dtype: FloatDtype;
  /** Byte offset of the tensor inside the output file's data section. */
  at: number;
}

/**
 * The data-section start residue (modulo DATA_ALIGN, a multiple of 8) that puts the most copied bytes at the same
 * page offset as their source bytes, or undefined when nothing is copied. Rows of a strided piece count only
 * when both strides keep the page offset (otherwise each row lands differently and no choice helps them all).
 */
export function bestDataResidue(copies: readonly PlacedCopy[], slots: ReadonlyMap<string, SourceSlot>, align: number): number | undefined {
  const weight = new Map<number, number>();
  for (const c of copies) {
    const list = new PieceList(CHECK_CAP);
    collect(c.node, 0, c.elements, 0, list);
    const b = FLOAT_BYTES[c.dtype];
    for (const p of list.items) {
      if (p.kind !== "read" || (p.rows > 1 && ((p.srcStride * b) % align !== 0 || (p.dstStride * b) % align !== 0))) continue;
      const src = slots.get(p.source)!.byteOffset + p.srcStart * b;
      const residue = (((src - c.at - p.dst * b) % align) + align) % align;
      // ^ data start D must satisfy D + at + dst ≡ src (mod align).
      weight.set(residue, (weight.get(residue) ?? 0) + p.count * b * p.rows);
    }
  }
  // Headers are padded in steps of 8, so only multiples of 8 are possible: a residue counts for the one below it.
  const rounded = new Map<number, number>();
  for (const [r, bytes] of weight) rounded.set(r - (r % 8), (rounded.get(r - (r % 8)) ?? 0) + bytes);
  let best: number | undefined;
  for (const [r, bytes] of rounded) if (best === undefined || bytes > rounded.get(best)! || (bytes === rounded.get(best)! && r < best)) best = r;
  return best;
}
