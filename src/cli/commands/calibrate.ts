// `kiln calibrate <model.ts> --hf DIR --out FILE [--prompts FILE...] [--json]`: run the unquantized model on the CPU
// over calibration prompts (token-id files, or the built-in prompts) and write the per-tensor absolute maxima that
// FP8 activation scales and KV-cache scales derive from (src/quant/calibration.ts). `kiln compile`, `kiln run` and
// `kiln eval` take the file with --calibration.

import { checkOutputFile, writeOutputFile } from "../../io/output-guard.ts";
import { formatCalibration } from "../../quant/calibration.ts";
import { loadPrompts } from "../../quant/prompts.ts";
import { calibrateModel, loadQuantizableModel } from "../../driver/quantized-model.ts";
import { loadModelFile } from "../../driver/load-model-file.ts";

export interface CalibrateFlags {
  readonly hf: string;
  readonly out: string;
  readonly prompts?: string[];
  readonly json?: boolean;
  readonly typecheck: boolean;
}

export async function calibrateCommand(file: string, flags: CalibrateFlags, out: (s: string) => void): Promise<void> {
  const outFile = checkOutputFile(flags.out, { flag: "--out", inputs: [file, flags.hf, ...(flags.prompts ?? [])] });
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  const m = await loadQuantizableModel(def, flags.hf);
  const prompts = await loadPrompts(flags.prompts ?? [], m.vocab);
  const c = calibrateModel(m, prompts);
  await writeOutputFile(outFile, formatCalibration(c));
  const linears = Object.keys(c.inputs).length;
  const attentions = Object.keys(c.kvCache).length;
  if (flags.json) return out(`${JSON.stringify({ model: def.name, out: flags.out, prompts: c.prompts, tokens: c.tokens, linears, attentions })}\n`);
  out(
    `kiln: calibrated model ${def.name} on ${c.prompts} prompt${c.prompts > 1 ? "s" : ""} (${c.tokens} tokens${flags.prompts?.length ? "" : ", built-in prompts"}): ${linears} Linear inputs, ${attentions} KV caches -> ${flags.out}\n`,
  );
}
