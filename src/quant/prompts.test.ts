import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_PROMPTS, loadPrompts, parsePromptFile } from "./prompts.ts";

describe("prompt files", () => {
  it("reads one prompt per line, commas or spaces, skipping blanks and comments", () => {
    expect(parsePromptFile("# calibration set\n1, 2,3\n\n  4 5\t6  \r\n7\n", "p.txt")).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });
  it("names the file and line of a bad token", () => {
    expect(() => parsePromptFile("1,2\n3,x\n", "p.txt")).toThrow(/^p\.txt:2: 'x' is not a token id$/);
    expect(() => parsePromptFile("-1\n", "p.txt")).toThrow(/^p\.txt:1: '-1'/);
    expect(() => parsePromptFile("# nothing\n", "p.txt")).toThrow(/^p\.txt: no prompts/);
  });
  it("concatenates files in order and checks ids against the vocabulary", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-prompts-"));
    writeFileSync(join(dir, "a.txt"), "1 2\n");
    writeFileSync(join(dir, "b.txt"), "3\n");
    expect(await loadPrompts([join(dir, "a.txt"), join(dir, "b.txt")], 10)).toEqual([[1, 2], [3]]);
    await expect(loadPrompts([join(dir, "a.txt")], 2)).rejects.toThrow(/token id 2 is out of range for a vocabulary of 2 \(.*a\.txt\)$/);
  });
  it("defaults to the fixtures' prompts, which need a 512-token vocabulary", async () => {
    expect(await loadPrompts([], 512)).toEqual(DEFAULT_PROMPTS);
    expect(DEFAULT_PROMPTS.flat().length).toBe(30);
    await expect(loadPrompts([], 500)).rejects.toThrow(/token id 511 .*give --prompts/);
  });
});
