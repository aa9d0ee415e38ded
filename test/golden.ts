// Loading the golden files that come with the HF fixtures (made by transformers, not by Kiln): prompts, logits for
// every position, and greedy continuations.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SafetensorsFile } from "../src/weights/safetensors.ts";

export const FIXTURES = fileURLToPath(new URL("./fixtures/hf/", import.meta.url));
export const REAL_TINYSTORIES = fileURLToPath(new URL("../../shared/fixtures/real/tinystories260k/", import.meta.url));
export const hasRealModel = existsSync(`${REAL_TINYSTORIES}model.safetensors`);

export interface GoldenPrompt {
  readonly ids: number[];
  readonly logits: Float32Array;
  readonly greedy: number[];
}

export async function readGolden(dir: string): Promise<GoldenPrompt[]> {
  const f = await SafetensorsFile.open(`${dir}/golden.safetensors`);
  try {
    const out: GoldenPrompt[] = [];
    for (let i = 0; f.info(`input_ids.${i}`); i++)
      out.push({ ids: [...(await f.readI32(`input_ids.${i}`))], logits: await f.readF32(`logits.${i}`), greedy: [...(await f.readI32(`greedy.${i}`))] });
    return out;
  } finally {
    await f.close();
  }
}

/** Each HF fixture with the Kiln model file that reads it. */
export const FIXTURE_MODELS = [
  { fixture: "gpt2", model: "gpt2" },
  { fixture: "gptj", model: "gptj" },
  { fixture: "llama", model: "llama" },
  { fixture: "llama3_gqa", model: "llama" },
] as const;

/** The zoo fixtures (made by scripts/zoo-fixtures/make.py with transformers) and the zoo model file for each. */
export const ZOO = fileURLToPath(new URL("./fixtures/zoo/", import.meta.url));
export const ZOO_FIXTURES = [
  { fixture: "mistral", model: "mistral" },
  { fixture: "qwen2", model: "qwen2" },
  { fixture: "qwen3", model: "qwen3" },
  { fixture: "gemma", model: "gemma" },
  { fixture: "gpt_neox", model: "gpt_neox" },
  { fixture: "gpt_neox_seq", model: "gpt_neox" },
  { fixture: "starcoder2", model: "starcoder2" },
  { fixture: "phi3", model: "phi3" },
] as const;

/** Zoo models the engine target refuses, with a one-line error (none since issue 14 part B lowered `moe` to
 *  TensorRT-LLM's MOE layer). */
export const ENGINE_PENDING_MODELS: readonly string[] = [];

/** Mixture-of-experts zoo fixtures (issue 14), listed apart while the engine target's MoE lowering is added. */
export const ZOO_MOE_FIXTURES = [
  { fixture: "mixtral", model: "mixtral" },
  { fixture: "qwen2_moe", model: "qwen2_moe" },
  { fixture: "qwen2_moe_norm", model: "qwen2_moe" },
  { fixture: "qwen3_moe", model: "qwen3_moe" },
] as const;
