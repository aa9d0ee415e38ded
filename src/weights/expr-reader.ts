// Evaluates element ranges of a shaped weight expression into a caller's buffer with positioned reads of the
// source files: the read half of the streaming converter. Results are words of one "work" dtype: the sources'
// common dtype (then values are copied bit for bit, never decoded) or F32 when sources mix dtypes (then each
// source is widened exactly as it is read). Invariants: memory is bounded by the range asked for (plus one
// reusable scratch buffer); large same-dtype pieces are read straight into the destination; nearby small or
// dtype-changing pieces of one file are read as one span of at most twice their bytes (so a dim-1 slice costs
// a few reads, not one per row, and a transpose never rereads a whole tensor per block).
// Reads are synchronous on purpose: converter blocks are small and the data is usually in the page cache, where
// a pread costs microseconds and an async round trip through the thread pool costs more than the copy; the
// converter's writes stay asynchronous, so reading the next block overlaps writing the previous one.

import * as fs from "node:fs";
import { castFloats, FLOAT_BYTES, type FloatDtype } from "./float-cast.ts";
import { collect, PieceList, PIECES_FULL, type Piece, type ReadPiece, type ShapedExpr, type TransposePiece } from "./expr-pieces.ts";

export class SourceReadError extends Error {
  override name = "SourceReadError";
}

/** Where a checkpoint tensor's bytes live. */
export interface SourceSlot {
  readonly name: string;
  readonly path: string;
  readonly fd: number;
  /** Absolute file position of the tensor's first byte. */
  readonly byteOffset: number;
  readonly dtype: FloatDtype;
}

/** Elements [start, start + count) of an expression, to go to element `dst` of the destination. */
export interface Segment {
  start: number;
  count: number;
  dst: number;
}

/** A same-dtype piece at least this big is read directly into the destination (no extra copy). */
const DIRECT_READ_MIN = 64 << 10;
/** A gap up to this size, or up to the next piece's size, is read through rather than paying another syscall. */
const COALESCE_GAP = 4 << 10;
/** Most pieces planned at once; a range that needs more is split in halves. */
const PIECE_CAP = 1 << 16;

function readFully(slot: SourceSlot, dst: Uint8Array, position: number): void {
  for (let done = 0; done < dst.length; ) {
    const bytesRead = fs.readSync(slot.fd, dst, done, dst.length - done, position + done);
    if (bytesRead === 0) throw new SourceReadError(`${slot.path}: tensor "${slot.name}": unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Integer views copy float bits exactly (a Float32Array round trip could canonicalize NaN payloads). */
const wordsOf = (buf: ArrayBuffer, bytes: number): Uint16Array | Uint32Array =>
  bytes === 4 ? new Uint32Array(buf, 0, buf.byteLength >> 2) : new Uint16Array(buf, 0, buf.byteLength >> 1);

interface Span {
  slot: SourceSlot;
  start: number;
  end: number;
  pieces: ReadPiece[];
}

export class ExprReader {
  readonly #sources: ReadonlyMap<string, SourceSlot>;
  #scratch: ArrayBuffer;

  constructor(sources: ReadonlyMap<string, SourceSlot>, scratchBytes: number) {
    this.#sources = sources;
    this.#scratch = new ArrayBuffer(scratchBytes);
  }

  /** Fills every segment of `node` into `dst` (an ArrayBuffer of `work` words). */
  fill(node: ShapedExpr, work: FloatDtype, segments: readonly Segment[], dst: ArrayBuffer): void {
    const list = new PieceList(PIECE_CAP);
    try {
      for (const s of segments) collect(node, s.start, s.count, s.dst, list);
    } catch (e) {
      if (e !== PIECES_FULL) throw e;
      // One element is always one piece, so halving terminates.
      const halves: Segment[][] =
        segments.length > 1
          ? [segments.slice(0, segments.length >> 1), segments.slice(segments.length >> 1)]
          : (([s]) => {
              const h = Math.floor(s!.count / 2);
              return [[{ start: s!.start, count: h, dst: s!.dst }], [{ start: s!.start + h, count: s!.count - h, dst: s!.dst + h }]];
            })(segments);
      for (const half of halves) this.fill(node, work, half, dst);
      return;
    }
    this.#execute(list.items, work, dst);
  }

  #execute(pieces: readonly Piece[], work: FloatDtype, dst: ArrayBuffer): void {
    const bytes = new Uint8Array(dst);
    const wb = FLOAT_BYTES[work];
    let span: Span | undefined;
    for (const p of pieces) {
      if (p.kind === "zero") bytes.fill(0, p.dst * wb, (p.dst + p.count) * wb);
      else if (p.kind === "transpose") this.#transpose(p, work, dst);
      else {
        const slot = this.#sources.get(p.source)!;
        const sb = FLOAT_BYTES[slot.dtype];
        const start = slot.byteOffset + p.srcStart * sb;
        const end = start + p.count * sb;
        if (slot.dtype === work && end - start >= DIRECT_READ_MIN) readFully(slot, bytes.subarray(p.dst * wb, p.dst * wb + (end - start)), start);
        else if (
          span &&
          span.slot.fd === slot.fd &&
          start >= span.start &&
          start <= span.end + Math.max(COALESCE_GAP, end - start) &&
          end - span.start <= this.#scratch.byteLength
        ) {
          span.end = Math.max(span.end, end);
          span.pieces.push(p);
        } else {
          if (span) this.#readSpan(span, work, dst);
          span = { slot, start, end, pieces: [p] };
        }
      }
    }
    if (span) this.#readSpan(span, work, dst);
  }

  /** Reads a span into scratch, then copies (or widens) each of its pieces into place. */
  #readSpan(span: Span, work: FloatDtype, dst: ArrayBuffer): void {
    if (span.end - span.start > this.#scratch.byteLength) this.#scratch = new ArrayBuffer(span.end - span.start);
    const scratch = this.#scratch;
    readFully(span.slot, new Uint8Array(scratch, 0, span.end - span.start), span.start);
    const wb = FLOAT_BYTES[work];
    for (const p of span.pieces) {
      const slot = this.#sources.get(p.source)!;
      const sb = FLOAT_BYTES[slot.dtype];
      const at = slot.byteOffset + p.srcStart * sb - span.start;
      // Typed views need element-aligned offsets; tensors of mixed dtypes in one file may not be.
      const [from, fromOffset] = at % sb === 0 ? [scratch, at] : [scratch.slice(at, at + p.count * sb), 0];
      castFloats(slot.dtype, work, from, fromOffset, dst, p.dst * wb, p.count);
    }
  }

  /** Output rows [j0, j1) of a transpose are input columns [j0, j1): read them row by row, then scatter. */
  #transpose(p: TransposePiece, work: FloatDtype, dst: ArrayBuffer): void {
    const kid = p.node.kids[0]!;
    const [rows, cols] = kid.shape as [number, number];
    const j0 = Math.floor(p.start / rows);
    const width = Math.ceil((p.start + p.count) / rows) - j0;
    const wb = FLOAT_BYTES[work];
    const temp = new ArrayBuffer(rows * width * wb); // temp[i * width + (j - j0)] = input[i, j]
    this.fill(kid, work, Array.from({ length: rows }, (_, i) => ({ start: i * cols + j0, count: width, dst: i * width })), temp);
    const from = wordsOf(temp, wb);
    const to = wordsOf(dst, wb);
    const end = p.start + p.count;
    for (let f = p.start; f < end; ) {
      const j = Math.floor(f / rows);
      const stop = Math.min(end, (j + 1) * rows);
      let d = p.dst + (f - p.start);
      for (let s = (f - j * rows) * width + (j - j0); f < stop; f++, d++, s += width) to[d] = from[s]!;
    }
  }
}
