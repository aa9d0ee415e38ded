// A model loaded for quantization work on the CPU: traced, fused and lowered exactly as `kiln compile` does, with
// the lowered weights evaluated in memory (one tensor-parallel rank), so Kiln can calibrate it, simulate a
// quantized engine (fake-quant-model.ts) and measure what quantization costs (metrics.ts). Small models only:
// every weight is held as float32.
// Invariants: the reference is the unquantized lowered model in the same simulator, so the metrics measure
// quantization alone; hint exclusions and calibration resolve through spec.ts, which rejects gaps by name.

import type { ModelDefinition } from "../dsl/define-model.ts";
import { argmax, causalInputs } from "../interp/causal-lm.ts";
import { type RTensor, tensor } from "../interp/tensor.ts";
import { simulateTensorParallel, type SimulationHooks } from "../lower/simulate.ts";
import { lowerToTrtllm, type LoweredModel } from "../lower/to-trtllm.ts";
import { isTrtllmOp } from "../lower/trtllm-ops.ts";
import { checkHintConsistency } from "../passes/hints.ts";
import { instantiate } from "./instantiate.ts";
import { optimize } from "./optimize.ts";
import { BindError, bindProblems, graphParams, loadParams, type TensorSource } from "../weights/bind.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { openPrequant, refuseQuantFlags } from "./prequant-view.ts";
import { int4EngineWeights, prequantOptions } from "../quant/prequant.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { readHFConfigJson } from "../weights/hf-config.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { adaptedSource } from "../lora/bind.ts";
import { type Calibration, calibrate } from "../quant/calibration.ts";
import { hintExclusions } from "../quant/exclusions.ts";
import { quantHooks, quantizeWeights, ROUND_TO } from "../quant/fake-quant-model.ts";
import { type QuantAccuracy, quantAccuracy } from "../quant/metrics.ts";
import { checkQuantDtype, needsCalibration, type QuantDtype, type QuantOptions, type QuantSpec, resolveQuant } from "../quant/spec.ts";

const HALF_DTYPES: Readonly<Record<string, QuantDtype>> = { float16: "float16", bfloat16: "bfloat16" };

export interface QuantizableModel {
  readonly name: string;
  readonly hf: Readonly<Record<string, unknown>>;
  readonly lowered: LoweredModel;
  /** Lowered parameter -> [its full tensor] (tensor parallelism 1). */
  readonly weights: ReadonlyMap<string, RTensor[]>;
  /** Linears that `quantize: false` hints keep unquantized. */
  readonly excluded: readonly string[];
  readonly vocab: number;
  /** The quantization a pre-quantized checkpoint carries (src/quant/prequant.ts), applied by simulateEngine. */
  readonly prequant?: QuantOptions;
  /** The checkpoint directory. */
  readonly hfDir: string;
}

/** With a LoRA adapter, the model is the adapted one (the adapter folded into the weights, src/lora/bind.ts). */
export async function loadQuantizableModel<C>(def: ModelDefinition<C>, hfDir: string, adapter?: LoraAdapter): Promise<QuantizableModel> {
  const hf = readHFConfigJson(hfDir) as Record<string, unknown>;
  const inst = instantiate(def, hf, `${hfDir}/config.json`);
  checkHintConsistency(inst.graph);
  const ckpt = await openCheckpoint(hfDir);
  try {
    const pre = await openPrequant(hfDir, hf, ckpt);
    const plain: TensorSource = pre ?? ckpt;
    const problems = bindProblems(graphParams(inst.graph), inst.weights, plain);
    if (problems.length) throw new BindError(problems, hfDir);
    const opt = optimize(inst);
    const lowered = lowerToTrtllm(opt.graph, opt.weights.map, (n) => plain.info(n)?.shape);
    if (pre && adapter) throw new QuantError(`${hfDir} is pre-quantized: LoRA adapters on pre-quantized checkpoints are not supported`);
    const source = adapter ? await adaptedSource(ckpt, inst.weights, adapter) : plain;
    const dense = await loadParams(graphParams(lowered.graph), { map: lowered.weights, ignore: ["*"] }, source, hfDir);
    const weights = new Map([...dense].map(([k, d]) => [k, [tensor("f32", d.shape, d.data)]]));
    const head = lowered.graph.nodes.find((n) => isTrtllmOp(n, "trtllm.lm_head"))!;
    const excluded = hintExclusions(inst.graph, inst.weights.map, lowered);
    let prequant = pre && prequantOptions(lowered, pre);
    const int4 = prequant?.prequant?.int4;
    if (int4) {
      // The engine's weights are computed now, while the checkpoint is open (simulateEngine is synchronous).
      const engineWeights = await int4EngineWeights(lowered, prequant!, ROUND_TO[quantDtype(hf)]);
      prequant = { ...prequant, prequant: { ...prequant!.prequant!, int4: { ...int4, engineWeights } } };
    }
    return { name: def.name, hf, hfDir, lowered, weights, excluded, vocab: head.attrs.vocab, ...(prequant && { prequant }) };
  } finally {
    await ckpt.close();
  }
}

/** The dtype a quantized engine of this checkpoint runs in: --dtype, else the checkpoint's when half, else float16. */
export const quantDtype = (hf: Readonly<Record<string, unknown>>, flag?: QuantDtype): QuantDtype =>
  flag ?? HALF_DTYPES[String(hf.torch_dtype ?? hf.dtype)] ?? "float16";

export const calibrateModel = (m: QuantizableModel, prompts: readonly (readonly number[])[]): Calibration =>
  calibrate(m.lowered.graph, m.weights, 1, prompts, m.name);

/** A quantized engine, simulated: quantized weights plus fake-quantizing hooks. */
export interface SimulatedEngine {
  readonly spec: QuantSpec;
  readonly dtype: QuantDtype;
  readonly weights: ReadonlyMap<string, RTensor[]>;
  readonly hooks: SimulationHooks;
}

/**
 * Resolves `o` (hint exclusions added) and builds the simulated engine. Without a calibration where one is needed,
 * calibrates on `prompts`.
 */
export function simulateEngine(m: QuantizableModel, given: QuantOptions, dtype: QuantDtype, prompts: readonly (readonly number[])[]): SimulatedEngine {
  if (m.prequant) refuseQuantFlags(m.hfDir, m.prequant.prequant!.source, given);
  const o = m.prequant ? { ...m.prequant, excluded: [...m.prequant.excluded!, ...(given.excluded ?? [])] } : given;
  if (m.prequant?.prequant?.int4 && dtype !== quantDtype(m.hf))
    throw new QuantError(`${m.hfDir}: a pre-quantized INT4 checkpoint is simulated in its own dtype ${quantDtype(m.hf)}, not ${dtype}`);
  checkQuantDtype(o, dtype);
  const calibration = o.calibration ?? (needsCalibration(o) ? calibrateModel(m, prompts) : undefined);
  const spec = resolveQuant(m.lowered.graph, { ...o, excluded: [...m.excluded, ...(o.excluded ?? [])], ...(calibration && { calibration }) });
  return { spec, dtype, weights: quantizeWeights(m.weights, spec, dtype), hooks: quantHooks(spec, dtype) };
}

/** All-position logits [T, vocab] of one prompt; the unquantized model without an engine. */
export function logitsOf(m: QuantizableModel, ids: readonly number[], engine?: SimulatedEngine): Float32Array {
  const out = simulateTensorParallel(m.lowered.graph, causalInputs(ids), engine?.weights ?? m.weights, 1, engine?.hooks);
  return out.get("logits")!.data as Float32Array;
}

/** Greedy continuation (recomputing the whole sequence each step, like interp/causal-lm.ts). */
export function generateGreedy(m: QuantizableModel, prompt: readonly number[], maxNewTokens: number, engine?: SimulatedEngine): number[] {
  const seq = [...prompt];
  for (let step = 0; step < maxNewTokens; step++) seq.push(argmax(logitsOf(m, seq, engine).subarray((seq.length - 1) * m.vocab)));
  return seq.slice(prompt.length);
}

export interface QuantEvaluation {
  readonly accuracy: QuantAccuracy;
  readonly perPrompt: readonly QuantAccuracy[];
  readonly engine: SimulatedEngine;
}

/** Accuracy of the simulated engine against the unquantized model over `prompts` (also the calibration prompts). */
export function evaluateQuant(m: QuantizableModel, o: QuantOptions, dtype: QuantDtype, prompts: readonly (readonly number[])[]): QuantEvaluation {
  const engine = simulateEngine(m, o, dtype, prompts);
  const pairs = prompts.map((ids) => [logitsOf(m, ids), logitsOf(m, ids, engine)] as const);
  return { accuracy: quantAccuracy(pairs, m.vocab), perPrompt: pairs.map((p) => quantAccuracy([p], m.vocab)), engine };
}
