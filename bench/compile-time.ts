// Compile time without weights for real model sizes: trace models/llama.ts with the LLaMA-3 8B / 70B / 405B configs,
// run the passes, lower, shard for tp=8 and plan every rank file (everything `kiln compile` does except moving
// bytes). Source tensor shapes are inferred from the weight map, so no checkpoint is needed.

import llama from "../models/llama.ts";
import { prepareCompile } from "../src/driver/compile.ts";

const LLAMA3_ROPE = { rope_type: "llama3", factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 };
const base = {
  architectures: ["LlamaForCausalLM"],
  vocab_size: 128256,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  max_position_embeddings: 131072,
  rope_scaling: LLAMA3_ROPE,
  torch_dtype: "bfloat16",
};

export const LLAMA3_CONFIGS = {
  "LLaMA-3 8B": { ...base, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8 },
  "LLaMA-3 70B": { ...base, hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8 },
  "LLaMA-3 405B": { ...base, hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126, num_attention_heads: 128, num_key_value_heads: 8 },
} as const;

export function compileTimes(rounds = 3): { model: string; nodes: number; rankTensors: number; medianMs: number; bestMs: number }[] {
  return Object.entries(LLAMA3_CONFIGS).map(([model, cfg]) => {
    const times: number[] = [];
    let nodes = 0;
    let rankTensors = 0;
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const p = prepareCompile(llama, { ...cfg }, "infer", { mapping: { tp: 8, pp: 1 }, dtype: "bfloat16" });
      times.push(performance.now() - t0);
      nodes = p.lowered.graph.nodes.length;
      rankTensors = p.emission.plans.reduce((a, f) => a + f.tensors.length, 0);
    }
    times.sort((a, b) => a - b);
    return { model, nodes, rankTensors, medianMs: times[Math.floor(rounds / 2)]!, bestMs: times[0]! };
  });
}
