// One rule for every command that writes. Kiln never deletes or replaces anything it did not create:
// - an output folder is replaced only when it is empty, carries Kiln's marker file (OUTPUT_MARKER, written into
//   every folder Kiln produces), or the user passed --force;
// - always refused, --force or not: "", ".", "/", the home directory, the current directory or any folder holding
//   it, any input or any folder holding an input (the --hf folder, its parents, the model file, calibration and
//   prompt files), and anything that is not a folder (files, FIFOs, devices, symbolic links);
// - single-file outputs are written to a temp file beside them and renamed into place; they never overwrite an
//   input, a folder or a special file;
// - temp paths carry the owning pid (`.<name>.kiln-tmp-<pid>-<hex>`); every run first removes those whose process
//   is gone (a SIGKILLed run), and signals remove the live ones (signal-cleanup.ts).
// Paths are compared after resolving symbolic links, so a link cannot smuggle an input past the check.

import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, type Stats, writeFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve, sep } from "node:path";
import { describeFsError, OutputError } from "./kiln-error.ts";
import { removeOnSignal } from "./signal-cleanup.ts";

export const OUTPUT_MARKER = ".kiln-output";

export interface OutputRules {
  /** The flag that named the output, for messages (e.g. "--out"). */
  readonly flag: string;
  /** Every path the command reads: they and the folders holding them are never written. */
  readonly inputs?: readonly (string | undefined)[];
  /** Replace an existing non-empty folder that has no Kiln marker. */
  readonly force?: boolean;
}

/** `p` with symbolic links resolved as far as the path exists (the rest appended), so links cannot hide identity. */
export function canonical(p: string): string {
  const abs = resolve(p);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = dirname(head);
      if (parent === head) return abs;
      tail.push(basename(head));
      head = parent;
    }
  }
}

const holds = (outer: string, inner: string) => inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new OutputError(describeFsError(e as NodeJS.ErrnoException, "cannot check the output path"));
  }
}

export function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFile()) return "a regular file";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "a special file";
}

/** The refusals that hold even with --force; returns the absolute path. */
function checkNeverWritten(raw: string, rules: OutputRules): string {
  const { flag } = rules;
  if (raw.trim() === "") throw new OutputError(`${flag} is empty (an unset variable?); give an output path`);
  const abs = resolve(raw);
  const real = canonical(raw);
  const named = (what: string) => new OutputError(`${flag} ${raw}: refusing to write ${what}`);
  if (abs === sep || real === sep) throw named("over the root directory");
  const home = canonical(homedir());
  if (real === home || abs === resolve(homedir())) throw named("over the home directory");
  const cwd = canonical(process.cwd());
  if (holds(real, cwd) || holds(abs, process.cwd()))
    throw named(real === cwd ? "over the current directory" : "over a folder that holds the current directory");
  for (const input of rules.inputs ?? []) {
    if (input === undefined || input === "") continue;
    const ri = canonical(input);
    if (holds(real, ri) || holds(abs, resolve(input))) throw named(real === ri ? `over its own input ${input}` : `over a folder that holds the input ${input}`);
    if (holds(ri, real) && existsSync(real) && !existsSync(join(real, OUTPUT_MARKER)))
      throw named(`over ${real}, which is inside the input ${input} and was not written by Kiln`);
  }
  return abs;
}

/** Checks an output folder path before any work; returns it absolute. Throws OutputError with the reason. */
export function checkOutputDir(raw: string, rules: OutputRules): string {
  const abs = checkNeverWritten(raw, rules);
  const st = lstatOrUndefined(abs);
  if (!st) return abs;
  if (!st.isDirectory()) throw new OutputError(`${rules.flag} ${raw}: is ${kindOf(st)}, not a directory; refusing to replace it`);
  let entries: string[];
  try {
    entries = readdirSync(abs);
  } catch (e) {
    throw new OutputError(describeFsError(e as NodeJS.ErrnoException, `${rules.flag} ${raw}: cannot read the existing directory`));
  }
  if (entries.length === 0 || entries.includes(OUTPUT_MARKER) || rules.force) return abs;
  throw new OutputError(
    `${rules.flag} ${raw}: the directory exists and was not written by Kiln (no ${OUTPUT_MARKER} marker); pass --force to replace it, or choose a new path`,
  );
}

/** Checks a single-file output path before any work; returns it absolute. Existing regular files are replaced. */
export function checkOutputFile(raw: string, rules: OutputRules): string {
  const abs = checkNeverWritten(raw, rules);
  const st = lstatOrUndefined(abs);
  if (st && !st.isFile() && !st.isSymbolicLink()) throw new OutputError(`${rules.flag} ${raw}: is ${kindOf(st)}, not a file; refusing to replace it`);
  if (st?.isSymbolicLink()) {
    const target = canonical(abs);
    const t = lstatOrUndefined(target);
    if (t && !t.isFile()) throw new OutputError(`${rules.flag} ${raw}: links to ${kindOf(t)}, not a file; refusing to replace it`);
  }
  const parent = lstatOrUndefined(dirname(abs));
  if (parent && !parent.isDirectory()) throw new OutputError(`${rules.flag} ${raw}: ${dirname(abs)} is ${kindOf(parent)}, not a directory`);
  return abs;
}

const TEMP_NAME = /^\.(.+)\.kiln-(tmp|old)-(\d+)(?:-[0-9a-f]+)?(\.old)?$/;
/** The safetensors writer's temp files (src/weights/safetensors.ts): `<name>.tmp-<pid>-<12 hex>`. */
const WRITER_TEMP_NAME = /^(.+)\.tmp-(\d+)-[0-9a-f]{12}$/;

export function tempName(target: string, kind: "tmp" | "old" = "tmp"): string {
  return join(dirname(target), `.${basename(target)}.kiln-${kind}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temp files and folders in `dir` whose owning process is gone (a run killed by SIGKILL or a crash).
 * A previous output set aside by a run that died between its two renames is put back when nothing took its place.
 * Returns the names removed or restored.
 */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const name of names) {
    try {
      sweep(dir, name, done);
    } catch {
      // another run may be sweeping the same folder; leave it
    }
  }
  return done;
}

/** Removes (or, for a set-aside previous output with nothing in its place, restores) one dead run's temp. */
function sweep(dir: string, name: string, done: string[]): void {
  const path = join(dir, name);
  const w = WRITER_TEMP_NAME.exec(name);
  if (w) {
    if (processAlive(Number(w[2]))) return;
    rmSync(path, { force: true, recursive: true });
    done.push(name);
    return;
  }
  const m = TEMP_NAME.exec(name);
  if (!m || processAlive(Number(m[3]))) return;
  const original = join(dir, m[1]!);
  if ((m[2] === "old" || m[4]) && !existsSync(original)) renameSync(path, original);
  else rmSync(path, { recursive: true, force: true });
  done.push(name);
}

function fsFailure(e: unknown, what: string): unknown {
  const err = e as NodeJS.ErrnoException;
  return typeof err?.code === "string" ? new OutputError(describeFsError(err, what), { cause: e }) : e;
}

export interface StagedDir {
  /** Write everything here; it becomes the output on commit(). */
  readonly tmp: string;
  /** Marks the folder as Kiln's and renames it over the output (the previous output is removed after). */
  commit(marker?: Record<string, unknown>): Promise<void>;
  /** Removes the temp folder; the previous output is untouched. */
  abort(): Promise<void>;
}

/** A temp folder beside `out` (checked with checkOutputDir first), removed on signals and on abort(). */
export async function stageOutputDir(out: string, producer: string): Promise<StagedDir> {
  const parent = dirname(out);
  await mkdir(parent, { recursive: true }).catch((e) => {
    throw fsFailure(e, `cannot create the folder for ${out}`);
  });
  removeStaleTemps(parent);
  const tmp = tempName(out);
  await mkdir(tmp).catch((e) => {
    throw fsFailure(e, `cannot create a temp folder beside ${out}`);
  });
  const unregister = removeOnSignal(tmp);
  return {
    tmp,
    async commit(marker = {}) {
      const old = tempName(out, "old");
      const unregisterOld = removeOnSignal(old);
      try {
        await writeFile(join(tmp, OUTPUT_MARKER), `${JSON.stringify({ producer: "kiln", command: producer, ...marker })}\n`);
        await rename(out, old).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "ENOENT") throw e;
        });
        try {
          await rename(tmp, out);
        } catch (e) {
          await rename(old, out).catch(() => {}); // put the previous output back
          throw e;
        }
        unregister();
        await rm(old, { recursive: true, force: true });
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        unregister();
        throw fsFailure(e, `writing ${out} failed`);
      } finally {
        unregisterOld();
      }
    },
    async abort() {
      await rm(tmp, { recursive: true, force: true });
      unregister();
    },
  };
}

/** Runs `write(tmp)` in a staged folder and commits it, or removes it on any failure. */
export async function writeOutputDir<T>(out: string, producer: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const staged = await stageOutputDir(out, producer);
  let result: T;
  try {
    result = await write(staged.tmp);
  } catch (e) {
    await staged.abort();
    throw fsFailure(e, `writing ${out} failed`);
  }
  await staged.commit();
  return result;
}

/** Writes one file atomically (temp file beside it, then rename); the path must have passed checkOutputFile. */
export async function writeOutputFile(out: string, data: string | Uint8Array): Promise<void> {
  const parent = dirname(out);
  removeStaleTemps(parent);
  const tmp = tempName(out);
  const unregister = removeOnSignal(tmp);
  try {
    await writeFile(tmp, data, { flag: "wx" });
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fsFailure(e, `writing ${out} failed`);
  } finally {
    unregister();
  }
}

/** writeOutputDir for small synchronous writers (Triton repositories): same temp folder, marker and renames. */
export function writeOutputDirSync<T>(out: string, producer: string, write: (tmp: string) => T): T {
  const parent = dirname(out);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw fsFailure(e, `cannot create the folder for ${out}`);
  }
  removeStaleTemps(parent);
  const tmp = tempName(out);
  const old = tempName(out, "old");
  const unregister = [removeOnSignal(tmp), removeOnSignal(old)];
  try {
    mkdirSync(tmp);
    const result = write(tmp);
    writeFileSync(join(tmp, OUTPUT_MARKER), `${JSON.stringify({ producer: "kiln", command: producer })}\n`);
    try {
      renameSync(out, old);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    try {
      renameSync(tmp, out);
    } catch (e) {
      if (existsSync(old)) renameSync(old, out); // put the previous output back
      throw e;
    }
    rmSync(old, { recursive: true, force: true });
    return result;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw fsFailure(e, `writing ${out} failed`);
  } finally {
    for (const u of unregister) u();
  }
}

/** Marks a folder that a tool Kiln started wrote in place (engines from trtllm-build), so a rerun may replace it. */
export function markOutputDir(dir: string, producer: string): void {
  try {
    writeFileSync(join(dir, OUTPUT_MARKER), `${JSON.stringify({ producer: "kiln", command: producer })}\n`);
  } catch {
    // the build succeeded; without the marker a rerun asks for --force, which is safe
  }
}
