// `kiln verify OUT --hf DIR [--device cpu|cuda] [--dtype ...]`: execute what `kiln compile` wrote (a built-in
// checkpoint on the bridge's independent decoder, a custom model.py or a trtllm-torch package on the bridge's eager
// TensorRT-LLM) and compare its logits with DIR/golden.safetensors. `--lora ADAPTER=DIR` (trtllm-torch outputs compiled
// with --lora) adds DIR's prompts with that adapter to one packed batch with the base prompts. Runs `python -m kiln_bridge verify` with the
// first Python that imports torch, found as `npm test` finds it (scripts/python.mjs: $KILN_PYTHON, .venv/bin/python,
// /usr/bin/python3, python3); without one it fails with one line saying how to get one.
// Exit: 0 within tolerance; otherwise a one-line `kiln:` error (outside tolerance, or the bridge's own message).

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const BRIDGE_DIR = fileURLToPath(new URL("../../../python-bridge/", import.meta.url));
const REPO_VENV = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));

/** Verification did not pass: outside tolerance, or the bridge refused the directory. */
export class VerifyError extends Error {
  override name = "VerifyError";
}

export interface VerifyFlags {
  readonly hf: string;
  readonly device?: string;
  readonly dtype?: string;
  readonly tp?: string;
  readonly pp?: string;
  readonly kernel?: string[];
  readonly lora?: string[];
  readonly tol?: string;
  readonly json?: boolean;
}

/** The first interpreter that imports torch, in the order of scripts/python.mjs (plus this checkout's .venv). */
export function findTorchPython(run = spawnSync): string | undefined {
  const candidates = [process.env.KILN_PYTHON, ".venv/bin/python", REPO_VENV, "/usr/bin/python3", "python3"];
  return candidates
    .filter((p): p is string => !!p && (!p.includes("/") || existsSync(p)))
    .find((p) => run(p, ["-c", "import torch"], { stdio: "ignore" }).status === 0);
}

export function bridgeArgs(out: string, f: VerifyFlags): string[] {
  const args = ["-m", "kiln_bridge", "verify", "--ckpt", out, "--hf", f.hf, "--device", f.device ?? "cpu", "--dtype", f.dtype ?? "float32"];
  if (f.tp) args.push("--tp", f.tp);
  if (f.pp) args.push("--pp", f.pp);
  for (const k of f.kernel ?? []) args.push("--kernel", k);
  for (const l of f.lora ?? []) args.push("--lora", l);
  if (f.tol) args.push("--tol", f.tol);
  if (f.json) args.push("--json");
  return args;
}

export function verifyCommand(out: string, flags: VerifyFlags, write: (s: string) => void): void {
  const python = findTorchPython();
  if (!python)
    throw new VerifyError(
      "verify: no Python with torch found ($KILN_PYTHON, .venv/bin/python, /usr/bin/python3, python3); run .ci/setup-python.sh or set KILN_PYTHON",
    );
  const env = { ...process.env, PYTHONPATH: [BRIDGE_DIR, process.env.PYTHONPATH].filter(Boolean).join(":") };
  const r = spawnSync(python, bridgeArgs(out, flags), { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.stdout) write(r.stdout);
  if (r.status === 0) return;
  if (r.status === 1) throw new VerifyError(`verify: ${out}: logits outside tolerance against ${flags.hf}/golden.safetensors (report above)`);
  const lines = String(r.stderr ?? "")
    .trim()
    .split("\n")
    .filter((l) => l && !l.startsWith("["));
  const last = lines.at(-1) ?? `exit status ${r.status ?? r.signal}`;
  throw new VerifyError(last.replace(/^kiln_bridge verify: error: /, "verify: "));
}
