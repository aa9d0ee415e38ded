// The type check's result cache: an unchanged model file is not type-checked again. An entry is found by the
// model's path, the working directory and Kiln's version (package version, TypeScript's version and the lockfile),
// and is valid only while every source file of the checked program (the model, the files it imports, Kiln's
// own sources; node_modules is covered by the versions) has the SHA-256 it had. Entries live in
// $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln (typecheck/<key>.json), written atomically;
// KILN_TYPECHECK_CACHE=0 turns the cache off. A cache that cannot be read or written is ignored.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface CheckedProgram<D> {
  readonly diagnostics: D[];
  /** Absolute paths of the program's source files outside node_modules. */
  readonly files: string[];
}

interface Entry<D> {
  readonly hashes: Record<string, string>;
  readonly diagnostics: D[];
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const readOr = (path: string, fallback = "") => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
};

let version: string | undefined;
/** Kiln's version for the cache: its package version, the TypeScript compiler's, and the lockfile. */
function kilnVersion(): string {
  version ??= sha256(
    [readOr(join(ROOT, "package.json")), readOr(join(ROOT, "node_modules/typescript/package.json")), readOr(join(ROOT, "package-lock.json"))].join("\0"),
  );
  return version;
}

export function cacheDir(): string {
  const base = process.env.KILN_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kiln");
  return join(base, "typecheck");
}

const hashFile = (path: string): string | undefined => {
  try {
    return sha256(readFileSync(path));
  } catch {
    return undefined;
  }
};

/** The diagnostics of `check()` for the model at `absPath`, from the cache when nothing it read has changed. */
export function cachedTypecheck<D>(absPath: string, check: () => CheckedProgram<D>): { diagnostics: D[]; cached: boolean } {
  if (process.env.KILN_TYPECHECK_CACHE === "0") return { diagnostics: check().diagnostics, cached: false };
  const file = join(cacheDir(), `${sha256([kilnVersion(), absPath, process.cwd()].join("\0"))}.json`);
  try {
    const entry = JSON.parse(readFileSync(file, "utf8")) as Entry<D>;
    if (Object.entries(entry.hashes).every(([p, h]) => hashFile(p) === h)) return { diagnostics: entry.diagnostics, cached: true };
  } catch {
    // no entry, or an unreadable one: check
  }
  const result = check();
  const hashes: Record<string, string> = {};
  for (const p of new Set([absPath, ...result.files])) {
    const h = hashFile(p);
    if (h === undefined) return { diagnostics: result.diagnostics, cached: false };
    hashes[p] = h;
  }
  try {
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ hashes, diagnostics: result.diagnostics } satisfies Entry<D>));
    renameSync(tmp, file);
  } catch {
    // a read-only or full cache directory only costs the next run a type check
  }
  return { diagnostics: result.diagnostics, cached: false };
}
