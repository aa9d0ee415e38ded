// Runs check_api.py (beside this file) on an emitted Python file and returns what it found: whether every
// tensorrt_llm name, call and keyword in it exists in the TensorRT-LLM API manifest(s).
// Invariants: synchronous; findings about the checked file are data (`ok: false`), never exceptions;
// ApiCheckError is thrown only when the checker itself cannot run or answers something unreadable.

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { z } from "zod";

const SCRIPT = fileURLToPath(new URL("./check_api.py", import.meta.url));

export class ApiCheckError extends Error {
  override name = "ApiCheckError";
}

const Position = { line: z.number().int(), col: z.number().int() };
const ReportSchema = z.object({
  ok: z.boolean(),
  problems: z.array(z.object({ ...Position, message: z.string() })),
  checked: z.number().int(),
  unverified: z.array(z.object({ ...Position, name: z.string() })),
});

/** `problems`: what the manifests prove wrong. `checked`: references proven right (coverage).
 *  `unverified`: references the manifests cannot describe (modules or bases they do not cover). */
export type ApiCheckResult = z.infer<typeof ReportSchema>;
export type ApiProblem = ApiCheckResult["problems"][number];

export interface ApiCheckOptions {
  /** Python interpreter; default `$KILN_PYTHON`, else `python3`. Any Python >= 3.9, stdlib only. */
  python?: string;
  /** Manifest JSON file(s); default: trtllm-1.2.json beside the script. Several load at once, routed by module prefix. */
  manifest?: string | readonly string[];
  /** Count references the manifests cannot check as problems. */
  strict?: boolean;
}

export function checkPythonApi(file: string, opts: ApiCheckOptions = {}): ApiCheckResult {
  const python = opts.python ?? process.env.KILN_PYTHON ?? "python3";
  const manifests = typeof opts.manifest === "string" ? [opts.manifest] : (opts.manifest ?? []);
  const args = [SCRIPT, file, "--json", ...manifests.flatMap((m) => ["--manifest", m]), ...(opts.strict ? ["--strict"] : [])];
  const run = spawnSync(python, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (run.error) throw new ApiCheckError(`${file}: cannot run ${python}: ${run.error.message}`);
  // Exit 0: clean, 1: problems found; anything else means the checker failed (bad manifest, missing file).
  if (run.status !== 0 && run.status !== 1) {
    const why = run.stderr.trim().split("\n").at(-1) ?? `signal ${run.signal}`;
    throw new ApiCheckError(`${file}: check_api.py exited with ${run.status ?? run.signal}: ${why}`);
  }
  return parseReport(file, run.stdout);
}

function parseReport(file: string, stdout: string): ApiCheckResult {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new ApiCheckError(`${file}: check_api.py printed no JSON report: ${stdout.slice(0, 200)}`);
  }
  const parsed = ReportSchema.safeParse(json);
  if (!parsed.success) throw new ApiCheckError(`${file}: malformed check_api.py report: ${parsed.error.message.split("\n")[0]}`);
  return parsed.data;
}

/** `file:line:col: message` lines, for assertion messages and logs. */
export function formatApiProblems(file: string, result: ApiCheckResult): string {
  return result.problems.map((p) => `${file}:${p.line}:${p.col}: ${p.message}`).join("\n");
}
