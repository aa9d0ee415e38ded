// The PEFT LoRA adapter fixtures (test/fixtures/lora, made by make_adapters.py with peft) and their goldens: the
// logits PEFT computes for the base fixture's prompts with the adapter applied.

import { fileURLToPath } from "node:url";
import { FIXTURES, readGolden, type GoldenPrompt } from "./golden.ts";

export const LORA_FIXTURES = fileURLToPath(new URL("./fixtures/lora/", import.meta.url));

/** Every adapter with the base fixture and the Kiln model file that reads it. */
export const LORA_ADAPTERS = [
  { fixture: "llama", adapter: "attn_qv", model: "llama" },
  { fixture: "llama", adapter: "all_rslora", model: "llama" },
  { fixture: "llama3_gqa", adapter: "all_rslora", model: "llama" },
  { fixture: "gpt2", adapter: "attn_qkv", model: "gpt2" },
  { fixture: "gpt2", adapter: "all_rslora", model: "gpt2" },
  { fixture: "gptj", adapter: "all", model: "gptj" },
] as const;

export const adapterDir = (fixture: string, adapter: string): string => `${LORA_FIXTURES}${fixture}/${adapter}`;
export const baseDir = (fixture: string): string => `${FIXTURES}${fixture}`;
export const readLoraGolden = (fixture: string, adapter: string): Promise<GoldenPrompt[]> => readGolden(adapterDir(fixture, adapter));
