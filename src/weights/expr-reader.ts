// Evaluates element ranges of a shaped weight expression into a caller's buffer with positioned reads of the
// source files: the read half of the streaming converter. Results are words of one "work" dtype: the sources'
// common dtype (then values are copied bit for bit, never decoded) or F32 when sources mix dtypes (then each
// source is widened exactly as it is read). Invariants: memory is bounded by the range asked for (plus one
// reusable scratch buffer); large same-dtype pieces are read straight into the destination; nearby small or
// dtype-changing pieces of one file are read as one span of at most twice their bytes (so a dim-1 slice costs
// a few reads, not one per row, and a transpose never rereads a whole tensor per block).
// Large reads go through libuv's thread pool, so the converter can fill several blocks (each with its own
// reader) while other threads write: on 2 cores, the copy out of the page cache then runs beside the copy into
// it. Reads under ASYNC_READ_MIN stay synchronous: from the page cache they cost microseconds, less than a
// round trip through the pool. One reader runs one fill at a time (it owns its scratch buffer).

import * as fs from "node:fs";
import { FLOAT_BYTES, floatCast, type FloatDtype } from "./float-cast.ts";
import { e4m3ToF32 } from "../numerics/fp8-e4m3.ts";
import { collect, type OffsetPiece, PieceList, PIECES_FULL, type Piece, type ReadPiece, type ShapedExpr, type TransposePiece } from "./expr-pieces.ts";

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
  /** F8_E4M3 only for a pre-quantized FP8 weight read with its scale (widened to F32 as e4m3(code) * scale). */
  readonly dtype: FloatDtype | "F8_E4M3";
  readonly scale?: number;
}

const sourceBytes = (d: SourceSlot["dtype"]): number => (d === "F8_E4M3" ? 1 : FLOAT_BYTES[d]);

/** Widens `count` E4M3 codes at byte `at` of `src` into F32 words at byte `out` of `dst`, times `scale`. */
function decodeFp8(src: ArrayBufferLike, at: number, dst: ArrayBufferLike, out: number, count: number, scale: number): void {
  e4m3ToF32(new Uint8Array(src, at, count), scale, new Float32Array(dst, out, count));
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

/** Reads this big or bigger are worth a trip through the thread pool. */
const ASYNC_READ_MIN = 64 << 10;

const readAt = (fd: number, dst: Uint8Array, offset: number, length: number, position: number): Promise<number> =>
  length < ASYNC_READ_MIN
    ? Promise.resolve(fs.readSync(fd, dst, offset, length, position))
    : new Promise((resolve, reject) => fs.read(fd, dst, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))));

async function readFully(slot: SourceSlot, dst: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < dst.length; ) {
    const bytesRead = await readAt(slot.fd, dst, done, dst.length - done, position + done);
    if (bytesRead === 0) throw new SourceReadError(`${slot.path}: tensor "${slot.name}": unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Integer views copy float bits exactly (a Float32Array round trip could canonicalize NaN payloads). */
const wordsOf = (buf: ArrayBufferLike, bytes: number): Uint16Array | Uint32Array =>
  bytes === 4 ? new Uint32Array(buf, 0, buf.byteLength >> 2) : new Uint16Array(buf, 0, buf.byteLength >> 1);

/** Two halves of the work: half the segments, or half the elements of a single one (one element is one piece). */
function halve(segments: readonly Segment[]): Segment[][] {
  if (segments.length > 1) return [segments.slice(0, segments.length >> 1), segments.slice(segments.length >> 1)];
  const s = segments[0]!;
  const h = Math.floor(s.count / 2);
  return [[{ start: s.start, count: h, dst: s.dst }], [{ start: s.start + h, count: s.count - h, dst: s.dst + h }]];
}

/** Rows [r0, r1) of a piece that fall in one span. */
interface SpanRows {
  p: ReadPiece;
  slot: SourceSlot;
  r0: number;
  r1: number;
}

/** One positioned read [start, end) of a file into scratch, and the piece rows it serves. */
interface Span {
  fd: number;
  start: number;
  end: number;
  rows: SpanRows[];
}

export class ExprReader {
  readonly #sources: ReadonlyMap<string, SourceSlot>;
  #scratch: ArrayBuffer;

  constructor(sources: ReadonlyMap<string, SourceSlot>, scratchBytes: number) {
    this.#sources = sources;
    this.#scratch = new ArrayBuffer(scratchBytes);
  }

  /** Fills every segment of `node` into `dst` (an ArrayBuffer of `work` words). */
  async fill(node: ShapedExpr, work: FloatDtype, segments: readonly Segment[], dst: ArrayBufferLike): Promise<void> {
    const list = new PieceList(PIECE_CAP);
    try {
      for (const s of segments) collect(node, s.start, s.count, s.dst, list);
    } catch (e) {
      if (e !== PIECES_FULL) throw e;
      for (const half of halve(segments)) await this.fill(node, work, half, dst);
      return;
    }
    await this.#execute(list.items, work, dst);
  }

  async #execute(pieces: readonly Piece[], work: FloatDtype, dst: ArrayBufferLike): Promise<void> {
    const bytes = new Uint8Array(dst);
    const wb = FLOAT_BYTES[work];
    let span: Span | undefined;
    for (const p of pieces) {
      if (p.kind === "zero") bytes.fill(0, p.dst * wb, (p.dst + p.count) * wb);
      else if (p.kind === "transpose") await this.#transpose(p, work, dst);
      else if (p.kind === "offset") await this.#offset(p, work, dst);
      else {
        const slot = this.#sources.get(p.source)!;
        const sb = sourceBytes(slot.dtype);
        const rowBytes = p.count * sb;
        for (let r = 0; r < p.rows; r++) {
          const start = slot.byteOffset + (p.srcStart + r * p.srcStride) * sb;
          const end = start + rowBytes;
          if (slot.dtype === work && rowBytes >= DIRECT_READ_MIN) {
            const at = (p.dst + r * p.dstStride) * wb;
            await readFully(slot, bytes.subarray(at, at + rowBytes), start);
          } else if (
            span &&
            span.fd === slot.fd &&
            start >= span.start &&
            start <= span.end + Math.max(COALESCE_GAP, rowBytes) &&
            end - span.start <= this.#scratch.byteLength
          ) {
            span.end = Math.max(span.end, end);
            const last = span.rows.at(-1)!;
            if (last.p === p && last.r1 === r) last.r1++;
            else span.rows.push({ p, slot, r0: r, r1: r + 1 });
          } else {
            if (span) await this.#readSpan(span, work, dst);
            span = { fd: slot.fd, start, end, rows: [{ p, slot, r0: r, r1: r + 1 }] };
          }
        }
      }
    }
    if (span) await this.#readSpan(span, work, dst);
  }

  /** Reads a span into scratch, then copies (or widens) each of its rows into place. */
  async #readSpan(span: Span, work: FloatDtype, dst: ArrayBufferLike): Promise<void> {
    if (span.end - span.start > this.#scratch.byteLength) this.#scratch = new ArrayBuffer(span.end - span.start);
    const scratch = this.#scratch;
    await readFully(span.rows[0]!.slot, new Uint8Array(scratch, 0, span.end - span.start), span.start);
    const wb = FLOAT_BYTES[work];
    const from = new Uint8Array(scratch);
    const to = new Uint8Array(dst);
    for (const { p, slot, r0, r1 } of span.rows) {
      const sb = sourceBytes(slot.dtype);
      const rowBytes = p.count * sb;
      const fp8 = slot.dtype === "F8_E4M3";
      const cast = slot.dtype === work || slot.dtype === "F8_E4M3" ? undefined : floatCast(slot.dtype, work);
      for (let r = r0; r < r1; r++) {
        const at = slot.byteOffset + (p.srcStart + r * p.srcStride) * sb - span.start;
        const out = (p.dst + r * p.dstStride) * wb;
        if (fp8) decodeFp8(scratch, at, dst, out, p.count, slot.scale!);
        else if (!cast) to.set(from.subarray(at, at + rowBytes), out);
        // Typed views need element-aligned offsets; odd-sized tensors (U8, I8, BOOL) earlier in a file can break that.
        else if (at % sb === 0) cast(scratch, at, dst, out, p.count);
        else cast(scratch.slice(at, at + rowBytes), 0, dst, out, p.count);
      }
    }
  }

  /** The input's same range, decoded to float32, plus the constant, rounded back to the work dtype (one rounding,
   *  as TensorRT-LLM's converters do: param + 1.0 in float32, then the cast). Only small tensors (norm scales) use it. */
  async #offset(p: OffsetPiece, work: FloatDtype, dst: ArrayBufferLike): Promise<void> {
    const wb = FLOAT_BYTES[work];
    const temp = new ArrayBuffer(p.count * wb);
    await this.fill(p.node.kids[0]!, work, [{ start: p.start, count: p.count, dst: 0 }], temp);
    const f32 = new Float32Array(p.count);
    if (work === "F32") f32.set(new Float32Array(temp));
    else floatCast(work, "F32")(temp, 0, f32.buffer, 0, p.count);
    const value = (p.node.expr as { value: number }).value;
    for (let i = 0; i < p.count; i++) f32[i] = f32[i]! + value;
    if (work === "F32") new Float32Array(dst, p.dst * 4, p.count).set(f32);
    else floatCast("F32", work)(f32.buffer, 0, dst, p.dst * wb, p.count);
  }

  /** Output rows [j0, j1) of a transpose are input columns [j0, j1): read them row by row, then scatter. */
  async #transpose(p: TransposePiece, work: FloatDtype, dst: ArrayBufferLike): Promise<void> {
    const kid = p.node.kids[0]!;
    const [rows, cols] = kid.shape as [number, number];
    const j0 = Math.floor(p.start / rows);
    const width = Math.ceil((p.start + p.count) / rows) - j0;
    const wb = FLOAT_BYTES[work];
    const temp = new ArrayBuffer(rows * width * wb); // temp[i * width + (j - j0)] = input[i, j]
    await this.fill(
      kid,
      work,
      Array.from({ length: rows }, (_, i) => ({ start: i * cols + j0, count: width, dst: i * width })),
      temp,
    );
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
