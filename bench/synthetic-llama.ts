// A synthetic LLaMA checkpoint in Hugging Face layout for the conversion benchmark: config.json, BF16 weights
// with the real tensor names, sharded over three safetensors files plus model.safetensors.index.json.
// Invariants: generated once and reused while its marker file matches the config (bench/.data/ is gitignored);
// data is random but every value is a finite, normal-range bf16 (no Inf/NaN); generation streams through a
// fixed pair of buffers, so memory stays small whatever the checkpoint size.

import { randomFillSync } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SafetensorsWriter, type TensorSpec } from "../src/weights/safetensors.ts";

/** LLaMA-like shape: TinyLlama's dimensions with 8 KV heads; 22 layers make about 2.25 GB of BF16. */
export const SYNTHETIC_LLAMA = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 2048,
  intermediate_size: 5632,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  num_hidden_layers: 22,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
} as const;

export type LlamaConfig = typeof SYNTHETIC_LLAMA;

const SHARDS = 3;
const CHUNK_BYTES = 8 << 20;

/** The HF config fields that fix a LLaMA checkpoint's tensor shapes (head_dim defaults to hidden / heads). */
export interface LlamaShape {
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads: number;
  readonly num_hidden_layers: number;
  readonly vocab_size: number;
  readonly head_dim?: number;
}

/** Every HF tensor of the model with its shape, in the order save_pretrained's safetensors writer sorts them. */
export function llamaTensors(c: LlamaShape, dtype: TensorSpec["dtype"] = "BF16"): TensorSpec[] {
  const h = c.hidden_size;
  const headDim = c.head_dim ?? h / c.num_attention_heads;
  const q = headDim * c.num_attention_heads;
  const kv = headDim * c.num_key_value_heads;
  const t = (name: string, shape: number[]): TensorSpec => ({ name, dtype, shape });
  const layer = (i: number) => {
    const p = `model.layers.${i}`;
    return [
      t(`${p}.input_layernorm.weight`, [h]),
      t(`${p}.mlp.down_proj.weight`, [h, c.intermediate_size]),
      t(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, h]),
      t(`${p}.mlp.up_proj.weight`, [c.intermediate_size, h]),
      t(`${p}.post_attention_layernorm.weight`, [h]),
      t(`${p}.self_attn.k_proj.weight`, [kv, h]),
      t(`${p}.self_attn.o_proj.weight`, [h, q]),
      t(`${p}.self_attn.q_proj.weight`, [q, h]),
      t(`${p}.self_attn.v_proj.weight`, [kv, h]),
    ];
  };
  return [
    t("lm_head.weight", [c.vocab_size, h]),
    t("model.embed_tokens.weight", [c.vocab_size, h]),
    ...Array.from({ length: c.num_hidden_layers }, (_, i) => layer(i)).flat(),
    t("model.norm.weight", [h]),
  ].sort((a, b) => (a.name < b.name ? -1 : 1));
}

const bytesOf = (t: TensorSpec) => t.shape.reduce((a, b) => a * b, 2);

/** Random bf16 bits with exponent 0x70..0x7f: magnitudes in [2^-15, 2), like trained weights, finite in f16 too. */
function fillRandomBf16(buf: Uint8Array): void {
  randomFillSync(buf);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
  for (let i = 0; i < words.length; i++) words[i] = (words[i]! & 0x87ff87ff) | 0x38003800;
}

async function writeShard(path: string, tensors: readonly TensorSpec[]): Promise<void> {
  const writer = await SafetensorsWriter.create(path, tensors, { format: "pt" });
  const buffers = [new Uint8Array(CHUNK_BYTES), new Uint8Array(CHUNK_BYTES)];
  const pending: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let turn = 0;
  try {
    for (const t of tensors) {
      for (let left = bytesOf(t); left > 0; ) {
        const n = Math.min(CHUNK_BYTES, left);
        await pending[turn];
        const chunk = buffers[turn]!.subarray(0, n);
        fillRandomBf16(chunk);
        pending[turn] = writer.write(t.name, chunk);
        turn ^= 1;
        left -= n;
      }
    }
    await Promise.all(pending);
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/** Makes sure `dir` holds the synthetic checkpoint (generating it if its marker is missing or stale). */
export async function ensureSyntheticLlama(dir: string, log: (msg: string) => void): Promise<{ bytes: number; files: string[] }> {
  const marker = join(dir, ".complete");
  const tensors = llamaTensors(SYNTHETIC_LLAMA);
  const total = tensors.reduce((a, t) => a + bytesOf(t), 0);
  const stamp = JSON.stringify({ config: SYNTHETIC_LLAMA, shards: SHARDS, total });
  // Split into shards of about equal size, keeping tensor order.
  const shards: TensorSpec[][] = Array.from({ length: SHARDS }, () => []);
  let acc = 0;
  for (const t of tensors) {
    shards[Math.min(SHARDS - 1, Math.floor((acc * SHARDS) / total))]!.push(t);
    acc += bytesOf(t);
  }
  const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${SHARDS}.safetensors`);
  const files = [...names, "model.safetensors.index.json", "config.json"];
  if ((await readFile(marker, "utf8").catch(() => "")) === stamp) return { bytes: total, files };

  log(`generating a ${(total / 1e9).toFixed(2)} GB synthetic LLaMA checkpoint in ${dir} (once) ...`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(SYNTHETIC_LLAMA, null, 2));
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    await writeShard(join(dir, names[i]!), shard);
    for (const t of shard) weightMap[t.name] = names[i]!;
  }
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  await writeFile(marker, stamp);
  return { bytes: total, files };
}
