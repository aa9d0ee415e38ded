// The base class of every expected failure (bad input, a refused output path, a model that does not fit its
// weights). The CLI prints a KilnError as one `kiln: <message>` line with exit code 1; anything else is a Kiln bug
// and is reported as `internal error` with its stack. This folder (src/io) sits below every other folder of Kiln
// and imports none of them, so any layer may throw these.

export class KilnError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An output path Kiln refuses to write, or a write that failed for a reason the user can fix (ENOSPC, EROFS). */
export class OutputError extends KilnError {}

/** An input path that is missing, of the wrong type (FIFO, device, directory), or unreadable. */
export class InputFileError extends KilnError {}

/** Messages listing many problems: at most `limit` items, then "… and 999,990 more". */
export function capList(items: readonly string[], limit = 20, sep = "\n  "): string {
  if (items.length <= limit) return items.join(sep);
  return `${items.slice(0, limit).join(sep)}${sep}… and ${(items.length - limit).toLocaleString("en-US")} more`;
}

/** One line for a Node file-system error: what failed, on which path, and why in words. */
export function describeFsError(e: NodeJS.ErrnoException, what: string): string {
  const why: Record<string, string> = {
    ENOSPC: "no space left on the device",
    EDQUOT: "disk quota exceeded",
    EROFS: "the file system is read-only",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOTDIR: "a component of the path is not a directory",
    EISDIR: "it is a directory",
    ENOENT: "no such file or directory",
    ENAMETOOLONG: "the name is too long",
    EMFILE: "too many open files",
    EIO: "an I/O error",
    EEXIST: "it already exists",
  };
  const path = e.path ? `${e.path}: ` : "";
  return `${what}: ${path}${why[e.code ?? ""] ?? e.message}`;
}

/** File-system errors a user can fix: reported as one line, never as an internal error. */
export const USER_FS_CODES: ReadonlySet<string> = new Set([
  "ENOSPC",
  "EDQUOT",
  "EROFS",
  "EACCES",
  "EPERM",
  "ENOTDIR",
  "EISDIR",
  "ENOENT",
  "ENAMETOOLONG",
  "EMFILE",
  "ELOOP",
]);

/** Model sizes that cannot work: heads not dividing hidden, absurd layer counts, tp/pp that do not fit. */
export class ModelSizeError extends KilnError {}
