// Calibration and evaluation prompts as token ids. A prompt file holds one prompt per line, ids separated by
// commas and/or whitespace; blank lines and lines starting with `#` are skipped. Without files, the built-in
// prompts are the ones the test fixtures' golden outputs were generated from (test/fixtures/hf/*/golden.safetensors
// and the real TinyStories model's), all below 512, so they fit every fixture's vocabulary.
// Invariant: every prompt is non-empty and every id is an integer in [0, vocab).

import { readFile } from "node:fs/promises";
import { checkInputFile } from "../io/input-file.ts";
import { QuantError } from "../numerics/quant-error.ts";

export const DEFAULT_PROMPTS: readonly (readonly number[])[] = [
  [7, 300, 12, 45, 99, 3, 511, 250, 1, 64, 128],
  [42, 17, 5, 260, 77, 9],
  [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315],
  [1],
];

/** Parses a prompt file's text; `file` names it in errors (with the line). */
export function parsePromptFile(text: string, file: string): number[][] {
  const prompts: number[][] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.trim();
    if (s === "" || s.startsWith("#")) return;
    prompts.push(
      s
        .split(/[\s,]+/)
        .filter(Boolean)
        .map((tok) => {
          if (!/^\d+$/.test(tok) || !Number.isSafeInteger(Number(tok))) throw new QuantError(`${file}:${i + 1}: '${tok}' is not a token id`);
          return Number(tok);
        }),
    );
  });
  if (!prompts.length) throw new QuantError(`${file}: no prompts (one line of token ids per prompt)`);
  return prompts;
}

/** Checks every id against the vocabulary; `source` names the prompts in the error. */
export function checkPrompts<P extends readonly (readonly number[])[]>(prompts: P, vocab: number, source: string): P {
  for (const p of prompts) {
    const bad = p.find((id) => id >= vocab);
    if (bad !== undefined) throw new QuantError(`prompt token id ${bad} is out of range for a vocabulary of ${vocab} (${source})`);
  }
  return prompts;
}

/** The prompts of every file, in order (not checked against a vocabulary). */
export const readPromptFiles = async (files: readonly string[]): Promise<number[][]> =>
  (
    await Promise.all(
      files.map(async (f) => {
        checkInputFile(f, "the prompt file");
        return parsePromptFile(await readFile(f, "utf8"), f);
      }),
    )
  ).flat();

/** The prompts of every file, in order, or the built-in ones when no file is given; checked against `vocab`. */
export async function loadPrompts(files: readonly string[], vocab: number): Promise<number[][]> {
  if (!files.length)
    return checkPrompts(
      DEFAULT_PROMPTS.map((p) => [...p]),
      vocab,
      "the built-in prompts need 512 tokens; give --prompts",
    );
  return checkPrompts(await readPromptFiles(files), vocab, files.join(", "));
}
