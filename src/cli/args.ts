// Parsing of CLI flag values shared by several commands; each parser throws UsageError naming the flag.

import { UsageError } from "./errors.ts";

export function parseIds(text: string, flag = "--ids"): number[] {
  const parts = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (!parts.length) throw new UsageError(`${flag}: give comma-separated token ids, e.g. ${flag} 1,2,3`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(Number(p))) throw new UsageError(`${flag}: '${p}' is not a non-negative integer token id`);
    return Number(p);
  });
}

/** A non-negative integer flag; at most 2^31 - 1, so no count can size an absurd allocation or loop. */
export function parseCount(text: string, flag: string, min = 0, max = 2 ** 31 - 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got '${text.slice(0, 40)}'`);
  if (Number(text) > max) throw new UsageError(`${flag}: ${text.slice(0, 40)} is too large (at most ${max.toLocaleString("en-US")})`);
  return Number(text);
}

/** --tp / --pp / --moe-tp / --moe-ep as a Mapping (the MoE sizes only when given). */
export function parseMapping(flags: { readonly tp: string; readonly pp: string; readonly moeTp?: string; readonly moeEp?: string }) {
  return {
    tp: parseCount(flags.tp, "--tp", 1),
    pp: parseCount(flags.pp, "--pp", 1),
    ...(flags.moeTp !== undefined && { moeTp: parseCount(flags.moeTp, "--moe-tp", 1) }),
    ...(flags.moeEp !== undefined && { moeEp: parseCount(flags.moeEp, "--moe-ep", 1) }),
  };
}
