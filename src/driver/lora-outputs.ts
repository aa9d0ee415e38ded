// What LoRA adds to a compile's output directory, per target (docs/lora.md). Runtime adapters (--lora without
// --lora-merge): for trtllm-engine, TensorRT-LLM's runtime tensors under lora/<task>/, build_config.json with the LoRA
// plugin and lora_config, and the printed trtllm-build command with the same settings as flags
// (codegen/trtllm-engine/lora-runtime.ts); for hf, PEFT adapters for the generated model under lora/<n>/
// (codegen/hf/lora-adapter.ts). Merged (--lora-merge): the "lora" record in weights.map.json. Every adapter is bound
// through the model's weight map first, so a bad one fails before anything is written.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { hfPeftAdapter } from "../../codegen/hf/lora-adapter.ts";
import type { Emission } from "../../codegen/common/target.ts";
import type { TargetName } from "./targets.ts";
import { emitRuntimeLora } from "../../codegen/common/lora-runtime.ts";
import { type LoraAdapter, LoraError } from "../lora/adapter.ts";
import { bindAdapter } from "../lora/bind.ts";
import type { LoweredModel } from "../lower/to-trtllm.ts";
import type { TensorSource } from "../weights/bind.ts";
import { writeSafetensors } from "../weights/safetensors.ts";
import type { WeightMapSpec } from "../weights/weight-map.ts";

export interface LoraOutputs {
  readonly emission: Emission;
  /** Writes the binary files into the output (temp) directory. */
  readonly write: (dir: string) => Promise<void>;
}

async function writeBytes(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(join(dir, name)), { recursive: true });
  await writeFile(join(dir, name), bytes);
}

export function runtimeLoraOutputs(
  target: TargetName,
  e: Emission,
  adapters: readonly LoraAdapter[],
  spec: WeightMapSpec,
  ckpt: Pick<TensorSource, "names" | "info">,
  lowered: LoweredModel,
): LoraOutputs {
  const bound = adapters.map((adapter) => ({ adapter, bound: bindAdapter(adapter, spec, ckpt) }));
  if (target === "hf") {
    const peft = bound.map((a) => hfPeftAdapter(a, lowered.weights, (n) => ckpt.info(n)?.shape));
    const configs = Object.fromEntries(peft.map((a, i) => [`lora/${i + 1}/adapter_config.json`, a.config]));
    return {
      emission: {
        ...e,
        files: { ...e.files, ...configs },
        usage: (d) => [
          ...e.usage(d),
          `LoRA adapters for PEFT (${peft.length}): from peft import PeftModel; model = PeftModel.from_pretrained(model, ${JSON.stringify(`${d.replace(/\/$/, "")}/lora/1`)})`,
        ],
      },
      write: async (dir) => {
        for (const [i, a] of peft.entries()) {
          await mkdir(join(dir, "lora", String(i + 1)), { recursive: true });
          await writeSafetensors(
            join(dir, "lora", String(i + 1), "adapter_model.safetensors"),
            a.tensors.map((t) => ({ ...t, dtype: "F32" as const })),
          );
        }
      },
    };
  }
  if (target !== "trtllm-engine")
    throw new LoraError(`--lora without --lora-merge: runtime LoRA is built for the trtllm-engine and hf targets (got ${target}); use --lora-merge`);
  const config = JSON.parse(e.files["config.json"]!);
  const runtime = emitRuntimeLora(bound, lowered.weights, e.files["build_config.json"]!, {
    dtype: config.dtype,
    tp: config.mapping?.tp_size ?? 1,
    kvHeads: config.num_key_value_heads ?? config.num_attention_heads,
  });
  const patched = (info: ReturnType<Emission["info"]>) => (typeof info.command === "string" ? { ...info, command: runtime.patchCommand(info.command) } : info);
  return {
    emission: {
      ...e,
      files: { ...e.files, ...runtime.files },
      usage: (d) => e.usage(d).map(runtime.patchCommand),
      info: (d) => ({
        ...patched(e.info(d)),
        lora: { tasks: runtime.tasks.map((t) => ({ ...t })), lora_target_modules: [...runtime.modules], max_lora_rank: runtime.maxRank },
      }),
    },
    write: async (dir) => {
      for (const [name, bytes] of Object.entries(runtime.binaries)) await writeBytes(dir, name, bytes);
    },
  };
}

/** Adds a top-level "lora" entry to weights.map.json (targets without one are left as they are). */
export function recordInWeightsMap(e: Emission, lora: unknown): Emission {
  const text = e.files["weights.map.json"];
  if (text === undefined) return e;
  return { ...e, files: { ...e.files, "weights.map.json": `${JSON.stringify({ ...JSON.parse(text), lora }, null, 2)}\n` } };
}
