// From a model definition and a Hugging Face directory to a traced, verified graph plus the bound weights:
// config.json through the model's zod schema, trace with the causal-LM signature, check the weight map against the
// checkpoint headers (all problems at once), and load parameters for the interpreter.

import type { ModelDefinition } from "../dsl/define-model.ts";
import { CAUSAL_LM_INPUTS, traceModule } from "../dsl/trace.ts";
import type { Graph } from "../ir/graph.ts";
import type { RTensor } from "../interp/tensor.ts";
import { tensor } from "../interp/tensor.ts";
import { graphParams, loadParams } from "../weights/bind.ts";
import { type Checkpoint, openCheckpoint } from "../weights/checkpoint.ts";
import { openPrequant } from "./prequant-view.ts";
import { ConfigError, parseWith, readHFConfigJson } from "../weights/hf-config.ts";
import type { WeightMapSpec } from "../weights/weight-map.ts";
import { checkConfigSizes } from "../weights/config-limits.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { adaptedSource } from "../lora/bind.ts";
import { fileURLToPath } from "node:url";
import { KilnError } from "../io/kiln-error.ts";

/** An error thrown by the model's own code (its create or forward), not by Kiln. */
export class ModelCodeError extends KilnError {}

export interface Instance<C = unknown> {
  readonly def: ModelDefinition<C>;
  readonly config: C;
  readonly graph: Graph;
  readonly weights: WeightMapSpec;
}

export function instantiate<C>(def: ModelDefinition<C>, hfConfig: unknown, configPath = "config.json"): Instance<C> {
  const archs = (hfConfig as { architectures?: unknown } | null)?.architectures;
  if (def.architectures.length && Array.isArray(archs) && archs.length && !archs.some((a) => def.architectures.includes(a)))
    throw new ConfigError(
      `${configPath}: architecture ${archs.map((a) => `'${a}'`).join(", ")} is not one model '${def.name}' reads (it reads ${def.architectures.join(", ")})`,
    );
  checkConfigSizes(hfConfig, configPath); // before tracing: a config alone must not exhaust memory or time
  const config = parseWith(def.config, hfConfig, configPath);
  const graph = inModelCode(def.name, () => traceModule(def.create(config), def.name, CAUSAL_LM_INPUTS));
  return { def, config, graph, weights: def.weights(config) };
}

/** Kiln's own library folders: an error thrown from a frame in there is Kiln's; from anywhere else, the model's. */
const KILN_LIBRARY = ["src/", "codegen/"].map((d) => fileURLToPath(new URL(`../../${d}`, import.meta.url)));

/** The first stack frame's file and position, if it is outside Kiln's library (the model's own code threw). */
function modelFrame(e: Error): string | undefined {
  const frame = /\n\s+at (?:.*\()?(?:file:\/\/)?(\/[^():]+):(\d+):(\d+)\)?/.exec(e.stack ?? "");
  if (!frame) return undefined;
  const [, file, line, col] = frame;
  return KILN_LIBRARY.some((d) => file!.startsWith(d)) || file!.includes("/node_modules/") ? undefined : `${file}:${line}:${col}`;
}

/** Runs the model's create/forward; an error the model's own code throws is reported as the model's, with where. */
function inModelCode<T>(model: string, run: () => T): T {
  try {
    return run();
  } catch (e) {
    // Kiln's own error classes pass through; only the built-in ones a model's code throws are relabelled.
    if (!(e instanceof Error) || e instanceof KilnError || ![Error, TypeError, RangeError, ReferenceError].includes(e.constructor as ErrorConstructor)) throw e;
    const at = modelFrame(e);
    if (!at) throw e;
    throw new ModelCodeError(`model '${model}' threw while building or tracing: ${e.message} (at ${at}; KILN_DEBUG=1 shows the stack)`, { cause: e });
  }
}

export function instantiateFromDir<C>(def: ModelDefinition<C>, hfDir: string): Instance<C> {
  return instantiate(def, readHFConfigJson(hfDir), `${hfDir}/config.json`);
}

/** Checks the weight map against the checkpoint and loads every parameter as float32; with a LoRA adapter, folded in
 * (W + s B A, src/lora/bind.ts). */
export async function loadWeights(
  inst: Pick<Instance, "graph" | "weights">,
  hfDir: string,
  opts: { allowNonFinite?: boolean; adapter?: LoraAdapter } = {},
): Promise<Map<string, RTensor>> {
  const ckpt: Checkpoint = await openCheckpoint(hfDir);
  try {
    // A pre-quantized checkpoint runs as its dequantized weights (the engine's activation quantization is the
    // simulator's business: quantized-model.ts).
    const pre = await openPrequant(hfDir, readHFConfigJson(hfDir) as Record<string, unknown>, ckpt);
    const source = opts.adapter ? await adaptedSource(ckpt, inst.weights, opts.adapter) : (pre ?? ckpt);
    const dense = await loadParams(graphParams(inst.graph), inst.weights, source, hfDir, { ...(opts.allowNonFinite && { allowNonFinite: true }) });
    return new Map([...dense].map(([k, d]) => [k, tensor("f32", d.shape, d.data)]));
  } finally {
    await ckpt.close();
  }
}
