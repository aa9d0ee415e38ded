// Casts between the float dtypes the converter handles (F32, F16, BF16) on raw little-endian words in
// ArrayBuffers, on this thread or on worker threads. Invariants: every narrowing is one correct
// round-to-nearest-even (half.ts does the rounding; F16 <-> BF16 goes through an exact widening first), widening
// is exact, and a same-dtype cast is a byte copy that keeps every bit (NaN payloads included); a cast on a worker
// gives the same bits as on this thread (both run one kernel, from one source text). Offsets are in bytes and
// must be aligned to the element size.

import { Worker } from "node:worker_threads";
import { bf16ToF16, bf16ToF32, f16ToBf16, f16ToF32, f32ToBf16, f32ToF16 } from "./half.ts";

export type FloatDtype = "F32" | "F16" | "BF16";

export const FLOAT_BYTES: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

export const isConvertibleDtype = (d: string): d is FloatDtype => Object.hasOwn(FLOAT_BYTES, d);

export type Cast = (src: ArrayBufferLike, srcOffset: number, dst: ArrayBufferLike, dstOffset: number, n: number) => void;
type CastName = `${FloatDtype}>${FloatDtype}`;

const f32 = (b: ArrayBufferLike, o: number, n: number) => new Float32Array(b, o, n);
const u16 = (b: ArrayBufferLike, o: number, n: number) => new Uint16Array(b, o, n);

/**
 * A 16-bit -> 16-bit cast through a 65 536-entry table; aligned data goes two elements per 32-bit word, about 3x
 * faster than the rounding arithmetic (this loop is the whole cost of a BF16 -> F16 conversion), and four words a
 * turn, so their independent lookups overlap (another ~25%, measured). Every word is read before it is written,
 * so src and dst may be the same buffer. Kept as source text so cast workers compile exactly the code this
 * thread runs.
 */
const TABLE_KERNEL = `(table, s, so, d, dO, n) => {
  let done = 0;
  if (so % 4 === 0 && dO % 4 === 0) {
    const from = new Uint32Array(s, so, n >> 1);
    const to = new Uint32Array(d, dO, n >> 1);
    const pair = (x) => table[x & 0xffff] | (table[x >>> 16] << 16);
    const words = from.length;
    let i = 0;
    for (const end = words & ~3; i < end; i += 4) {
      const a = from[i], b = from[i + 1], c = from[i + 2], e = from[i + 3];
      to[i] = pair(a);
      to[i + 1] = pair(b);
      to[i + 2] = pair(c);
      to[i + 3] = pair(e);
    }
    for (; i < words; i++) to[i] = pair(from[i]);
    done = words * 2;
  }
  const from = new Uint16Array(s, so, n);
  const to = new Uint16Array(d, dO, n);
  for (let i = done; i < n; i++) to[i] = table[from[i]];
}`;
type TableKernel = (table: Uint16Array, ...args: Parameters<Cast>) => void;
const tableKernel = new Function(`return ${TABLE_KERNEL}`)() as TableKernel;

/** Tables built from half.ts's own array casts, so results are identical to them bit for bit (NaNs included). */
const TABLE_SOURCES: Partial<Record<CastName, (src: Uint16Array) => Uint16Array>> = { "F16>BF16": f16ToBf16, "BF16>F16": bf16ToF16 };
const tables = new Map<CastName, Uint16Array>();
const tableOf = (name: CastName): Uint16Array | undefined => {
  const convert = TABLE_SOURCES[name];
  if (convert && !tables.has(name)) tables.set(name, convert(Uint16Array.from({ length: 65536 }, (_, i) => i)));
  return tables.get(name);
};

/** The 65536-entry table of a 16-bit -> 16-bit cast (BF16 <-> F16), or undefined for other casts. */
export const castTable = (from: FloatDtype, to: FloatDtype): Uint16Array | undefined => tableOf(`${from}>${to}`);

const tableCast =
  (name: CastName): Cast =>
  (s, so, d, dO, n) =>
    tableKernel(tableOf(name)!, s, so, d, dO, n);

const CASTS: Readonly<Record<CastName, Cast>> = {
  "F32>F32": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 4).set(new Uint8Array(s, so, n * 4)),
  "F16>F16": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 2).set(new Uint8Array(s, so, n * 2)),
  "BF16>BF16": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 2).set(new Uint8Array(s, so, n * 2)),
  "F32>F16": (s, so, d, dO, n) => f32ToF16(f32(s, so, n), u16(d, dO, n)),
  "F32>BF16": (s, so, d, dO, n) => f32ToBf16(f32(s, so, n), u16(d, dO, n)),
  "F16>F32": (s, so, d, dO, n) => f16ToF32(u16(s, so, n), f32(d, dO, n)),
  "BF16>F32": (s, so, d, dO, n) => bf16ToF32(u16(s, so, n), f32(d, dO, n)),
  "F16>BF16": tableCast("F16>BF16"),
  "BF16>F16": tableCast("BF16>F16"),
};

/** The cast from `from` to `to`, to look up once and call per row in loops. */
export const floatCast = (from: FloatDtype, to: FloatDtype): Cast => CASTS[`${from}>${to}`];

/** Converts `n` elements of dtype `from` at `src[srcOffset..]` into dtype `to` at `dst[dstOffset..]`. */
export function castFloats(
  from: FloatDtype,
  to: FloatDtype,
  src: ArrayBufferLike,
  srcOffset: number,
  dst: ArrayBufferLike,
  dstOffset: number,
  n: number,
): void {
  if (n > 0) CASTS[`${from}>${to}`](src, srcOffset, dst, dstOffset, n);
}

/** Whether CastWorkers run this cast (the table casts: the only ones that cost more than the I/O around them). */
export const castsOnWorkers = (from: FloatDtype, to: FloatDtype): boolean => `${from}>${to}` in TABLE_SOURCES;

export class CastWorkerError extends Error {
  override name = "CastWorkerError";
}

/** Worker side: compile the kernel, then cast whatever comes, in place in the shared buffers. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const kernel = new Function("return " + workerData.kernel)();
parentPort.on("message", ({ id, table, s, so, d, dO, n }) => {
  kernel(workerData.tables[table], s, so, d, dO, n);
  parentPort.postMessage(id);
});`;

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Table casts on worker threads, so casting overlaps the main thread's I/O bookkeeping and uses a second core.
 * Buffers must be SharedArrayBuffers (nothing is copied or transferred). Each job goes to the worker with the
 * fewest jobs queued. A worker that dies fails its queued jobs and every later one. Call close() when done: open
 * workers keep the process alive.
 */
export class CastWorkers {
  readonly #workers: { worker: Worker; queued: Map<number, Pending> }[];
  #nextId = 0;
  #failure: Error | undefined;

  constructor(count: number) {
    const workerData = { kernel: TABLE_KERNEL, tables: Object.fromEntries(Object.keys(TABLE_SOURCES).map((k) => [k, tableOf(k as CastName)])) };
    this.#workers = Array.from({ length: count }, () => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      const queued = new Map<number, Pending>();
      const fail = (e: unknown) => {
        this.#failure ??= new CastWorkerError(`cast worker failed: ${e instanceof Error ? e.message : String(e)}`);
        for (const p of queued.values()) p.reject(this.#failure);
        queued.clear();
      };
      worker.on("message", (id: number) => {
        queued.get(id)?.resolve();
        queued.delete(id);
      });
      worker.on("error", fail);
      worker.on("exit", (code) => fail(new Error(`exited with code ${code}`)));
      return { worker, queued };
    });
  }

  /** Like castFloats, on a worker, for casts where castsOnWorkers() holds. */
  cast(from: FloatDtype, to: FloatDtype, src: SharedArrayBuffer, srcOffset: number, dst: SharedArrayBuffer, dstOffset: number, n: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const table = `${from}>${to}`;
    if (!(table in TABLE_SOURCES)) return Promise.reject(new CastWorkerError(`cast ${table} does not run on workers`));
    const w = this.#workers.reduce((a, b) => (b.queued.size < a.queued.size ? b : a));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      w.queued.set(id, { resolve, reject });
      w.worker.postMessage({ id, table, s: src, so: srcOffset, d: dst, dO: dstOffset, n });
    });
  }

  /** Stops every worker; jobs still queued fail. */
  async close(): Promise<void> {
    await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
  }
}
