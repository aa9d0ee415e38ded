// The numerics guard of weight conversion and loading: non-finite values (Inf, NaN) in weights are an error
// naming the tensor unless allowed (--allow-nonfinite), and a narrowing cast (F32 -> F16/BF16, BF16 -> F16) that
// turns finite values into Inf (overflow) or non-zero values into zero (underflow) is counted per tensor.
// Invariants: scans read the bytes already in memory (a block the converter just filled, counted in C by the native
// helper when it is built, else in JavaScript; the helper also counts in C the bytes it moves itself,
// native/copy_ranges.c); an exact count is taken only of blocks that hold a hit, so the common case is one pass of
// integer tests; never a second read of a tensor.

import { KilnError, capList } from "../io/kiln-error.ts";
import type { FloatDtype } from "./float-cast.ts";
import { nativeNonFiniteCounter } from "./copy-ranges.ts";

export class NumericsError extends KilnError {}

/** Exponent field of each float dtype: all ones means Inf or NaN. */
const EXP_MASK: Readonly<Record<FloatDtype, number>> = { F32: 0x7f800000, F16: 0x7c00, BF16: 0x7f80 };

/** Per dtype, for one 32-bit word shifted right by 1: the exponent mask of each lane, and each lane's lowest exponent
 *  bit. (w >>> 1 & mask) + low sets a lane's top bit (HIT) exactly when its exponent is all ones, and no lane carries
 *  into the next, so one OR per word finds any Inf/NaN; the shift keeps every value an int32 (no deopt to doubles). */
const FAST: Readonly<Record<FloatDtype, { mask: number; low: number; hit: number; perWord: number }>> = {
  F32: { mask: 0x3fc00000, low: 0x00400000, hit: 0x40000000, perWord: 1 },
  F16: { mask: 0x3e003e00, low: 0x02000200, hit: 0x40004000, perWord: 2 },
  BF16: { mask: 0x3fc03fc0, low: 0x00400040, hit: 0x40004000, perWord: 2 },
};

/** Inf and NaN among `count` floats of `dtype` at `byteOffset` of `buf` (little-endian, element-aligned). One
 *  branch-free pass when there are none (the common case); an exact count otherwise. */
export function countNonFinite(buf: ArrayBufferLike, byteOffset: number, count: number, dtype: FloatDtype): number {
  const native = nativeNonFiniteCounter();
  if (native) return native(new Uint8Array(buf, byteOffset, count * BYTES[dtype]), dtype);
  return countNonFiniteJs(buf, byteOffset, count, dtype);
}

const BYTES: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** countNonFinite without the native helper (exported for tests: both must agree). */
export function countNonFiniteJs(buf: ArrayBufferLike, byteOffset: number, count: number, dtype: FloatDtype): number {
  const f = FAST[dtype];
  let words = 0;
  if (byteOffset % 4 === 0) {
    words = Math.floor(count / f.perWord);
    const w = new Int32Array(buf, byteOffset, words);
    const { mask, low } = f;
    let acc = 0;
    for (let i = 0; i < words; i++) acc |= ((w[i]! >>> 1) & mask) + low;
    if ((acc & f.hit) !== 0) words = 0; // a hit: count everything exactly
  }
  return exactCount(buf, byteOffset, words * f.perWord, count, dtype);
}

function exactCount(buf: ArrayBufferLike, byteOffset: number, from: number, count: number, dtype: FloatDtype): number {
  const m = EXP_MASK[dtype];
  const w = dtype === "F32" ? new Int32Array(buf, byteOffset, count) : new Uint16Array(buf, byteOffset, count);
  let n = 0;
  for (let i = from; i < count; i++) if ((w[i]! & m) === m) n++;
  return n;
}

export interface CastLosses {
  /** Finite source values that became Inf. */
  overflow: number;
  /** Non-zero source values that became zero. */
  underflow: number;
}

/** Overflow and underflow of a finished cast of `count` floats (src in `from`, dst in `to`, both aligned). */
export function castLosses(
  src: ArrayBufferLike,
  srcOffset: number,
  from: FloatDtype,
  dst: ArrayBufferLike,
  dstOffset: number,
  to: FloatDtype,
  count: number,
): CastLosses {
  if (from === to || to === "F32" || from === "F16") return { overflow: 0, underflow: 0 }; // widening or exact
  const sm = EXP_MASK[from];
  const dm = EXP_MASK[to];
  const s = from === "F32" ? new Int32Array(src, srcOffset, count) : new Uint16Array(src, srcOffset, count);
  const sAbs = from === "F32" ? 0x7fffffff : 0x7fff;
  const d = new Uint16Array(dst, dstOffset, count);
  let overflow = 0;
  let underflow = 0;
  for (let i = 0; i < count; i++) {
    const y = d[i]!;
    if ((y & dm) === dm) {
      if ((s[i]! & sm) !== sm) overflow++;
    } else if ((y & 0x7fff) === 0 && (s[i]! & sAbs) !== 0) underflow++;
  }
  return { overflow, underflow };
}

interface TensorTally {
  nonFinite: number;
  overflow: number;
  underflow: number;
  /** The cast, when the tensor was cast ("BF16>F16"). */
  cast?: string;
  /** Counted by the native helper after a table cast: overflow and source Inf/NaN are not told apart. */
  afterTableCast?: boolean;
}

/** Counts per output tensor over a conversion, and the report or error at its end. */
export class NumericsTally {
  readonly #tensors = new Map<string, TensorTally>();

  #of(name: string): TensorTally {
    let t = this.#tensors.get(name);
    if (!t) this.#tensors.set(name, (t = { nonFinite: 0, overflow: 0, underflow: 0 }));
    return t;
  }

  add(name: string, counts: Partial<Omit<TensorTally, "cast" | "afterTableCast">>, cast?: { from: FloatDtype; to: FloatDtype; table?: boolean }): void {
    if (!counts.nonFinite && !counts.overflow && !counts.underflow) return;
    const t = this.#of(name);
    t.nonFinite += counts.nonFinite ?? 0;
    t.overflow += counts.overflow ?? 0;
    t.underflow += counts.underflow ?? 0;
    if (cast && cast.from !== cast.to) t.cast = `${cast.from} to ${cast.to}`;
    if (cast?.table) t.afterTableCast = true;
  }

  /** Tensors whose output holds Inf/NaN (from the source or from overflow): errors unless allowed. */
  problems(): string[] {
    return [...this.#tensors]
      .filter(([, t]) => t.nonFinite > 0)
      .map(([name, t]) => {
        const fromSource = t.nonFinite - t.overflow;
        const parts = [
          t.afterTableCast
            ? `${fmt(t.nonFinite)} non-finite value${s(t.nonFinite)} after the cast from ${t.cast} (Inf/NaN in the source, or values beyond the target range)`
            : fromSource > 0 && `${fmt(fromSource)} non-finite value${s(fromSource)} (Inf/NaN) in the source`,
          !t.afterTableCast &&
            t.overflow > 0 &&
            `${fmt(t.overflow)} value${s(t.overflow)} overflow${t.overflow === 1 ? "s" : ""} to Inf in the cast from ${t.cast}`,
        ].filter(Boolean);
        return `tensor "${name}": ${parts.join(", ")}`;
      });
  }

  /** Underflow counts, reported but not errors (the values become zero, which is finite). */
  warnings(): string[] {
    return [...this.#tensors]
      .filter(([, t]) => t.underflow > 0)
      .map(
        ([name, t]) =>
          `tensor "${name}": ${fmt(t.underflow)} non-zero value${s(t.underflow)} underflow${t.underflow === 1 ? "s" : ""} to zero in the cast from ${t.cast}`,
      );
  }

  /** Throws NumericsError listing the problems (capped), unless `allow`. */
  check(allow: boolean, where: string): void {
    const p = this.problems();
    if (p.length === 0 || allow) return;
    throw new NumericsError(
      `${where}: ${p.length} tensor${s(p.length)} would hold non-finite weights: ${capList(p, 8, "; ")}. Pass --allow-nonfinite to write them anyway`,
    );
  }
}

const fmt = (n: number) => n.toLocaleString("en-US");
const s = (n: number) => (n === 1 ? "" : "s");
