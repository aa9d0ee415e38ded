// A Hugging Face checkpoint directory seen as one tensor source: either `model.safetensors`, or the shards named
// by `model.safetensors.index.json` ({"metadata": ..., "weight_map": {tensor: shard file}}); the index wins when
// both exist. Invariants: every shard is opened and validated up front and stays open until close(); every
// tensor the index names exists in its shard; shard names cannot point outside the directory. Tensors a shard
// holds but the index does not name are ignored, as transformers does.

import { stat, readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { SafetensorsFile, type TensorInfo } from "./safetensors.ts";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the safetensors file holding the tensor. */
  file: string;
  /** An F8_E4M3 weight of a pre-quantized checkpoint: the converter reads it as e4m3(code) * dequantScale. */
  dequantScale?: number;
}

const SINGLE_FILE = "model.safetensors";
const INDEX_FILE = "model.safetensors.index.json";

interface Entry {
  file: SafetensorsFile;
  info: CheckpointTensorInfo;
}

export class Checkpoint {
  readonly dir: string;
  /** Paths of the safetensors files, in first-use order. */
  readonly files: readonly string[];
  readonly #shards: readonly SafetensorsFile[];
  readonly #entries: Map<string, Entry>;

  /** @internal Use openCheckpoint(). */
  constructor(dir: string, shards: readonly SafetensorsFile[], entries: Map<string, Entry>) {
    this.dir = dir;
    this.#shards = shards;
    this.files = shards.map((s) => s.path);
    this.#entries = entries;
  }

  /** Tensor names: header order for one file, weight_map order for a sharded checkpoint. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  info(name: string): CheckpointTensorInfo | undefined {
    return this.#entries.get(name)?.info;
  }

  async readBytes(name: string, start?: number, length?: number): Promise<Uint8Array> {
    return this.#file(name).readBytes(name, start, length);
  }

  async readF32(name: string): Promise<Float32Array> {
    return this.#file(name).readF32(name);
  }

  readF32Sync(name: string): Float32Array {
    return this.#file(name).readF32Sync(name);
  }

  async readI32(name: string): Promise<Int32Array> {
    return this.#file(name).readI32(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.#shards.map((s) => s.close()));
  }

  /**
   * This checkpoint with some tensors served from `overlay` instead (same names; shapes may not change, dtypes may):
   * how `kiln compile --lora-merge` hands merged weights to the converter without rewriting the checkpoint. The
   * result owns the overlay file and shares this checkpoint's files: close one of the two (closing is idempotent).
   */
  withOverlay(overlay: SafetensorsFile): Checkpoint {
    const entries = new Map(this.#entries);
    for (const info of overlay.tensors()) {
      const base = entries.get(info.name)?.info;
      if (!base) throw new CheckpointError(`${overlay.path}: overlay tensor "${info.name}" is not in the checkpoint ${this.dir}`);
      if (base.shape.join() !== info.shape.join())
        throw new CheckpointError(`${overlay.path}: overlay tensor "${info.name}" is [${info.shape}], the checkpoint's is [${base.shape}]`);
      entries.set(info.name, { file: overlay, info: { ...info, file: overlay.path } });
    }
    return new Checkpoint(this.dir, [...this.#shards, overlay], entries);
  }

  /** This checkpoint with per-tensor FP8 scales attached to its F8_E4M3 weights (dequant-source.ts); shares files. */
  withDequantScales(scales: ReadonlyMap<string, number>): Checkpoint {
    const entries = new Map(this.#entries);
    for (const [name, scale] of scales) {
      const e = entries.get(name);
      if (!e || e.info.dtype !== "F8_E4M3") throw new CheckpointError(`${this.dir}: "${name}" is not an F8_E4M3 tensor of the checkpoint`);
      entries.set(name, { file: e.file, info: { ...e.info, dequantScale: scale } });
    }
    return new Checkpoint(this.dir, this.#shards, entries);
  }

  #file(name: string): SafetensorsFile {
    const entry = this.#entries.get(name);
    if (!entry) throw new CheckpointError(`${this.dir}: checkpoint has no tensor "${name}"`);
    return entry.file;
  }
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Opens files in parallel; if any fails, closes those that opened and rethrows. */
async function openAll(paths: readonly string[]): Promise<SafetensorsFile[]> {
  const results = await Promise.allSettled(paths.map((p) => SafetensorsFile.open(p)));
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<SafetensorsFile>).value);
  await Promise.all(results.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)));
  throw failed.reason;
}

/** weight_map of an index file, validated: tensor -> shard file name inside the directory. */
function parseIndex(indexPath: string, text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new CheckpointError(`${indexPath}: missing "weight_map" object`);
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== "string" || file === "") throw new CheckpointError(`${indexPath}: tensor "${tensor}" maps to ${JSON.stringify(file)}, not a file name`);
    if (isAbsolute(file) || file.split(/[\\/]/).includes("..")) {
      throw new CheckpointError(`${indexPath}: tensor "${tensor}" maps to "${file}", outside the checkpoint directory`);
    }
    weightMap.set(tensor, file);
  }
  return weightMap;
}

async function openSharded(dir: string, indexPath: string): Promise<Checkpoint> {
  const weightMap = parseIndex(indexPath, await readFile(indexPath, "utf8"));
  const shardNames = [...new Set(weightMap.values())];
  for (const shard of shardNames) {
    if (!(await exists(join(dir, shard)))) throw new CheckpointError(`${indexPath}: weight_map names shard "${shard}", which does not exist`);
  }
  const shards = await openAll(shardNames.map((s) => join(dir, s)));
  const byName = new Map(shardNames.map((s, i) => [s, shards[i]!]));
  const entries = new Map<string, Entry>();
  for (const [tensor, shard] of weightMap) {
    const file = byName.get(shard)!;
    const info = file.info(tensor);
    if (!info) {
      await Promise.all(shards.map((s) => s.close()));
      throw new CheckpointError(`${indexPath}: tensor "${tensor}" is mapped to "${shard}", which has no such tensor`);
    }
    entries.set(tensor, { file, info: { ...info, file: file.path } });
  }
  return new Checkpoint(dir, shards, entries);
}

async function openSingle(dir: string, path: string): Promise<Checkpoint> {
  const file = await SafetensorsFile.open(path);
  const entries = new Map(file.tensors().map((info): [string, Entry] => [info.name, { file, info: { ...info, file: path } }]));
  return new Checkpoint(dir, [file], entries);
}

export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat) throw new CheckpointError(`${dir}: checkpoint directory does not exist`);
  if (!dirStat.isDirectory()) throw new CheckpointError(`${dir}: not a directory`);
  const indexPath = join(dir, INDEX_FILE);
  if (await exists(indexPath)) return openSharded(dir, indexPath);
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) return openSingle(dir, single);
  throw new CheckpointError(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} found`);
}
