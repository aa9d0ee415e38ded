// The quantization flags shared by `kiln run`, `kiln eval`, `kiln compile` and `kiln calibrate`: --quant,
// --kv-cache, --dtype, --calibration FILE (kiln calibrate's output) and --prompts FILE... (token-id files; the
// built-in prompts otherwise). Each parser throws a one-line error naming the flag or file.

import { readFile } from "node:fs/promises";
import { checkInputFile } from "../../io/input-file.ts";
import { parseCalibration } from "../../quant/calibration.ts";
import { parseKvCacheQuant, parseWeightQuant } from "../../quant/schemes.ts";
import type { QuantDtype, QuantOptions } from "../../quant/spec.ts";
import { UsageError } from "../errors.ts";

export interface QuantFlags {
  readonly quant?: string;
  readonly kvCache?: string;
  readonly dtype?: string;
  readonly calibration?: string;
  readonly prompts?: string[];
}

const DTYPES: readonly QuantDtype[] = ["float32", "float16", "bfloat16"];

export function parseDtypeFlag(dtype: string | undefined): QuantDtype | undefined {
  if (dtype !== undefined && !(DTYPES as readonly string[]).includes(dtype))
    throw new UsageError(`--dtype: expected one of ${DTYPES.join(", ")}, got '${dtype}'`);
  return dtype as QuantDtype | undefined;
}

/** --quant / --kv-cache / --calibration as QuantOptions (the calibration file read and checked). */
export async function parseQuantFlags(flags: QuantFlags): Promise<QuantOptions> {
  const weight = flags.quant === undefined ? undefined : parseWeightQuant(flags.quant);
  const kv = flags.kvCache === undefined ? undefined : parseKvCacheQuant(flags.kvCache);
  if (flags.calibration !== undefined) checkInputFile(flags.calibration, "the calibration file (--calibration)");
  const calibration = flags.calibration === undefined ? undefined : parseCalibration(await readFile(flags.calibration, "utf8"), flags.calibration);
  return { ...(weight && { weight }), ...(kv && { kv }), ...(calibration && { calibration }) };
}

/** "--quant w8a16 --kv-cache fp8" as people type it. */
export const describeQuant = (o: QuantOptions): string =>
  [o.weight && `--quant ${o.weight}`, o.kv && `--kv-cache ${o.kv}`].filter(Boolean).join(" ") || "unquantized";
