// Loads native/build/Release/kiln_gemm.node (native/gemm.c, built by `npm ci`): the interpreter's SIMD float32
// kernels. Invariants: optional like the copy helper; `nativeKernels()` is undefined when it is not built or
// KILN_NATIVE=0, and the fast kernels then take their JS paths, which compute the same values to float rounding.
// KILN_REQUIRE_NATIVE=1 (set by CI) turns a missing helper into an error, so the fast path cannot silently vanish.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface NativeKernels {
  /** out[r,o] = bias[o] + sum_i x[r,i] * w[o,i]. */
  linear(x: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, rows: number, inF: number, outF: number): void;
  /** out[t] = a[offA[t]] (m x k) @ b[offB[t]] (k x n) for each batch item t (offsets count whole matrices). */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batch: number, m: number, k: number, n: number, offA: Int32Array, offB: Int32Array): void;
  /** Grouped-query SDPA over [b, s, h, d] queries and [b, sk, kvh, d] keys/values; causal aligns the last rows. */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    b: number,
    s: number,
    h: number,
    kvh: number,
    sk: number,
    d: number,
    dv: number,
    scale: number,
    causal: boolean,
  ): void;
  /** Worker threads (KILN_THREADS, else the online cores). */
  threads(): number;
  /** The sum of x, read once on the worker threads: the bench's memory-bandwidth probe (bench/interp.ts). */
  sum(x: Float32Array): number;
  /** The instruction set the kernels dispatched to: avx512, avx2, sse or neon. */
  isa(): string;
}

const ADDON = fileURLToPath(new URL("../../../native/build/Release/kiln_gemm.node", import.meta.url));

let loaded: { kernels: NativeKernels | undefined } | undefined;

export function nativeKernels(): NativeKernels | undefined {
  if (!loaded) loaded = { kernels: load() };
  return loaded.kernels;
}

function load(): NativeKernels | undefined {
  if (process.env.KILN_NATIVE === "0") return undefined;
  if (!existsSync(ADDON)) {
    if (process.env.KILN_REQUIRE_NATIVE === "1")
      throw new Error(`${ADDON} is missing (KILN_REQUIRE_NATIVE=1); build it with \`node scripts/build-native.mjs\``);
    return undefined;
  }
  return createRequire(import.meta.url)(ADDON) as NativeKernels;
}
