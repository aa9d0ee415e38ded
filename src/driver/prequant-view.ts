// Opening a checkpoint directory the way every command needs it: a pre-quantized one (src/weights/prequant-format.ts)
// through its dequantized view, so binding and the interpreter see float weights, and its scales at hand for the
// quantizer. Quantization flags on an already-quantized checkpoint are refused with one line.

import type { Checkpoint } from "../weights/checkpoint.ts";
import { DequantSource } from "../weights/dequant-source.ts";
import { detectPrequant } from "../weights/prequant-format.ts";
import { QuantError } from "../numerics/quant-error.ts";
import type { QuantOptions } from "../quant/spec.ts";

/** A checkpoint directory's pre-quantized view, or undefined for a plain one. */
export async function openPrequant(hfDir: string, hf: Readonly<Record<string, unknown>>, ckpt: Checkpoint): Promise<DequantSource | undefined> {
  const format = detectPrequant(hfDir, hf);
  return format && (await DequantSource.open(ckpt, format));
}

/** --quant / --kv-cache / --calibration make no sense on a checkpoint that is already quantized. */
export function refuseQuantFlags(hfDir: string, what: string, o: QuantOptions | undefined): void {
  if (o && (o.weight !== undefined || o.kv !== undefined || o.calibration))
    throw new QuantError(`${hfDir} is already quantized (${what}): its own scales are used; drop --quant, --kv-cache and --calibration`);
}
