// The interpreter benchmark's model: a 56M-parameter LLaMA (hidden 512, 8 layers, 4 heads of 128, 2 KV heads,
// ffn 1408, vocab 32000: the shape issue 16 measured) as an F32 Hugging Face checkpoint, so Kiln (models/llama.ts)
// and PyTorch (transformers' LlamaForCausalLM, bench/torch_forward.py) load the same weights.
// Invariants: generated once and reused while its marker matches (bench/.data/ is gitignored); weights are
// deterministic pseudo-random values of trained-weight scale (uniform in +-0.05, norms at 1), so logits are finite.

import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SafetensorsWriter, type TensorSpec } from "../src/weights/safetensors.ts";
import { llamaTensors } from "./synthetic-llama.ts";

export const INTERP_LLAMA = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 512,
  intermediate_size: 1408,
  num_attention_heads: 4,
  head_dim: 128,
  num_key_value_heads: 2,
  num_hidden_layers: 8,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
  torch_dtype: "float32",
} as const;

const tensors = (): TensorSpec[] => llamaTensors(INTERP_LLAMA, "F32");

export const interpLlamaParams = (): number => tensors().reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);

/** Makes sure `dir` holds the checkpoint; returns its parameter count. */
export async function ensureInterpLlama(dir: string, log: (msg: string) => void): Promise<number> {
  const marker = join(dir, ".complete");
  const specs = tensors();
  const stamp = JSON.stringify({ config: INTERP_LLAMA, version: 1 });
  const params = interpLlamaParams();
  if ((await readFile(marker, "utf8").catch(() => "")) === stamp) return params;
  log(`generating a ${(params / 1e6).toFixed(0)}M-parameter F32 LLaMA in ${dir} (once) ...`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify(INTERP_LLAMA, null, 2));
  const writer = await SafetensorsWriter.create(join(dir, "model.safetensors"), specs, { format: "pt" });
  let seed = 12345;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (s.name.endsWith("norm.weight")) data.fill(1);
    else
      for (let i = 0; i < n; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        data[i] = (seed / 2 ** 32 - 0.5) * 0.1;
      }
    await writer.write(s.name, new Uint8Array(data.buffer));
  }
  await writer.finish();
  await writeFile(marker, stamp);
  return params;
}
