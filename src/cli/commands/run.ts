// `kiln run <model.ts> --hf DIR --ids ...`: trace the model, bind the HF weights, compute logits for the prompt in
// the CPU interpreter and generate greedily. Optionally writes all-position logits as safetensors. With --quant
// and/or --kv-cache, runs the lowered model as the quantized TensorRT-LLM engine would compute it (fake
// quantization with the engine's rounding and scales, src/quant/fake-quant-model.ts), calibrating on the built-in
// prompts (or --prompts) unless --calibration gives a file. With --lora DIR, a PEFT LoRA adapter is folded into the
// weights first (W + s B A; src/lora).

import { existsSync } from "node:fs";
import { argmax, generate } from "../../interp/causal-lm.ts";
import { instantiateFromDir, loadWeights } from "../../driver/instantiate.ts";
import { chooseModel } from "../../driver/zoo.ts";
import { writeSafetensors } from "../../weights/safetensors.ts";
import { loadPrompts } from "../../quant/prompts.ts";
import { generateGreedy, loadQuantizableModel, logitsOf, quantDtype, simulateEngine } from "../../driver/quantized-model.ts";
import { isQuantized } from "../../quant/spec.ts";
import { describeQuant, parseDtypeFlag, parseQuantFlags, type QuantFlags } from "./quant-flags.ts";
import type { Graph } from "../../ir/graph.ts";
import { parseCount, parseIds } from "../args.ts";
import { UsageError } from "../errors.ts";
import { checkOutputFile } from "../../io/output-guard.ts";
import { checkPromptLength, positionLimit } from "../../driver/positions.ts";
import { readHFConfigJson } from "../../weights/hf-config.ts";
import { describePrequant, detectPrequant } from "../../weights/prequant-format.ts";
import { NumericsError } from "../../weights/numerics.ts";
import { readAdapter } from "../../lora/adapter.ts";

function outputVocab(g: Graph): number {
  const logits = g.outputs.find((o) => o.name === "logits") ?? g.outputs[0]!;
  return g.values.get(logits.value)!.shape.at(-1) as number;
}

export interface RunFlags extends QuantFlags {
  readonly hf: string;
  readonly ids: string;
  readonly maxNewTokens: string;
  readonly logitsOut?: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
  readonly allowNonfinite?: boolean;
  /** A PEFT LoRA adapter directory, folded into the weights (src/lora). */
  readonly lora?: string;
}

export async function runCommand(spec: string | undefined, flags: RunFlags, out: (s: string) => void): Promise<void> {
  const ids = parseIds(flags.ids);
  const maxNew = parseCount(flags.maxNewTokens, "--max-new-tokens");
  const logitsOut =
    flags.logitsOut === undefined
      ? undefined
      : checkOutputFile(flags.logitsOut, {
          flag: "--logits-out",
          inputs: [...(spec !== undefined && existsSync(spec) ? [spec] : []), flags.hf, flags.calibration, ...(flags.prompts ?? [])],
        });
  const t0 = performance.now();
  const { def } = await chooseModel(spec, flags, { typecheck: flags.typecheck });
  const inst = instantiateFromDir(def, flags.hf);
  const vocabSize = outputVocab(inst.graph);
  const bad = ids.find((id) => id >= vocabSize);
  if (bad !== undefined) throw new UsageError(`--ids: token id ${bad} is out of range for model '${def.name}' (vocabulary of ${vocabSize})`);
  const positionWarning = checkPromptLength(positionLimit(inst.graph, readHFConfigJson(flags.hf) as Record<string, unknown>), ids.length, maxNew);
  if (positionWarning) process.stderr.write(`kiln: warning: ${positionWarning}\n`);
  const quant = await parseQuantFlags(flags);
  const adapter = flags.lora === undefined ? undefined : await readAdapter(flags.lora);
  const dtypeFlag = parseDtypeFlag(flags.dtype);
  let t1: number;
  let r: { logits: Float32Array; vocab: number; tokens: number[]; quantized?: string };
  // A pre-quantized checkpoint (ModelOpt/compressed-tensors FP8, AWQ/GPTQ INT4) runs as its simulated engine.
  const prequant = detectPrequant(flags.hf, readHFConfigJson(flags.hf) as Record<string, unknown>);
  if (isQuantized(quant) || prequant) {
    const m = await loadQuantizableModel(def, flags.hf, adapter);
    const engine = simulateEngine(m, quant, quantDtype(m.hf, dtypeFlag), await loadPrompts(flags.prompts ?? [], m.vocab));
    t1 = performance.now();
    r = {
      logits: logitsOf(m, ids, engine),
      vocab: m.vocab,
      tokens: generateGreedy(m, ids, maxNew, engine),
      quantized: `${prequant ? `pre-quantized ${describePrequant(prequant)}` : describeQuant(quant)} (${engine.dtype})`,
    };
  } else {
    const params = await loadWeights(inst, flags.hf, { ...(flags.allowNonfinite && { allowNonFinite: true }), ...(adapter && { adapter }) });
    t1 = performance.now();
    r = generate(inst.graph, params, ids, maxNew);
  }
  const { logits, vocab, tokens, quantized } = r;
  const badLogits = logits.reduce((n, x) => (Number.isFinite(x) ? n : n + 1), 0);
  if (badLogits && !flags.allowNonfinite)
    throw new NumericsError(
      `model '${def.name}': ${badLogits} of ${logits.length} logits are non-finite (Inf/NaN), so the generated tokens would be meaningless; check the weights and config.json (e.g. rope_theta), or pass --allow-nonfinite`,
    );
  const t2 = performance.now();
  if (logitsOut) await writeSafetensors(logitsOut, [{ name: "logits", dtype: "F32", shape: [ids.length, vocab], data: logits }]);
  const nextToken = argmax(logits.subarray((ids.length - 1) * vocab));
  const result = {
    model: def.name,
    prompt: ids,
    tokens,
    nextToken,
    vocab,
    loadMs: Math.round(t1 - t0),
    computeMs: Math.round(t2 - t1),
    ...(flags.logitsOut && { logitsOut: flags.logitsOut }),
    ...(quantized && { quantized }),
    ...(adapter && { lora: { dir: adapter.dir, modules: adapter.modules.length } }),
  };
  if (flags.json) out(`${JSON.stringify(result)}\n`);
  else
    out(
      `model ${def.name}${adapter ? ` + LoRA ${adapter.dir} (${adapter.modules.length} modules)` : ""}${quantized ? ` ${quantized}, simulated` : ""}: prompt [${ids}] -> generated [${tokens}]\n${flags.logitsOut ? `logits [${ids.length}, ${vocab}] written to ${flags.logitsOut}\n` : ""}`,
    );
}
