// The streaming checkpoint converter: evaluates per-file plans of {name, dtype, expr} against a source checkpoint
// and writes one safetensors file per plan. Invariants: every plan is validated (shapes, dtypes, names) before
// any byte is written, and all problems are reported in one ConvertError; each output tensor is produced in
// blocks of at most `blockBytes`, so peak memory is a few blocks whatever the model or tensor size; files are
// written to temp names and renamed only after every file is complete, and on any failure nothing is left
// behind (no temp files, no finished-looking outputs of this call). Casts round to nearest even.

import { type FileHandle, mkdir, open, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Checkpoint } from "./checkpoint.ts";
import { castFloats, FLOAT_BYTES, isConvertibleDtype, type FloatDtype } from "./float-cast.ts";
import { shapeTree, type ShapedExpr } from "./expr-pieces.ts";
import { ExprReader, type SourceSlot } from "./expr-reader.ts";
import { SafetensorsWriter } from "./safetensors.ts";
import { exprSources, type WeightExpr } from "./weight-map.ts";

export class ConvertError extends Error {
  override name = "ConvertError";
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
  }
}

export interface RankFilePlan {
  /** File name inside outDir, e.g. rank0.safetensors. */
  file: string;
  tensors: { name: string; dtype: FloatDtype; expr: WeightExpr }[];
  metadata?: Record<string, string>;
}

export interface ConvertOptions {
  /** Called after each block with output bytes so far, the total, and the tensor being written. */
  onProgress?: (bytesDone: number, bytesTotal: number, tensor: string) => void;
  /** Largest block of one output tensor held in memory at once (default 16 MiB). */
  blockBytes?: number;
}

const DEFAULT_BLOCK_BYTES = 16 << 20;
/** Output blocks in flight: one being filled while the previous one is written. */
const WRITE_SLOTS = Number(process.env.KILN_SLOTS ?? 4);

interface PlannedTensor {
  name: string;
  dtype: FloatDtype;
  /** dtype the expression is evaluated in before the final cast (see expr-reader.ts). */
  work: FloatDtype;
  node: ShapedExpr;
  elements: number;
}

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
function planTensor(source: Checkpoint, t: RankFilePlan["tensors"][number]): PlannedTensor | string {
  if (!isConvertibleDtype(t.dtype)) return `dtype ${JSON.stringify(t.dtype)} is not F32, F16 or BF16`;
  let node: ShapedExpr;
  try {
    node = shapeTree(t.expr, (name) => source.info(name)?.shape);
  } catch (e) {
    return (e as Error).message;
  }
  const dtypes = new Set<string>();
  for (const name of exprSources(t.expr)) {
    const d = source.info(name)!.dtype;
    if (!isConvertibleDtype(d)) return `source tensor "${name}" is ${d}; only F32, F16 and BF16 sources can be converted`;
    dtypes.add(d);
  }
  // One source dtype: move its bits untouched and cast once at the end. Mixed: widen everything to F32.
  const work = dtypes.size === 0 ? t.dtype : dtypes.size === 1 ? ([...dtypes][0] as FloatDtype) : "F32";
  return { name: t.name, dtype: t.dtype, work, node, elements: numel(node.shape) };
}

/** Checks every plan against the checkpoint; throws one ConvertError listing every problem. */
function validatePlans(source: Checkpoint, plans: readonly RankFilePlan[]): PlannedFile[] {
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
          slots.set(name, { name, path: info.file, fd, byteOffset: info.byteOffset, dtype: info.dtype as FloatDtype });
        }
  } catch (e) {
    await close();
    throw e;
  }
  return { slots, close };
}

/** A fixed ring of output buffers; a buffer is reused only after its write has finished. */
class WriteSlots {
  readonly #buffers: ArrayBuffer[];
  readonly #busy: Promise<void>[];
  #next = 0;

  constructor(bytes: number) {
    this.#buffers = Array.from({ length: WRITE_SLOTS }, () => new ArrayBuffer(bytes));
    this.#busy = this.#buffers.map(() => Promise.resolve());
  }

  /** Waits until the next buffer is free; returns it and a function that hands it to a write. */
  async take(): Promise<{ buffer: ArrayBuffer; writing: (io: Promise<void>) => void }> {
    const i = this.#next;
    this.#next = (i + 1) % WRITE_SLOTS;
    await this.#busy[i];
    return {
      buffer: this.#buffers[i]!,
      writing: (io) => {
        io.catch(() => {}); // observed by take() or drain(); this stops an early failure counting as unhandled
        this.#busy[i] = io;
      },
    };
  }

  async drain(): Promise<void> {
    await Promise.all(this.#busy);
  }
}

/**
 * Writes every plan's file into `outDir`. Validates all plans first; then streams each tensor block by block
 * (positioned reads, casts, chunked writes). Files appear only once all of them are complete.
 */
export async function writeCheckpointFiles(
  source: Checkpoint,
  plans: readonly RankFilePlan[],
  outDir: string,
  opts: ConvertOptions = {},
): Promise<{ bytesWritten: number; tensors: number }> {
  const blockBytes = opts.blockBytes ?? DEFAULT_BLOCK_BYTES;
  if (!Number.isSafeInteger(blockBytes) || blockBytes < 4) throw new ConvertError(`blockBytes must be an integer >= 4, got ${blockBytes}`);
  const files = validatePlans(source, plans);
  const all = files.flatMap((f) => f.tensors);
  const bytesTotal = all.reduce((a, t) => a + t.elements * FLOAT_BYTES[t.dtype], 0);
  await mkdir(outDir, { recursive: true });

  const sources = await openSources(source, files);
  const reader = new ExprReader(sources.slots, blockBytes);
  const slots = new WriteSlots(blockBytes);
  let work: ArrayBuffer | undefined; // evaluation buffer for tensors whose work dtype differs from their output
  const writers: SafetensorsWriter[] = [];
  const renamed: string[] = [];
  let bytesDone = 0;
  try {
    for (const f of files) {
      const writer = await SafetensorsWriter.create(
        join(outDir, f.file),
        f.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.node.shape] })),
        f.metadata,
      );
      writers.push(writer);
      for (const t of f.tensors) {
        const ob = FLOAT_BYTES[t.dtype];
        const perBlock = Math.max(1, Math.floor(blockBytes / Math.max(ob, FLOAT_BYTES[t.work])));
        for (let start = 0; start < t.elements; start += perBlock) {
          const count = Math.min(perBlock, t.elements - start);
          const slot = await slots.take();
          if (t.work === t.dtype) reader.fill(t.node, t.work, [{ start, count, dst: 0 }], slot.buffer);
          else {
            work ??= new ArrayBuffer(blockBytes);
            reader.fill(t.node, t.work, [{ start, count, dst: 0 }], work);
            castFloats(t.work, t.dtype, work, 0, slot.buffer, 0, count);
          }
          slot.writing(writer.write(t.name, new Uint8Array(slot.buffer, 0, count * ob)));
          bytesDone += count * ob;
          opts.onProgress?.(bytesDone, bytesTotal, t.name);
        }
      }
      await slots.drain();
    }
    for (const w of writers) {
      await w.finish();
      renamed.push(w.path);
    }
  } catch (e) {
    await slots.drain().catch(() => {});
    await Promise.all(writers.map((w) => w.abort()));
    await Promise.all(renamed.map((p) => rm(p, { force: true })));
    throw e;
  } finally {
    await sources.close();
  }
  return { bytesWritten: bytesDone, tensors: all.length };
}
