// checkpoint.ts: the gpt2 fixture as a single-file checkpoint and split into two shards with an index, compared
// tensor by tensor with the original file; plus every error the opener reports.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CheckpointError, openCheckpoint } from "./checkpoint.ts";
import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";

const GPT2 = join(import.meta.dirname, "../../test/fixtures/hf/gpt2");
const SHARD1 = "model-00001-of-00002.safetensors";
const SHARD2 = "model-00002-of-00002.safetensors";
let root: string;
let sharded: string;
let original: SafetensorsFile;
let counter = 0;

/** Copies the given fixture tensors into a new safetensors file. */
async function copyTensors(path: string, names: readonly string[]): Promise<void> {
  const tensors = [];
  for (const name of names) {
    const info = original.info(name)!;
    tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await original.readBytes(name) });
  }
  await writeSafetensors(path, tensors, { format: "pt" });
}

async function newDir(files: Record<string, string> = {}): Promise<string> {
  const dir = join(root, `case-${counter++}`);
  await mkdir(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const index = (weightMap: Record<string, string>) => JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap });

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-checkpoint-"));
  original = await SafetensorsFile.open(join(GPT2, "model.safetensors"));
  const names = original.tensors().map((t) => t.name);
  const half = Math.ceil(names.length / 2);
  sharded = await newDir();
  await copyTensors(join(sharded, SHARD1), names.slice(0, half));
  // The second shard also holds a tensor the index does not name: it must be ignored.
  await copyTensors(join(sharded, SHARD2), [...names.slice(half), names[0]!].reverse());
  const weightMap = Object.fromEntries(names.map((n, i) => [n, i < half ? SHARD1 : SHARD2]));
  await writeFile(join(sharded, "model.safetensors.index.json"), index(weightMap));
});

afterAll(async () => {
  await original.close();
  await rm(root, { recursive: true, force: true });
});

describe("opening checkpoints", () => {
  test("single model.safetensors", async () => {
    const ckpt = await openCheckpoint(GPT2);
    expect(ckpt.files).toEqual([join(GPT2, "model.safetensors")]);
    expect(ckpt.names()).toEqual(original.tensors().map((t) => t.name));
    expect(ckpt.info("transformer.wpe.weight")).toMatchObject({ dtype: "F32", shape: [128, 64], file: join(GPT2, "model.safetensors") });
    expect(ckpt.info("nope")).toBeUndefined();
    expect(await ckpt.readF32("transformer.ln_f.weight")).toEqual(await original.readF32("transformer.ln_f.weight"));
    await ckpt.close();
  });

  test("sharded checkpoint reads every tensor identically to the unsplit file", async () => {
    const ckpt = await openCheckpoint(sharded);
    expect(ckpt.files).toEqual([join(sharded, SHARD1), join(sharded, SHARD2)]);
    const names = original.tensors().map((t) => t.name);
    expect(ckpt.names()).toEqual(names);
    expect(ckpt.info(names[0]!)!.file).toBe(join(sharded, SHARD1));
    expect(ckpt.info(names.at(-1)!)!.file).toBe(join(sharded, SHARD2));
    for (const name of names) {
      const info = ckpt.info(name)!;
      expect(info.shape).toEqual(original.info(name)!.shape);
      expect(await ckpt.readF32(name)).toEqual(await original.readF32(name));
    }
    expect(ckpt.readF32Sync("transformer.wte.weight")).toEqual(await original.readF32("transformer.wte.weight"));
    expect(await ckpt.readBytes("transformer.wte.weight", 4, 8)).toEqual(await original.readBytes("transformer.wte.weight", 4, 8));
    await expect(ckpt.readF32("lm_head.weight")).rejects.toThrow(`${sharded}: checkpoint has no tensor "lm_head.weight"`);
    expect(() => ckpt.readF32Sync("lm_head.weight")).toThrow(CheckpointError);
    await ckpt.close();
  });

  test("the index wins over a model.safetensors beside it", async () => {
    const dir = await newDir({ "model.safetensors.index.json": index({ "transformer.ln_f.bias": "only.safetensors" }) });
    await copyTensors(join(dir, "only.safetensors"), ["transformer.ln_f.bias"]);
    await copyTensors(join(dir, "model.safetensors"), ["transformer.ln_f.weight"]);
    const ckpt = await openCheckpoint(dir);
    expect(ckpt.names()).toEqual(["transformer.ln_f.bias"]);
    await ckpt.close();
  });
});

describe("checkpoint errors", () => {
  const rejects = async (dir: string, message: string | RegExp) => {
    const err = await openCheckpoint(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
    return err;
  };

  test("directory missing", async () => {
    const dir = join(root, "does-not-exist");
    expect(await rejects(dir, `${dir}: checkpoint directory does not exist`)).toBeInstanceOf(CheckpointError);
  });

  test("a file instead of a directory", async () => {
    await rejects(join(GPT2, "config.json"), `${join(GPT2, "config.json")}: not a directory`);
  });

  test("no safetensors found", async () => {
    const dir = await newDir({ "config.json": "{}" });
    await rejects(dir, `${dir}: no model.safetensors or model.safetensors.index.json found`);
  });

  test("index names a missing shard", async () => {
    const dir = await newDir({ "model.safetensors.index.json": index({ a: "gone.safetensors" }) });
    await rejects(dir, `${join(dir, "model.safetensors.index.json")}: weight_map names shard "gone.safetensors", which does not exist`);
  });

  test("index names a tensor its shard lacks", async () => {
    const dir = await newDir({ "model.safetensors.index.json": index({ "transformer.ln_f.bias": "s.safetensors", ghost: "s.safetensors" }) });
    await copyTensors(join(dir, "s.safetensors"), ["transformer.ln_f.bias"]);
    await rejects(dir, `${join(dir, "model.safetensors.index.json")}: tensor "ghost" is mapped to "s.safetensors", which has no such tensor`);
  });

  test.each([
    ["invalid JSON", "{", /model\.safetensors\.index\.json: not valid JSON \(/],
    ["no weight_map", JSON.stringify({ metadata: {} }), /model\.safetensors\.index\.json: missing "weight_map" object/],
    ["a non-string shard", index({ a: 3 } as never), /tensor "a" maps to 3, not a file name/],
    ["a shard outside the directory", index({ a: "../x.safetensors" }), /tensor "a" maps to "\.\.\/x\.safetensors", outside the checkpoint directory/],
    ["an absolute shard path", index({ a: "/etc/x.safetensors" }), /tensor "a" maps to "\/etc\/x\.safetensors", outside the checkpoint directory/],
  ])("index with %s", async (_label, text, message) => {
    const dir = await newDir({ "model.safetensors.index.json": text });
    expect(await rejects(dir, message)).toBeInstanceOf(CheckpointError);
  });

  test("a corrupt shard is reported with its path", async () => {
    const dir = await newDir({ "model.safetensors.index.json": index({ a: "ok.safetensors", b: "bad.safetensors" }), "bad.safetensors": "xy" });
    await writeSafetensors(join(dir, "ok.safetensors"), [{ name: "a", dtype: "U8", shape: [1], data: new Uint8Array(1) }]);
    await rejects(dir, `${join(dir, "bad.safetensors")}: file is 2 bytes, too short for the 8-byte header length`);
  });
});
