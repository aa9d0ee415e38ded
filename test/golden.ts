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

export async function readGolden(dir: string, file = "golden.safetensors"): Promise<GoldenPrompt[]> {
  const f = await SafetensorsFile.open(`${dir}/${file}`);
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

/** Pre-quantized fixtures (scripts/prequant-fixtures/make.py), all read by models/llama.ts. */
export const PREQUANT = fileURLToPath(new URL("./fixtures/prequant/", import.meta.url));

/** The zoo fixtures (made by scripts/zoo-fixtures/make.py with transformers) and the zoo model file for each. */
export const ZOO = fileURLToPath(new URL("./fixtures/zoo/", import.meta.url));
export const ZOO_FIXTURES = [
  { fixture: "mistral", model: "mistral" },
  { fixture: "qwen2", model: "qwen2" },
  { fixture: "qwen3", model: "qwen3" },
  { fixture: "gemma", model: "gemma" },
  { fixture: "gemma2", model: "gemma2" },
  { fixture: "gpt_neox", model: "gpt_neox" },
  { fixture: "gpt_neox_seq", model: "gpt_neox" },
  { fixture: "starcoder2", model: "starcoder2" },
  { fixture: "phi3", model: "phi3" },
  { fixture: "phi3_longrope", model: "phi3" },
  { fixture: "llama_yarn", model: "llama" },
  { fixture: "llama_dynamic", model: "llama" },
  { fixture: "falcon", model: "falcon" },
] as const;

/** Fixtures the engine target refuses, with the one-line reason (checked instead of rank files). */
export const ENGINE_REFUSED: Record<string, RegExp> = {
  phi3_longrope: /^rope scaling 'longrope' is not supported by the engine target: TensorRT-LLM 1\.2\.1 takes it only as position_embedding_type long_rope/,
};

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
