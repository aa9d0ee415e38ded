// Loading a model file: type-check it with ts-morph first (diagnostics as `file:line:col message`; nothing runs on a
// type error; the check runs in a child process, typecheck-worker.mjs, and its result is cached by content,
// typecheck-cache.ts), then import it and check that its default export is a Kiln model definition. "kiln" resolves to
// this package for the type checker as for the runtime.

import { checkInputFile } from "../io/input-file.ts";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isModelDefinition, type ModelDefinition } from "../dsl/define-model.ts";
import { cachedTypecheck, type CheckedProgram } from "./typecheck-cache.ts";

const KILN_INDEX = fileURLToPath(new URL("../index.ts", import.meta.url));

export class ModelFileError extends Error {}

export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export const formatDiagnostic = (d: Diagnostic): string => `${d.file}:${d.line}:${d.col} ${d.message}`;

const WORKER = fileURLToPath(new URL("./typecheck-worker.mjs", import.meta.url));
const TYPE_ROOTS = fileURLToPath(new URL("../../node_modules/@types", import.meta.url));

/** Runs the ts-morph check in a child process (its memory is gone before the command goes on). */
function checkInChild(abs: string): CheckedProgram<Diagnostic> {
  const r = spawnSync(process.execPath, [WORKER, abs, KILN_INDEX, TYPE_ROOTS], { encoding: "utf8", maxBuffer: 256 << 20, stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0)
    throw new ModelFileError(`${abs}: the type check failed to run: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n").at(-1)}`);
  return JSON.parse(r.stdout) as CheckedProgram<Diagnostic>;
}

/** Type errors of a model file (paths relative to the working directory); cached by content (typecheck-cache.ts). */
export function typecheckModelFile(path: string): Diagnostic[] {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new ModelFileError(`${path}: model file not found`);
  const { diagnostics } = cachedTypecheck(abs, () => checkInChild(abs));
  return diagnostics.map((d) => ({ ...d, file: isAbsolute(d.file) ? relative(process.cwd(), d.file) : d.file }));
}

/** The useful part of an import failure: its first line, plus the next ones while it ends with ":" (esbuild's
 *  "Transform failed with 1 error:" is followed by the file:line:col and the reason), at most 3 lines. */
function loadFailure(e: unknown): string {
  const lines = String((e as Error)?.message ?? e)
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let n = 1;
  while (n < Math.min(lines.length, 3) && lines[n - 1]!.endsWith(":")) n++;
  return lines.slice(0, n).join(" ");
}

export async function importModelFile(path: string): Promise<ModelDefinition> {
  const abs = resolve(path);
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(abs).href);
  } catch (e) {
    throw new ModelFileError(`${path}: failed to load: ${loadFailure(e)}`);
  }
  const exported = isModelDefinition(mod.default) ? mod.default : (mod.default as { default?: unknown } | undefined)?.default;
  if (!isModelDefinition(exported)) throw new ModelFileError(`${path}: the default export must be a model made with defineModel(...) from "kiln"`);
  return exported;
}

/** Type-check, then import. Throws ModelFileError listing the diagnostics when the file does not type-check. */
export async function loadModelFile(path: string, opts: { typecheck?: boolean } = {}): Promise<ModelDefinition> {
  if (existsSync(path)) checkInputFile(path, "the model file");
  if (opts.typecheck ?? true) {
    const diags = typecheckModelFile(path);
    if (diags.length)
      throw new ModelFileError(`${path} does not type-check (${diags.length} error${diags.length > 1 ? "s" : ""}):\n${diags.map(formatDiagnostic).join("\n")}`);
  }
  return importModelFile(path);
}
