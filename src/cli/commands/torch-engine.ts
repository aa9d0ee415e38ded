// The flags `kiln calibrate` and `kiln eval` share for the engine and the samples, and the runs of python-bridge
// behind them:
//   --engine interp|torch   the CPU interpreter (default) or Kiln's model in PyTorch (python-bridge/kiln_bridge/
//                           torch_engine.py, the hf target's code generated into a temporary job directory, removed
//                           afterwards, also on Ctrl-C);
//   --device cpu|cuda       where the torch engine runs (default cpu);
//   --torch-job DIR         write the torch engine's job to DIR and print the bridge command instead of running it
//                           (prepare on a machine with Node, run on a GPU machine with only Python);
//   --text FILE --tokenizer DIR [--samples N] [--seq-len N]
//                           samples from text, tokenized by the `tokenizers` library in the bridge
//                           (kiln_bridge/text_samples.py, which documents packing), for both engines.
// Python is found as `kiln verify` finds it; every failure is one `kiln:` line (no Python with torch, no CUDA, the
// bridge's own one-line error).

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ModelDefinition } from "../../dsl/define-model.ts";
import { removeOnSignal } from "../../io/signal-cleanup.ts";
import { shellCommand, shellPrependPath } from "../../io/shell.ts";
import { checkPrompts, loadPrompts } from "../../quant/prompts.ts";
import { type TorchJob, writeTorchJob } from "../../driver/torch-job.ts";
import { KilnError, UsageError } from "../errors.ts";
import { BRIDGE_DIR, findTorchPython } from "./verify.ts";

export type EngineName = "interp" | "torch";

export interface SampleFlags {
  readonly prompts?: string[];
  readonly text?: string;
  readonly tokenizer?: string;
  readonly samples?: string;
  readonly seqLen?: string;
}

export interface EngineFlags extends SampleFlags {
  readonly engine?: string;
  readonly device?: string;
  readonly torchJob?: string;
}

/** The torch engine or the bridge's tokenizer failed; the message is the bridge's one line. */
export class TorchEngineError extends KilnError {}

export function parseEngine(f: EngineFlags): EngineName {
  const engine = f.engine ?? "interp";
  if (engine !== "interp" && engine !== "torch") throw new UsageError(`--engine: expected interp or torch, got '${engine}'`);
  if (engine === "interp" && f.device !== undefined) throw new UsageError("--device applies to --engine torch only");
  if (engine === "interp" && f.torchJob !== undefined) throw new UsageError("--torch-job applies to --engine torch only");
  if (f.device !== undefined && f.device !== "cpu" && f.device !== "cuda") throw new UsageError(`--device: expected cpu or cuda, got '${f.device}'`);
  checkSampleFlags(f);
  return engine;
}

const positive = (v: string | undefined, flag: string): string | undefined => {
  if (v !== undefined && !/^[1-9]\d*$/.test(v)) throw new UsageError(`${flag}: expected a positive integer, got '${v}'`);
  return v;
};

function checkSampleFlags(f: SampleFlags): void {
  positive(f.samples, "--samples");
  positive(f.seqLen, "--seq-len");
  if (f.text === undefined) {
    if (f.tokenizer !== undefined || f.samples !== undefined || f.seqLen !== undefined)
      throw new UsageError("--tokenizer, --samples and --seq-len go with --text FILE");
    return;
  }
  if (f.prompts?.length) throw new UsageError("give --text or --prompts, not both");
  if (f.tokenizer === undefined) throw new UsageError("--text needs --tokenizer DIR (a directory holding tokenizer.json)");
}

/** The bridge's arguments for the samples: --text ... when given (the bridge tokenizes), else none. */
function textArgs(f: SampleFlags): string[] {
  if (f.text === undefined) return [];
  return [
    "--text",
    resolve(f.text),
    "--tokenizer",
    resolve(f.tokenizer!),
    ...(f.samples ? ["--samples", f.samples] : []),
    ...(f.seqLen ? ["--seq-len", f.seqLen] : []),
  ];
}

function python(): string {
  const p = findTorchPython();
  if (!p)
    throw new TorchEngineError(
      "no Python with torch found ($KILN_PYTHON, .venv/bin/python, /usr/bin/python3, python3); run .ci/setup-python.sh or set KILN_PYTHON",
    );
  return p;
}

/** Runs `python -m kiln_bridge ARGS`; returns stdout, or throws the bridge's last stderr line. */
function runBridge(args: readonly string[]): string {
  const env = { ...process.env, PYTHONPATH: [BRIDGE_DIR, process.env.PYTHONPATH].filter(Boolean).join(":") };
  const r = spawnSync(python(), ["-m", "kiln_bridge", ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 30 });
  if (r.status === 0) return r.stdout;
  const last = String(r.stderr ?? "")
    .trim()
    .split("\n")
    .filter(Boolean)
    .at(-1);
  throw new TorchEngineError((last ?? `the bridge exited with ${r.status ?? r.signal}`).replace(/^kiln_bridge \w+: error: /, ""));
}

/** Samples for the interpreter: token-id files or the built-in prompts, or --text tokenized by the bridge. */
export async function loadSamples(f: SampleFlags, vocab: number): Promise<number[][]> {
  if (f.text === undefined) return loadPrompts(f.prompts ?? [], vocab);
  const { prompts } = JSON.parse(runBridge(["tokenize", ...textArgs(f)])) as { prompts: number[][] };
  return checkPrompts(prompts, vocab, f.text);
}

export interface TorchRun {
  readonly job: TorchJob;
  /** The bridge's JSON result as text (kiln.calibration/1 for calibrate, the metrics for eval). */
  readonly result: string;
}

/**
 * Runs the torch engine's `command` (calibrate | eval) with `extra` bridge arguments. With --torch-job, writes the
 * job there instead and returns undefined after printing the command that runs it, which writes `jobOut`.
 */
export async function runTorchEngine<C>(
  def: ModelDefinition<C>,
  hfDir: string,
  command: "calibrate" | "eval",
  extra: readonly string[],
  f: EngineFlags,
  out: (s: string) => void,
  jobOut: string,
): Promise<TorchRun | undefined> {
  const keep = f.torchJob !== undefined;
  const dir = keep ? resolve(f.torchJob!) : await mkdtemp(join(tmpdir(), "kiln-torch-job-"));
  if (keep) {
    if (existsSync(dir) && readdirSync(dir).length) throw new UsageError(`--torch-job ${f.torchJob}: the directory exists and is not empty`);
    await mkdir(dir, { recursive: true });
  }
  const release = keep ? () => {} : removeOnSignal(dir);
  try {
    const job = await writeTorchJob(def, hfDir, dir);
    let sampleArgs = textArgs(f);
    if (!sampleArgs.length) {
      const prompts = await loadPrompts(f.prompts ?? [], job.vocab);
      await writeFile(join(dir, "prompts.txt"), `${prompts.map((p) => p.join(" ")).join("\n")}\n`);
      sampleArgs = ["--prompts", join(dir, "prompts.txt")];
    }
    const result = keep ? resolve(jobOut) : join(dir, "result.json");
    const args = [command, "--job", dir, "--hf", resolve(hfDir), "--device", f.device ?? "cpu", ...sampleArgs, ...extra, "--out", result];
    if (keep) {
      out(`kiln: wrote the torch job for model ${def.name} to ${f.torchJob}; run it with python-bridge on PYTHONPATH:\n`);
      out(`  ${shellPrependPath("PYTHONPATH", BRIDGE_DIR)} python3 ${shellCommand(["-m", "kiln_bridge", ...args])}\n`);
      return undefined;
    }
    runBridge(args);
    return { job, result: await readFile(result, "utf8") };
  } finally {
    if (!keep) {
      await rm(dir, { recursive: true, force: true });
      release();
    }
  }
}
