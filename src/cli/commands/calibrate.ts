// `kiln calibrate <model.ts> --hf DIR --out FILE [--prompts FILE... | --text FILE --tokenizer DIR [--samples N]
// [--seq-len N]] [--engine interp|torch] [--device cpu|cuda] [--json]`: run the unquantized model over calibration
// samples and write the per-tensor absolute maxima that FP8 activation scales and KV-cache scales derive from
// (src/quant/calibration.ts). The interpreter (default) runs on the CPU; `--engine torch` runs Kiln's model in PyTorch
// through python-bridge (torch-engine.ts), on the CPU or a GPU, and records the same maxima under the same names.
// `kiln compile`, `kiln run` and `kiln eval` take the file with --calibration.

import { checkOutputFile, writeOutputFile } from "../../io/output-guard.ts";
import { type Calibration, formatCalibration, parseCalibration } from "../../quant/calibration.ts";
import { calibrateModel, loadQuantizableModel } from "../../driver/quantized-model.ts";
import { loadModelFile } from "../../driver/load-model-file.ts";
import { type EngineFlags, loadSamples, parseEngine, runTorchEngine } from "./torch-engine.ts";

export interface CalibrateFlags extends EngineFlags {
  readonly hf: string;
  readonly out: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

export async function calibrateCommand(file: string, flags: CalibrateFlags, out: (s: string) => void): Promise<void> {
  const engine = parseEngine(flags);
  const inputs = [file, flags.hf, ...(flags.prompts ?? []), ...(flags.text ? [flags.text] : [])];
  const outFile = checkOutputFile(flags.out, { flag: "--out", inputs });
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  let c: Calibration;
  if (engine === "torch") {
    const run = await runTorchEngine(def, flags.hf, "calibrate", [], flags, out, flags.out);
    if (!run) return;
    c = parseCalibration(run.result, "the torch engine's calibration");
  } else {
    const m = await loadQuantizableModel(def, flags.hf);
    c = calibrateModel(m, await loadSamples(flags, m.vocab));
  }
  await writeOutputFile(outFile, formatCalibration(c));
  const linears = Object.keys(c.inputs).length;
  const attentions = Object.keys(c.kvCache).length;
  if (flags.json) return out(`${JSON.stringify({ model: def.name, out: flags.out, engine, prompts: c.prompts, tokens: c.tokens, linears, attentions })}\n`);
  const source = flags.text ? `, text ${flags.text}` : flags.prompts?.length ? "" : ", built-in prompts";
  out(
    `kiln: calibrated model ${def.name} on ${c.prompts} prompt${c.prompts > 1 ? "s" : ""} (${c.tokens} tokens${source}${engine === "torch" ? `, torch engine on ${flags.device ?? "cpu"}` : ""}): ${linears} Linear inputs, ${attentions} KV caches -> ${flags.out}\n`,
  );
}
