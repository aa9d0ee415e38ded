// What LoRA adds to a compile's output directory, per target (docs/lora.md). Runtime adapters (--lora without
// --lora-merge): for trtllm-engine, TensorRT-LLM's runtime tensors under lora/<task>/, build_config.json with the LoRA
// plugin and lora_config, and the printed trtllm-build command with the same settings as flags
// (codegen/trtllm-engine/lora-runtime.ts); for hf, PEFT adapters for the generated model under lora/<n>/
// (codegen/hf/lora-adapter.ts); for trtllm-torch, PEFT directories for the PyTorch backend's HF LoRA loader under
// lora/<n>/, lora/adapters.json (LoraConfig settings, LoRARequest names and ids) and lora_example.py
// (codegen/trtllm-torch/lora.ts). Merged (--lora-merge): the "lora" record in weights.map.json. Every adapter is bound
// through the model's weight map first, so a bad one fails before anything is written.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { hfPeftAdapter } from "../../codegen/hf/lora-adapter.ts";
import type { Emission } from "../../codegen/common/target.ts";
import type { TargetName } from "./targets.ts";
import { emitRuntimeLora } from "../../codegen/common/lora-runtime.ts";
import { emitTorchLora } from "../../codegen/trtllm-torch/lora.ts";
import type { Mapping } from "../lower/mapping.ts";
import { shellAssign, shellCommand } from "../io/shell.ts";
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
  mapping: Mapping = { tp: 1, pp: 1 },
): LoraOutputs {
  const bound = adapters.map((adapter) => ({ adapter, bound: bindAdapter(adapter, spec, ckpt) }));
  if (target === "trtllm-torch") {
    const config = JSON.parse(e.files["config.json"]!);
    const pkg = String(e.info("").package);
    const lora = emitTorchLora(bound, {
      lowered,
      tp: mapping.tp,
      kvHeads: config.num_key_value_heads ?? config.num_attention_heads,
      pkg,
      mapArgs: [...(mapping.tp > 1 ? [`tensor_parallel_size=${mapping.tp}`] : []), ...(mapping.pp > 1 ? [`pipeline_parallel_size=${mapping.pp}`] : [])],
    });
    return {
      emission: {
        ...e,
        files: { ...e.files, ...lora.files },
        usage: (d) => {
          const dir = d.replace(/(.)\/$/, "$1");
          return [
            ...e.usage(d),
            `LoRA adapters (${lora.adapters.map((a) => `${a.id} = ${JSON.stringify(a.name)}`).join(", ")}), chosen per request with LoRARequest:`,
            `  ${shellAssign("PYTHONPATH", dir)} ${shellCommand(["python3", `${dir}/lora_example.py`])}`,
          ];
        },
        info: (d) => ({
          ...e.info(d),
          lora: { adapters: lora.adapters.map((a) => ({ ...a })), lora_config: JSON.parse(JSON.stringify(lora.loraConfig)) },
        }),
      },
      write: async (dir) => {
        for (const [name, tensors] of Object.entries(lora.tensors)) {
          await mkdir(dirname(join(dir, name)), { recursive: true });
          await writeSafetensors(
            join(dir, name),
            tensors.map((t) => ({ ...t, dtype: "F32" as const })),
          );
        }
      },
    };
  }
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
    throw new LoraError(
      `--lora without --lora-merge: runtime LoRA is built for the trtllm-engine, trtllm-torch and hf targets (got ${target}); use --lora-merge`,
    );
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
