// Inputs are checked by type before they are opened: opening a FIFO blocks until a writer comes (forever, in the
// thread pool, where not even process.exit helps), a device never ends, and a directory fails with an EISDIR that
// names no path. Each check throws InputFileError naming the path, what it was given as, and what it is.

import { type Stats, statSync } from "node:fs";
import { describeFsError, InputFileError } from "./kiln-error.ts";

function typeOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

function stat(path: string, what: string): Stats {
  try {
    return statSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") throw new InputFileError(`${path}: ${what} not found`);
    throw new InputFileError(describeFsError(err, `cannot read ${what}`));
  }
}

/** Throws unless `path` is (or links to) a regular file. */
export function checkInputFile(path: string, what: string): void {
  const st = stat(path, what);
  if (!st.isFile()) throw new InputFileError(`${path}: ${what} is ${typeOf(st)}, not a regular file`);
}

/** Throws unless `path` is (or links to) a directory. */
export function checkInputDir(path: string, what: string): void {
  const st = stat(path, what);
  if (!st.isDirectory()) throw new InputFileError(`${path}: ${what} is ${st.isFile() ? "a file" : typeOf(st)}, not a directory`);
}
