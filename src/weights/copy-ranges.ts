// Byte-range copies between open files done natively, through native/ (kiln_native.node, built by `npm ci`; see
// native/copy_ranges.c for how bytes move and what each way measured). The converter uses it for blocks that are
// plain copies of source bytes (no transpose), and for BF16 <-> F16 casts of such blocks, which the helper casts
// on the thread pool with the JS casts' table: the source is read straight into a mapping of the preallocated
// destination (or copied by the kernel, or through a small buffer), instead of into JS memory and out again.
// Invariants: the helper is optional; `rangeCopier()` is undefined when it is not built or KILN_NATIVE=0, and
// callers then take the read/write path, which writes the same bytes. KILN_REQUIRE_NATIVE=1 (set by CI) turns
// a missing helper into an error, so the fast path cannot silently disappear there.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** [fdIn, srcPos, dstOffset, length] per range; fdIn = -1 writes zeros. Offsets are relative to dstBase. */
export type CopyRanges = Float64Array;

/** How the helper rejects: errno's name (or "EOF": a source ended early) and the index of the failing range. */
export interface RangeCopyError extends Error {
  code: string;
  range: number;
}

export interface CopyOptions {
  /** false: pread/pwrite only (the helper's fallback for file systems that refuse copy_file_range). */
  kernel?: boolean;
  /** Translate every 16-bit word through this 65536-entry table (a BF16 <-> F16 cast; float-cast.ts castTable). */
  table?: Uint16Array;
  /** fdOut was preallocated (below): read the sources straight into a shared mapping of the destination. */
  map?: boolean;
  /** Count Inf/NaN among the bytes written, read as this dtype; copy() resolves with the count (0 without). */
  scan?: "F16" | "BF16" | "F32";
}

const SCAN_KIND = { F16: 1, BF16: 2, F32: 3 } as const;

export interface RangeCopier {
  /** Resolves with the number of non-finite values found with `scan` (0 without). */
  copy(fdOut: number, dstBase: number, ranges: CopyRanges, opts?: CopyOptions): Promise<number>;
  /** Reserves a file's blocks and sets its size (fallocate); false where the file system cannot; throws ENOSPC. */
  preallocate(fd: number, size: number): boolean;
}

/** fdIn value that means "write zeros". */
export const ZERO_FD = -1;

const ADDON = fileURLToPath(new URL("../../native/build/Release/kiln_native.node", import.meta.url));

let loaded: { copier: RangeCopier | undefined } | undefined;

function load(): RangeCopier | undefined {
  if (process.env.KILN_NATIVE === "0") return undefined;
  if (!existsSync(ADDON)) {
    if (process.env.KILN_REQUIRE_NATIVE === "1")
      throw new Error(`${ADDON} is missing (KILN_REQUIRE_NATIVE=1); build it with \`node scripts/build-native.mjs\``);
    return undefined;
  }
  const addon = createRequire(import.meta.url)(ADDON) as {
    copyRanges: (
      fdOut: number,
      dstBase: number,
      ranges: CopyRanges,
      kernel: boolean,
      table: Uint16Array | null,
      map: boolean,
      scan: number,
    ) => Promise<number | undefined>;
    preallocate: (fd: number, size: number) => boolean;
  };
  return {
    // An addon built before `scan` existed ignores the 7th argument and resolves undefined: no count, so 0.
    // Malformed arguments still throw at once (not as a rejection).
    copy: (fdOut, dstBase, ranges, { kernel = true, table, map = false, scan } = {}) =>
      addon.copyRanges(fdOut, dstBase, ranges, kernel, table ?? null, map, scan ? SCAN_KIND[scan] : 0).then((n) => n ?? 0),
    preallocate: (fd, size) => addon.preallocate(fd, size),
  };
}

/** The kernel range copier, or undefined when the native helper is unavailable or disabled. */
export function rangeCopier(): RangeCopier | undefined {
  loaded ??= { copier: load() };
  return loaded.copier;
}

/** Inf/NaN among the bytes, read as `kind` floats, counted in C (native/copy_ranges.c countNonFinite). */
export type NativeNonFiniteCounter = (bytes: Uint8Array, kind: "F16" | "BF16" | "F32") => number;

let counter: { count: NativeNonFiniteCounter | undefined } | undefined;

/**
 * The helper's Inf/NaN counter, whenever the helper is built: it moves no bytes, so KILN_NATIVE=0 (which keeps every
 * byte on the read/write path) does not turn it off. Undefined without the helper, or with an older build.
 */
export function nativeNonFiniteCounter(): NativeNonFiniteCounter | undefined {
  if (!counter) {
    const addon = existsSync(ADDON) ? (createRequire(import.meta.url)(ADDON) as { countNonFinite?: (b: Uint8Array, k: number) => number }) : undefined;
    const f = addon?.countNonFinite;
    counter = { count: f && ((bytes, kind) => f(bytes, SCAN_KIND[kind])) };
  }
  return counter.count;
}
