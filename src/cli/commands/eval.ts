// `kiln eval <model.ts> --hf DIR --quant SCHEME [--kv-cache F] [--dtype D] [--calibration FILE] [--prompts FILE... |
// --text FILE --tokenizer DIR [--samples N] [--seq-len N]] [--engine interp|torch] [--device cpu|cuda] [--json]`:
// what quantization costs before any engine is built. Simulates the quantized engine (src/quant/fake-quant-model.ts
// on the CPU interpreter, or python-bridge/kiln_bridge/fake_quant.py in PyTorch with --engine torch) and compares it
// with the unquantized model over the calibration prompts: relative logit error, top-1 agreement and KL divergence
// (src/quant/metrics.ts; kiln_bridge/quant_metrics.py).
// With --lora DIR the evaluated model is the base model with that PEFT adapter folded in (src/lora); --lora without
// --quant measures the adapter itself: the adapted model against the base model, same metrics.

import { loadModelFile } from "../../driver/load-model-file.ts";
import { resolve } from "node:path";
import { readHFConfigJson } from "../../weights/hf-config.ts";
import { evaluateQuant, loadQuantizableModel, logitsOf, quantDtype } from "../../driver/quantized-model.ts";
import { type QuantAccuracy, quantAccuracy } from "../../quant/metrics.ts";
import { readAdapter, type LoraAdapter } from "../../lora/adapter.ts";
import type { ModelDefinition } from "../../dsl/define-model.ts";
import { isQuantized } from "../../quant/spec.ts";
import { UsageError } from "../errors.ts";
import { describeQuant, parseDtypeFlag, parseQuantFlags, type QuantFlags } from "./quant-flags.ts";
import { type EngineFlags, loadSamples, parseEngine, runTorchEngine } from "./torch-engine.ts";

export interface EvalFlags extends QuantFlags, EngineFlags {
  readonly hf: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
  readonly lora?: string;
}

export async function evalCommand(file: string, flags: EvalFlags, out: (s: string) => void): Promise<void> {
  const o = await parseQuantFlags(flags);
  if (!isQuantized(o) && flags.lora === undefined) throw new UsageError("give --quant w8a16|w4a16|fp8 and/or --kv-cache int8|fp8 (or --lora DIR) to evaluate");
  const dtypeFlag = parseDtypeFlag(flags.dtype);
  const engineName = parseEngine(flags);
  if (engineName === "torch" && flags.lora !== undefined) throw new UsageError("--lora is evaluated by the interpreter only (leave out --engine torch)");
  const adapter = flags.lora === undefined ? undefined : await readAdapter(flags.lora);
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  if (!isQuantized(o)) return evalAdapter(def, flags, adapter!, out);
  let r: EvalResult;
  if (engineName === "torch") {
    const dtype = quantDtype(readHFConfigJson(flags.hf) as Record<string, unknown>, dtypeFlag);
    const extra = [
      ...(o.weight ? ["--quant", o.weight] : []),
      ...(o.kv ? ["--kv-cache", o.kv] : []),
      "--dtype",
      dtype,
      ...(flags.calibration ? ["--calibration", resolve(flags.calibration)] : []),
    ];
    const run = await runTorchEngine(def, flags.hf, "eval", extra, flags, out, "eval.json");
    if (!run) return;
    const t = JSON.parse(run.result) as QuantAccuracy & { perPrompt: QuantAccuracy[]; quantizedLinears: number };
    const { perPrompt, quantizedLinears, ...a } = t;
    const accuracy = { relLogitError: a.relLogitError, top1Agreement: a.top1Agreement, klDivergence: a.klDivergence, positions: a.positions };
    r = { dtype, prompts: perPrompt.length, quantized: quantizedLinears, excluded: run.job.excluded, accuracy, perPrompt };
  } else {
    const m = await loadQuantizableModel(def, flags.hf, adapter);
    const dtype = quantDtype(m.hf, dtypeFlag);
    const prompts = await loadSamples(flags, m.vocab);
    const { accuracy, perPrompt, engine } = evaluateQuant(m, o, dtype, prompts);
    r = { dtype, prompts: prompts.length, quantized: engine.spec.linears.length, excluded: m.excluded, accuracy, perPrompt };
  }
  const { accuracy: a, dtype, quantized } = r;
  if (flags.json) {
    const result = {
      model: def.name,
      quant: o.weight ?? null,
      kvCache: o.kv ?? null,
      dtype,
      engine: engineName,
      prompts: r.prompts,
      quantizedLinears: quantized,
      excluded: r.excluded,
      ...a,
      perPrompt: r.perPrompt,
    };
    return out(`${JSON.stringify(result)}\n`);
  }
  const agree = Math.round(a.top1Agreement * a.positions);
  out(
    `model ${def.name}${adapter ? ` + LoRA ${adapter.dir}` : ""}, ${describeQuant(o)} (${dtype}${engineName === "torch" ? `, torch engine on ${flags.device ?? "cpu"}` : ""}) against the unquantized model, ${r.prompts} prompts (${a.positions} positions):\n`,
  );
  out(`  relative logit error  ${a.relLogitError.toExponential(3)}\n`);
  out(`  top-1 agreement       ${(100 * a.top1Agreement).toFixed(1)}% (${agree}/${a.positions})\n`);
  out(`  KL divergence         ${a.klDivergence.toExponential(3)} nats/token\n`);
  if (o.weight)
    out(
      `  ${quantized} Linear${quantized === 1 ? "" : "s"} quantized${r.excluded.length ? `, ${r.excluded.length} kept by quantize: false hints` : ""}; lm_head and embeddings stay unquantized\n`,
    );
}

interface EvalResult {
  readonly dtype: string;
  readonly prompts: number;
  readonly quantized: number;
  readonly excluded: readonly string[];
  readonly accuracy: QuantAccuracy;
  readonly perPrompt: readonly QuantAccuracy[];
}

/** The adapted model against the base model over the prompts: what the adapter changes. */
async function evalAdapter(def: ModelDefinition<unknown>, flags: EvalFlags, adapter: LoraAdapter, out: (s: string) => void): Promise<void> {
  const base = await loadQuantizableModel(def, flags.hf);
  const tuned = await loadQuantizableModel(def, flags.hf, adapter);
  const prompts = await loadSamples(flags, base.vocab);
  const a = quantAccuracy(
    prompts.map((ids) => [logitsOf(base, ids), logitsOf(tuned, ids)] as const),
    base.vocab,
  );
  if (flags.json) return out(`${JSON.stringify({ model: def.name, lora: adapter.dir, loraModules: adapter.modules.length, prompts: prompts.length, ...a })}\n`);
  out(
    `model ${def.name} + LoRA ${adapter.dir} (${adapter.modules.length} modules) against the base model, ${prompts.length} prompts (${a.positions} positions):\n`,
  );
  out(`  relative logit change ${a.relLogitError.toExponential(3)}\n`);
  out(`  top-1 agreement       ${(100 * a.top1Agreement).toFixed(1)}% (${Math.round(a.top1Agreement * a.positions)}/${a.positions})\n`);
  out(`  KL divergence         ${a.klDivergence.toExponential(3)} nats/token\n`);
}
