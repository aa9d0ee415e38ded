// The streaming checkpoint converter: evaluates per-file plans of {name, dtype, expr} against a source checkpoint
// and writes one safetensors file per plan. Invariants: every plan is validated (shapes, dtypes, names) before
// any byte is written, and all problems are reported in one ConvertError; each output tensor is produced in
// blocks of at most `blockBytes`, at most BLOCKS_IN_FLIGHT at once, so peak memory is a few MiB whatever the model
// or tensor size; each file's blocks are written in order; files are written to temp names and renamed only
// after every file is complete, and on any failure nothing is left behind (no temp files, no finished-looking
// outputs of this call). Casts round to nearest even.
// Throughput: a tensor that is a plain copy of source bytes (same dtype, no transpose; copy-plan.ts), or one but
// for a BF16 <-> F16 cast, is moved by the native helper (native/, copy-ranges.ts) when it is built: each output
// file is preallocated, and blocks of such tensors (16 MiB, holding no JS memory) are read by the helper straight
// into a mapping of the destination and cast there if need be (where a file system cannot preallocate: kernel
// copies, with the header padded so copied tensors keep their source page offsets, copy-plan.ts, and a small
// buffer for the rest). Every other tensor, and every tensor without the helper, goes through memory: reads and
// writes run on libuv's thread pool, so on 2 cores the copy out of the page cache (reads into a block) runs beside
// the copy into it (writes out of an earlier block); BF16 <-> F16 casts run on a worker thread; the main thread
// only plans blocks and hands buffers around. Blocks go round-robin over files, so every file's writer stays busy.
// Quantized tensors (fp8-plan.ts): an F8_E4M3 tensor is evaluated like any other, as F32, then encoded with its
// scale group's scale; those scales come from a first pass that streams every F8_E4M3 tensor once for its maximum
// (so FP8 weights are read twice, memory still bounded by one block); scale tensors and calibrated literals are
// F32 vectors written from memory.

import { type FileHandle, mkdir, open, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Checkpoint } from "./checkpoint.ts";
import { castFloats, castsOnWorkers, castTable, CastWorkers, FLOAT_BYTES, isConvertibleDtype, type FloatDtype } from "./float-cast.ts";
import {
  encodeFp8Block,
  f32Bytes,
  GroupAmax,
  isBytesTensor,
  isConstTensor,
  isFp8Tensor,
  isScaleTensor,
  type QuantPlanTensor,
  quantTensorProblems,
} from "./fp8-plan.ts";
import { shapeTree, type ShapedExpr } from "./expr-pieces.ts";
import { ExprReader, SourceReadError, type SourceSlot } from "./expr-reader.ts";
import { DATA_ALIGN, SafetensorsWriter } from "./safetensors.ts";
import { bestDataResidue, blockRanges, isPlainCopy, type PlacedCopy } from "./copy-plan.ts";
import { rangeCopier, type RangeCopier, type RangeCopyError } from "./copy-ranges.ts";
import { dtypeBytes, type SafetensorsDtype } from "./dtypes.ts";
import { exprChildren, exprSources, type WeightExpr, zeros } from "./weight-map.ts";
import { castLosses, countNonFinite, NumericsTally } from "./numerics.ts";

export class ConvertError extends Error {
  override name = "ConvertError";
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
  }
}

/** A tensor evaluated from the source checkpoint and written in a float dtype. */
export interface FloatPlanTensor {
  name: string;
  dtype: FloatDtype;
  expr: WeightExpr;
}

export type PlanTensor = FloatPlanTensor | QuantPlanTensor;

/** One output file. Float tensors only unless T says otherwise (quantized plans: RankFilePlan<PlanTensor>). */
export interface RankFilePlan<T extends PlanTensor = FloatPlanTensor> {
  /** File name inside outDir, e.g. rank0.safetensors. */
  file: string;
  tensors: T[];
  metadata?: Record<string, string>;
}

export interface ConvertOptions {
  /** Called as each block is queued, with output bytes queued so far, the total, and the tensor being written. */
  onProgress?: (bytesDone: number, bytesTotal: number, tensor: string) => void;
  /** Largest block of one output tensor held in memory at once (default 512 KiB). */
  blockBytes?: number;
  /** false: move every tensor through memory even when the native helper is built (default: use it). */
  nativeHelper?: boolean;
  /** Block of a tensor the native helper moves (default 16 MiB; it holds no memory). */
  copyBlockBytes?: number;
  /** Write Inf/NaN weights (from the source or from overflowing casts) instead of failing (numerics.ts). */
  allowNonFinite?: boolean;
}

/**
 * Measured, not derived: on the 2-core benchmark VM (bench/run.ts, same-round ratios to cp), 512 KiB blocks were
 * the fastest; 384 KiB about as fast, 128-256 KiB up to 1.6x slower (more round trips), 768 KiB-2 MiB 1.3-3.7x
 * slower, with several times the kernel CPU time spent copying into the page cache.
 */
const DEFAULT_BLOCK_BYTES = 512 << 10;
/**
 * Block of a tensor the native helper moves: no memory is held for it, so it is as large as keeps the progress bar
 * moving and the thread-pool round trips few (one per block).
 */
const COPY_BLOCK_BYTES = 16 << 20;
/** Blocks held at once: being filled (reads on the thread pool), waiting for their write, or being written. */
const BLOCKS_IN_FLIGHT = 6;
/**
 * Writes of one file in flight at once. Writes to one file serialize on its inode lock; the second waits there
 * and starts the moment the first ends, so the writing thread never waits for the event loop to hand it the
 * next block (with one, it sat idle about a quarter of the time; three gained nothing; measured).
 */
const WRITES_PER_FILE = 2;
/**
 * Worker threads for BF16 <-> F16 casts, the one conversion where CPU work, not copying, sets the pace: on a
 * worker the cast runs beside the I/O threads instead of holding up the main thread's hand-offs (0.28x -> 0.45x
 * of cp on the 2-core benchmark VM; two or three workers were no faster there, with no core left to use).
 */
const CAST_WORKERS = 1;

interface PlannedTensor {
  name: string;
  /** dtype the block is cast to (F32 for an F8_E4M3 tensor, which is encoded after). */
  dtype: FloatDtype;
  /** dtype the expression is evaluated in before the final cast (see expr-reader.ts). */
  work: FloatDtype;
  node: ShapedExpr;
  elements: number;
  /** F8_E4M3: its scale group, and the group's scale once the first pass ran. */
  fp8?: { group: string; scale?: number; fixed?: boolean };
  /** Written from memory: literal F32 values, a group's scale (known after the first pass), or computed bytes. */
  literal?: { values?: readonly number[]; scaleOf?: string; bytes?: () => Promise<Uint8Array> };
  /** The file dtype of computed bytes (BytesPlanTensor), when it is not `dtype`. */
  stored?: SafetensorsDtype;
  /**
   * What the native helper can do with it when built: "copy", every byte is a source byte or zero (copy-plan.ts),
   * copied file to file by the helper; "cast", the same but in another 16-bit dtype, cast through a table on the
   * thread pool.
   */
  native?: "copy" | "cast";
}

/** The dtype a planned tensor has in the file, and its bytes per element there. */
const storedDtype = (t: PlannedTensor): SafetensorsDtype => t.stored ?? (t.fp8 ? "F8_E4M3" : t.dtype);
const storedBytes = (t: PlannedTensor) => dtypeBytes(storedDtype(t));

interface PlannedFile {
  file: string;
  metadata: Record<string, string> | undefined;
  tensors: PlannedTensor[];
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function checkFileName(file: unknown): string | undefined {
  if (typeof file !== "string" || file === "" || file === "." || file === ".." || basename(file) !== file || file.includes("\\")) {
    return `file name ${JSON.stringify(file)} must be a plain file name inside the output directory`;
  }
  return undefined;
}

/** Plans one tensor, or returns why it cannot be converted. */
function planTensor(source: Checkpoint, t: PlanTensor): PlannedTensor | string {
  if (isBytesTensor(t)) {
    const elements = numel(t.shape);
    return {
      name: t.name,
      dtype: "F32",
      work: "F32",
      node: shapeTree(zeros(t.shape), () => undefined),
      elements,
      literal: { bytes: t.bytes },
      stored: t.dtype,
    };
  }
  if (isScaleTensor(t) || isConstTensor(t)) {
    // Its expression is zeros of its shape, so it flows through the same planning as the rest.
    const n = isConstTensor(t) ? t.values.length : 1;
    return {
      name: t.name,
      dtype: "F32",
      work: "F32",
      node: shapeTree(zeros([n]), () => undefined),
      elements: n,
      literal: isConstTensor(t) ? { values: t.values } : { scaleOf: t.scaleOf },
    };
  }
  if (isFp8Tensor(t)) {
    const p = planTensor(source, { name: t.name, dtype: "F32", expr: t.expr });
    if (typeof p === "string") return p;
    const { native: _native, ...evaluated } = p; // encoded after evaluation: never copied or cast natively
    return { ...evaluated, fp8: { group: t.scaleGroup, ...(t.scale !== undefined && { scale: t.scale, fixed: true }) } };
  }
  if (!isConvertibleDtype(t.dtype)) return `dtype ${JSON.stringify(t.dtype)} is not F32, F16 or BF16`;
  let node: ShapedExpr;
  try {
    node = shapeTree(t.expr, (name) => source.info(name)?.shape);
  } catch (e) {
    return (e as Error).message;
  }
  const dtypes = new Set<string>();
  for (const name of exprSources(t.expr)) {
    const info = source.info(name)!;
    const d = info.dtype;
    // A pre-quantized FP8 weight with its scale (dequant-source.ts) is widened to F32 as it is read.
    if (!isConvertibleDtype(d) && !(d === "F8_E4M3" && info.dequantScale !== undefined))
      return `source tensor "${name}" is ${d}; only F32, F16 and BF16 sources can be converted`;
    dtypes.add(d);
  }
  // One source dtype: move its bits untouched and cast once at the end. Mixed, FP8, or arithmetic on the values
  // (offset): widen everything to F32, so the result is rounded once, to the output dtype.
  const work = dtypes.size === 0 ? t.dtype : dtypes.size === 1 && !hasOffset(t.expr) && !dtypes.has("F8_E4M3") ? ([...dtypes][0] as FloatDtype) : "F32";
  const elements = numel(node.shape);
  const plain = isPlainCopy(node, elements, work, (name) => source.info(name)!.dtype);
  const native = !plain ? undefined : work === t.dtype ? "copy" : castTable(work, t.dtype) ? "cast" : undefined;
  return { name: t.name, dtype: t.dtype, work, node, elements, ...(native && { native }) };
}

/** Checks every plan against the checkpoint; throws one ConvertError listing every problem. */
function validatePlans(source: Checkpoint, plans: readonly RankFilePlan<PlanTensor>[]): PlannedFile[] {
  const problems: string[] = [];
  const files = new Set<string>();
  const planned = plans.map((plan): PlannedFile => {
    const fileProblem = checkFileName(plan.file) ?? (files.has(plan.file) ? "file name appears in more than one plan" : undefined);
    if (fileProblem) problems.push(`${plan.file}: ${fileProblem}`);
    files.add(plan.file);
    const names = new Set<string>();
    const tensors: PlannedTensor[] = [];
    for (const t of plan.tensors) {
      const p = names.has(t.name) ? "tensor name appears twice in this file" : planTensor(source, t);
      names.add(t.name);
      if (typeof p === "string") problems.push(`${plan.file}: tensor "${t.name}": ${p}`);
      else tensors.push(p);
    }
    for (const q of quantTensorProblems(plan.tensors)) problems.push(`${plan.file}: ${q}`);
    return { file: plan.file, metadata: plan.metadata, tensors };
  });
  if (problems.length > 0) {
    throw new ConvertError(`${problems.length} problem${problems.length > 1 ? "s" : ""} in the conversion plan: ${problems.join("; ")}`, problems);
  }
  return planned;
}

/** Opens each source file once; returns tensor name -> slot for every source the plans read. */
async function openSources(source: Checkpoint, files: readonly PlannedFile[]) {
  const handles = new Map<string, FileHandle>();
  const slots = new Map<string, SourceSlot>();
  const close = () => Promise.all([...handles.values()].map((h) => h.close()));
  try {
    for (const f of files)
      for (const t of f.tensors)
        for (const name of exprSources(t.node.expr)) {
          if (slots.has(name)) continue;
          const info = source.info(name)!;
          if (!handles.has(info.file)) handles.set(info.file, await open(info.file, "r"));
          const fd = handles.get(info.file)!.fd;
          const fp8 = info.dtype === "F8_E4M3" && info.dequantScale !== undefined ? { scale: info.dequantScale } : {};
          slots.set(name, { name, path: info.file, fd, byteOffset: info.byteOffset, dtype: info.dtype as FloatDtype | "F8_E4M3", ...fp8 });
        }
  } catch (e) {
    await close();
    throw e;
  }
  return { slots, close };
}

/**
 * One block's buffers: its output, its evaluation buffer when a cast follows, and a reader with its own scratch.
 * Shared buffers when cast workers run, so a worker casts in place.
 */
interface Lane {
  out: ArrayBufferLike;
  work: ArrayBufferLike | undefined;
  reader: ExprReader;
}

/** Lanes handed out as they come free; after fail(), every wait rejects, so the producer stops. */
class LanePool {
  readonly #free: Lane[];
  readonly #waiting: { resolve: (l: Lane) => void; reject: (e: unknown) => void }[] = [];
  #failure: { error: unknown } | undefined;

  constructor(lanes: Lane[]) {
    this.#free = lanes;
  }

  take(): Promise<Lane> {
    if (this.#failure) return Promise.reject(this.#failure.error);
    const lane = this.#free.pop();
    return lane ? Promise.resolve(lane) : new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  give(lane: Lane): void {
    const w = this.#waiting.shift();
    if (w) w.resolve(lane);
    else this.#free.push(lane);
  }

  /** Throws the first failure, if any. */
  check(): void {
    if (this.#failure) throw this.#failure.error;
  }

  fail(error: unknown): void {
    this.#failure ??= { error };
    for (const w of this.#waiting.splice(0)) w.reject(this.#failure.error);
  }
}

/** Writes of one output file: issued in block order (SafetensorsWriter places chunks in call order). */
class WriteQueue {
  #issued: Promise<unknown> = Promise.resolve();
  readonly #inFlight: Promise<void>[] = [];

  constructor(readonly writer: SafetensorsWriter) {}

  /**
   * Starts the write `ready` gives (a writer call), after every earlier push was issued and while fewer than
   * WRITES_PER_FILE are in flight.
   */
  push(ready: Promise<(w: SafetensorsWriter) => Promise<void>>): Promise<void> {
    const gate = this.#inFlight.length === WRITES_PER_FILE ? this.#inFlight.shift() : undefined;
    // Wrapped, so `issued` settles when the write starts rather than when it ends.
    const issued = Promise.all([ready, this.#issued, gate]).then(([write]) => ({ io: write(this.writer) }));
    const done = issued.then((s) => s.io);
    this.#issued = issued;
    this.#inFlight.push(done);
    return done;
  }
}

interface BlockJob {
  file: number;
  t: PlannedTensor;
  start: number;
  count: number;
  /** Moved by the native helper (the tensor is a plain copy or cast and the helper is there). */
  viaHelper: boolean;
}

/** Block sizes: through memory, and moved by the native helper (undefined: no helper). */
interface BlockSizes {
  memory: number;
  helper: number | undefined;
}

function* fileBlocks(f: PlannedFile, file: number, sizes: BlockSizes): Generator<BlockJob> {
  for (const t of f.tensors) {
    const viaHelper = sizes.helper !== undefined && t.native !== undefined;
    const bytes = viaHelper ? sizes.helper! : sizes.memory;
    const perBlock = t.literal ? t.elements : Math.max(1, Math.floor(bytes / Math.max(FLOAT_BYTES[t.dtype], FLOAT_BYTES[t.work])));
    for (let start = 0; start < t.elements; start += perBlock) yield { file, t, start, count: Math.min(perBlock, t.elements - start), viaHelper };
  }
}

/**
 * Every block of every file, round-robin over files, each file's blocks in file order. Rank files list the
 * same tensors in the same order, so both writers stay busy (writes to one file serialize on its inode lock),
 * and rank r + 1 reads its share of a sliced weight right after rank r read the rows around it (still cached).
 */
function* roundRobin(files: readonly PlannedFile[], sizes: BlockSizes): Generator<BlockJob> {
  let streams = files.map((f, i) => fileBlocks(f, i, sizes));
  while (streams.length > 0) {
    const next = streams.map((s) => s.next());
    for (const n of next) if (!n.done) yield n.value;
    streams = streams.filter((_, i) => !next[i]!.done);
  }
}

/**
 * Evaluates a block into its lane and returns the output bytes. A cast between dtypes of one size (BF16 <-> F16)
 * runs in place in the output buffer: each word is read before it is written.
 */
async function fillBlock(lane: Lane, { t, start, count }: BlockJob, workers: CastWorkers | undefined, tally: NumericsTally): Promise<Uint8Array> {
  if (t.literal?.bytes) {
    const bytes = await t.literal.bytes();
    if (bytes.length !== count * storedBytes(t))
      throw new ConvertError(`tensor "${t.name}": computed ${bytes.length} bytes, expected ${count * storedBytes(t)}`);
    return bytes;
  }
  if (t.literal) return f32Bytes(t.literal.values!);
  const segments = [{ start, count, dst: 0 }];
  const inPlace = FLOAT_BYTES[t.work] === FLOAT_BYTES[t.dtype];
  const work = inPlace ? lane.out : (lane.work ??= newBuffer(lane.out.byteLength, workers));
  await lane.reader.fill(t.node, t.work, segments, work);
  // Numerics guard (numerics.ts), on the block while it is in memory: Inf/NaN in the source, and what a cast lost.
  const tableCast = t.work !== t.dtype && inPlace; // BF16 <-> F16 in place: count the source before it is overwritten
  const sourceNonFinite = tableCast && !t.fp8 ? countNonFinite(work, 0, count, t.work) : 0;
  if (t.work !== t.dtype) {
    const shared = (b: ArrayBufferLike) => b as SharedArrayBuffer; // newBuffer gives shared buffers whenever workers exist
    if (workers && castsOnWorkers(t.work, t.dtype)) await workers.cast(t.work, t.dtype, shared(work), 0, shared(lane.out), 0, count);
    else castFloats(t.work, t.dtype, work, 0, lane.out, 0, count);
  }
  if (!t.fp8) {
    const nonFinite = countNonFinite(lane.out, 0, count, t.dtype);
    const losses =
      t.work === t.dtype
        ? undefined
        : tableCast
          ? { overflow: Math.max(0, nonFinite - sourceNonFinite) }
          : castLosses(work, 0, t.work, lane.out, 0, t.dtype, count);
    tally.add(t.name, { nonFinite, ...losses }, { from: t.work, to: t.dtype });
  }
  // In place: code i lands on byte i, which belongs to a float already read.
  if (t.fp8) return encodeFp8Block(new Float32Array(lane.out, 0, count), t.fp8.scale!, new Uint8Array(lane.out, 0, count));
  return new Uint8Array(lane.out, 0, count * FLOAT_BYTES[t.dtype]);
}

/**
 * Runs a block through the native helper; a failure names the files and tensors involved, as the read/write path
 * does (a source that ends early: the source file and tensor; anything else: the output tensor and its source).
 */
async function nativeMove(
  copier: RangeCopier,
  w: SafetensorsWriter,
  name: string,
  fd: number,
  at: number,
  block: ReturnType<typeof blockRanges>,
  table: Uint16Array | undefined,
  t: PlannedTensor,
  tally: NumericsTally,
): Promise<void> {
  try {
    // The helper counts Inf/NaN in C on the bytes it moves (native/copy_ranges.c), as they land in dtype t.dtype.
    const nonFinite = await copier.copy(fd, at, block.ranges, { ...(table && { table }), map: w.preallocated, scan: t.dtype });
    tally.add(name, { nonFinite }, { from: t.work, to: t.dtype, ...(table && { table: true }) });
  } catch (e) {
    const err = e as RangeCopyError;
    const src = block.sources[err.range];
    if (err.code === "EOF" && src) throw new SourceReadError(`${src.path}: tensor "${src.name}": ${err.message}`);
    throw new ConvertError(
      `${w.path}: tensor "${name}": ${src ? `copying from ${src.path} (tensor "${src.name}")` : "writing zeros"}: ${err.message} (${err.code})`,
    );
  }
}

/** The file's plain-copy tensors and their offsets in its data section (tensors are laid out in plan order). */
function placedCopies(f: PlannedFile): PlacedCopy[] {
  let at = 0;
  const copies: PlacedCopy[] = [];
  for (const t of f.tensors) {
    if (t.native === "copy") copies.push({ node: t.node, elements: t.elements, dtype: t.dtype, at });
    at += t.elements * storedBytes(t);
  }
  return copies;
}

const hasOffset = (e: WeightExpr): boolean => !("source" in e) && (e.op === "offset" || exprChildren(e).some(hasOffset));

const newBuffer = (bytes: number, workers: CastWorkers | undefined): ArrayBufferLike => (workers ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));

/**
 * Streams every file's blocks through the lanes and write queues; on failure, removes every output and temp
 * file of this call before rethrowing. Returns the bytes written.
 */
async function streamFiles(
  files: readonly PlannedFile[],
  outDir: string,
  slots: ReadonlyMap<string, SourceSlot>,
  workers: CastWorkers | undefined,
  blockBytes: number,
  opts: ConvertOptions,
  copier: RangeCopier | undefined,
  tally: NumericsTally,
): Promise<number> {
  const bytesTotal = files.reduce((a, f) => a + f.tensors.reduce((b, t) => b + t.elements * storedBytes(t), 0), 0);
  const newLane = (): Lane => ({ out: newBuffer(blockBytes, workers), work: undefined, reader: new ExprReader(slots, blockBytes) });
  const lanes = new LanePool(Array.from({ length: BLOCKS_IN_FLIGHT }, newLane));
  const writers: SafetensorsWriter[] = [];
  const renamed: string[] = [];
  const blocks = new Set<Promise<void>>(); // one per lane in use; each settles once its lane is idle again
  let bytesDone = 0;
  try {
    for (const f of files) {
      const shapes = f.tensors.map((t) => ({ name: t.name, dtype: storedDtype(t), shape: [...t.node.shape] }));
      const residue = bestDataResidue(placedCopies(f), slots, DATA_ALIGN);
      const writerOpts = {
        ...(residue !== undefined && { dataOffsetResidue: residue }),
        ...(copier && { preallocate: (fd: number, size: number) => copier.preallocate(fd, size) }),
      };
      writers.push(await SafetensorsWriter.create(join(outDir, f.file), shapes, f.metadata, writerOpts));
    }
    const queues = writers.map((w) => new WriteQueue(w));
    const sizes = { memory: blockBytes, helper: copier && (opts.copyBlockBytes ?? COPY_BLOCK_BYTES) };
    for (const job of roundRobin(files, sizes)) {
      // A block the helper moves holds no buffer; its lane only bounds the blocks in flight.
      const lane = await lanes.take();
      const { name, dtype, work, node } = job.t;
      const table = job.t.native === "cast" ? castTable(work, dtype) : undefined;
      const filled = job.viaHelper ? Promise.resolve(undefined) : fillBlock(lane, job, workers, tally);
      const write = job.viaHelper
        ? Promise.resolve((w: SafetensorsWriter) =>
            w.writeWith(name, job.count * FLOAT_BYTES[dtype], (fd, at) =>
              nativeMove(copier!, w, name, fd, at, blockRanges(node, job.start, job.count, work, slots), table, job.t, tally),
            ),
          )
        : filled.then((bytes) => (w: SafetensorsWriter) => w.write(name, bytes!));
      const written = queues[job.file]!.push(write);
      // A failed fill also fails its write; waiting for both means no read is still landing in the lane.
      const block = Promise.allSettled([filled, written]).then(([, w]) => (w.status === "fulfilled" ? lanes.give(lane) : lanes.fail(w.reason)));
      blocks.add(block);
      void block.then(() => blocks.delete(block));
      bytesDone += job.count * storedBytes(job.t);
      opts.onProgress?.(bytesDone, bytesTotal, job.t.name);
    }
    await Promise.all(blocks);
    lanes.check();
    tally.check(opts.allowNonFinite ?? false, outDir);
    for (const w of writers) {
      await w.finish();
      renamed.push(w.path);
    }
  } catch (e) {
    lanes.fail(e);
    await Promise.all(blocks);
    await Promise.all(writers.map((w) => w.abort()));
    await Promise.all(renamed.map((p) => rm(p, { force: true })));
    throw e;
  }
  return bytesDone;
}

/**
 * First pass over the F8_E4M3 tensors: each file's scale groups' maxima, then every FP8 tensor's scale and every
 * scale tensor's value filled in. One block at a time, evaluated as F32 like the second pass.
 */
async function resolveFp8Scales(files: readonly PlannedFile[], slots: ReadonlyMap<string, SourceSlot>, blockBytes: number): Promise<void> {
  const quantized = files.filter((f) => f.tensors.some((t) => t.fp8 && !t.fp8.fixed));
  if (!quantized.length) return;
  const reader = new ExprReader(slots, blockBytes);
  const work = new ArrayBuffer(blockBytes);
  const f32 = new ArrayBuffer(blockBytes);
  for (const f of quantized) {
    const amax = new GroupAmax();
    for (const t of f.tensors) {
      if (!t.fp8 || t.fp8.fixed) continue;
      const perBlock = Math.max(1, Math.floor(blockBytes / 4));
      for (let start = 0; start < t.elements; start += perBlock) {
        const count = Math.min(perBlock, t.elements - start);
        await reader.fill(t.node, t.work, [{ start, count, dst: 0 }], work);
        castFloats(t.work, "F32", work, 0, f32, 0, count);
        amax.add(t.fp8.group, new Float32Array(f32, 0, count), `${f.file}: ${t.name}`);
      }
    }
    const scales = amax.scales();
    for (const t of f.tensors) {
      if (t.fp8 && !t.fp8.fixed) t.fp8.scale = scales.get(t.fp8.group)!;
      if (t.literal?.scaleOf !== undefined) t.literal.values = [scales.get(t.literal.scaleOf)!];
    }
  }
}

/**
 * Writes every plan's file into `outDir`. Validates all plans first; then streams each tensor block by block
 * (positioned reads, casts, chunked writes). Files appear only once all of them are complete.
 */
export async function writeCheckpointFiles(
  source: Checkpoint,
  plans: readonly RankFilePlan<PlanTensor>[],
  outDir: string,
  opts: ConvertOptions = {},
): Promise<{
  bytesWritten: number;
  tensors: number;
  nativeCopiedBytes: number;
  nativeCastBytes: number;
  numerics: { nonFinite: string[]; underflow: string[] };
}> {
  const blockBytes = opts.blockBytes ?? DEFAULT_BLOCK_BYTES;
  for (const [key, v] of [
    ["blockBytes", blockBytes],
    ["copyBlockBytes", opts.copyBlockBytes ?? COPY_BLOCK_BYTES],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 4) throw new ConvertError(`${key} must be an integer >= 4, got ${v}`);
  }
  const files = validatePlans(source, plans);
  const all = files.flatMap((f) => f.tensors);
  await mkdir(outDir, { recursive: true });
  const sources = await openSources(source, files);
  try {
    const workers = all.some((t) => castsOnWorkers(t.work, t.dtype)) ? new CastWorkers(CAST_WORKERS) : undefined;
    try {
      await resolveFp8Scales(files, sources.slots, blockBytes);
      const copier = opts.nativeHelper === false ? undefined : rangeCopier();
      const nativeBytes = (kind: PlannedTensor["native"]) =>
        copier ? all.reduce((a, t) => a + (t.native === kind ? t.elements * FLOAT_BYTES[t.dtype] : 0), 0) : 0;
      const tally = new NumericsTally();
      const bytesWritten = await streamFiles(files, outDir, sources.slots, workers, blockBytes, opts, copier, tally);
      return {
        bytesWritten,
        tensors: all.length,
        nativeCopiedBytes: nativeBytes("copy"),
        nativeCastBytes: nativeBytes("cast"),
        numerics: { nonFinite: tally.problems(), underflow: tally.warnings() },
      };
    } finally {
      await workers?.close();
    }
  } finally {
    await sources.close();
  }
}
