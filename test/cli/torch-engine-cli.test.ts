// `kiln calibrate|eval` with --engine torch, --torch-job and --text, through the CLI: one-line errors, the job route
// (prepare with Node, run the printed Python command), and text samples giving both engines the same maxima on the
// real TinyStories model (its tokenizer.json made from the fixture's vocabulary by
// python-bridge/tests/tinystories_tokenizer.py). Skipped with the reason when no Python with torch, transformers and
// tokenizers is found.

import { execFileSync, execSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs helper without type declarations
import { findPython } from "../../scripts/python.mjs";
import { parseCalibration } from "../../src/quant/calibration.ts";
import { FIXTURES, hasRealModel, REAL_TINYSTORIES } from "../golden.ts";
import { kiln } from "./kiln.ts";

const py: string | undefined = findPython(["torch", "transformers", "tokenizers"]);
const skip = py ? undefined : "no Python with torch, transformers and tokenizers";
const tmp = mkdtempSync(join(tmpdir(), "kiln-torch-cli-"));
const llama3 = `${FIXTURES}llama3_gqa`;

const maxima = (file: string) => {
  const c = parseCalibration(readFileSync(file, "utf8"), file);
  return [...Object.values(c.inputs), ...Object.values(c.kvCache).flatMap((kv) => [kv.k, kv.v])];
};
const worstRel = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / b[i]!));

describe("flag errors (no Python needed)", () => {
  it.each([
    [["--engine", "gpu"], "--engine: expected interp or torch, got 'gpu'"],
    [["--device", "cuda"], "--device applies to --engine torch only"],
    [["--engine", "torch", "--device", "tpu"], "--device: expected cpu or cuda, got 'tpu'"],
    [["--text", "x.txt"], "--text needs --tokenizer DIR"],
    [["--samples", "4"], "--tokenizer, --samples and --seq-len go with --text FILE"],
    [["--text", "x.txt", "--tokenizer", "d", "--seq-len", "0"], "--seq-len: expected a positive integer, got '0'"],
  ])("%j", async (flags, message) => {
    const r = await kiln(["calibrate", "models/llama.ts", "--hf", llama3, "--out", join(tmp, "e.json"), "--no-typecheck", ...flags]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`kiln: ${message}${message.endsWith("DIR") ? " (a directory holding tokenizer.json)" : ""}`);
  });
});

describe.skipIf(skip !== undefined)(`torch engine CLI${skip ? ` (SKIPPED: ${skip})` : ""}`, () => {
  it("--device cuda without a GPU is one line naming the device", async () => {
    const hasCuda = execFileSync(py!, ["-c", "import torch; print(torch.cuda.is_available())"], { encoding: "utf8" }).trim() === "True";
    if (hasCuda) return;
    const r = await kiln([
      "calibrate",
      "models/llama.ts",
      "--hf",
      llama3,
      "--out",
      join(tmp, "c.json"),
      "--engine",
      "torch",
      "--device",
      "cuda",
      "--no-typecheck",
    ]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toMatch(/^kiln: --device cuda: torch \S+ sees no CUDA device here$/);
  }, 300_000);

  it("--torch-job writes the job and prints a command that calibrates like the interpreter", async () => {
    const job = join(tmp, "job");
    const out = join(tmp, "from-job.json");
    const r = await kiln(["calibrate", "models/llama.ts", "--hf", llama3, "--out", out, "--engine", "torch", "--torch-job", job, "--no-typecheck"]);
    expect(r.code).toBe(0);
    expect(existsSync(join(job, "job.json")) && existsSync(join(job, "prompts.txt"))).toBe(true);
    const command = r.out
      .split("\n")[1]!
      .trim()
      .replace(/ python3 /, ` ${py} `);
    expect(command).toContain("-m kiln_bridge calibrate --job");
    execSync(command, { stdio: "pipe" });
    const ref = join(tmp, "interp.json");
    expect((await kiln(["calibrate", "models/llama.ts", "--hf", llama3, "--out", ref, "--no-typecheck"])).code).toBe(0);
    expect(worstRel(maxima(out), maxima(ref))).toBeLessThanOrEqual(1e-5);
    const again = await kiln(["calibrate", "models/llama.ts", "--hf", llama3, "--out", out, "--engine", "torch", "--torch-job", job, "--no-typecheck"]);
    expect(again.err.trim()).toMatch(/--torch-job .*job: the directory exists and is not empty$/);
  }, 300_000);

  it.skipIf(!hasRealModel)(
    "--text: both engines calibrate TinyStories on the same packed samples",
    async () => {
      const tok = join(tmp, "tok");
      execFileSync(py!, ["python-bridge/tests/tinystories_tokenizer.py", `${REAL_TINYSTORIES}vocab.json`, tok]);
      const text = join(tmp, "stories.jsonl");
      writeFileSync(
        text,
        ["Once upon a time, there was a little girl named Lily.", "She loved to play outside in the park.", "One day, she saw a big dog."]
          .map((t) => JSON.stringify({ text: t }))
          .join("\n"),
      );
      const flags = ["--text", text, "--tokenizer", tok, "--samples", "2", "--seq-len", "12", "--no-typecheck", "--json"];
      const [a, b] = [join(tmp, "text-interp.json"), join(tmp, "text-torch.json")];
      const ri = await kiln(["calibrate", "models/llama.ts", "--hf", REAL_TINYSTORIES, "--out", a, ...flags]);
      const rt = await kiln(["calibrate", "models/llama.ts", "--hf", REAL_TINYSTORIES, "--out", b, "--engine", "torch", ...flags]);
      expect([ri.code, rt.code]).toEqual([0, 0]);
      expect(JSON.parse(ri.out)).toMatchObject({ prompts: 2, tokens: 24, engine: "interp" });
      expect(JSON.parse(rt.out)).toMatchObject({ prompts: 2, tokens: 24, engine: "torch" });
      expect(worstRel(maxima(b), maxima(a))).toBeLessThanOrEqual(1e-5);
      const bad = await kiln([
        "calibrate",
        "models/llama.ts",
        "--hf",
        REAL_TINYSTORIES,
        "--out",
        a,
        ...flags.slice(0, 4),
        "--samples",
        "9",
        "--seq-len",
        "12",
        "--no-typecheck",
      ]);
      expect(bad.err.trim()).toMatch(/^kiln: --text .*stories\.jsonl: --samples 9 asks for more than the 3 windows of 12 tokens the text gives$/);
    },
    300_000,
  );
});
