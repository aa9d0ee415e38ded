// The TensorRT-LLM 1.2.1 engine target behind the Target interface: emitEngineTarget's checkpoint (config.json,
// rank files, build_config.json, weights.map.json, model.py for custom architectures) plus what `kiln compile`
// prints: why built-in or custom code, and the trtllm-build command.

import type { Emission, Target, TargetOptions } from "../common/target.ts";
import { type EngineEmission, emitEngineTarget } from "./emit.ts";

export type EngineTargetEmission = EngineEmission & Emission;

function reason(e: EngineEmission): string {
  if (e.builtin) return `built-in TensorRT-LLM class (${e.builtin})`;
  if (e.detection.ok) return "custom code (--custom-code)";
  return `custom code: ${Object.entries(e.detection.reasons)
    .map(([f, r]) => `not ${f}: ${r}`)
    .join("; ")}`;
}

const engineDir = (outDir: string) => `${outDir.replace(/\/$/, "")}/engines`;

export const engineTarget = {
  name: "trtllm-engine",
  description: "TensorRT-LLM 1.2.1 checkpoint for trtllm-build (TensorRT engines)",
  capabilities: { quantization: true, customCode: true },
  emit(lowered, o: TargetOptions): EngineTargetEmission {
    const e = emitEngineTarget(lowered, o);
    const why = reason(e);
    const ranks = e.plans.length;
    return {
      ...e,
      summary: `${ranks} rank file${ranks > 1 ? "s" : ""}; architecture ${e.architecture}: ${why}`,
      usage: (outDir) => [
        "Build the engines (TensorRT-LLM 1.2.1, on a GPU machine):",
        `  ${e.buildCommand(outDir, engineDir(outDir))}`,
        ...(e.maxAttentionWindow
          ? [
              `Run them (sliding-window layers: per-layer max_attention_window_size ${e.maxAttentionWindow.join(",")}, also in config.json runtime_defaults and in 'kiln triton'):`,
              `  ${e.runCommand(engineDir(outDir))}`,
            ]
          : []),
      ],
      info: (outDir) => ({
        builtin: e.builtin ?? null,
        reason: why,
        command: e.buildCommand(outDir, engineDir(outDir)),
        ...(e.maxAttentionWindow && { maxAttentionWindow: e.maxAttentionWindow, runCommand: e.runCommand(engineDir(outDir)) }),
      }),
    };
  },
} satisfies Target;
