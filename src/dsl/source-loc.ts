// Finds the line of the user's model file that made a DSL call, from the (source-mapped) stack. The first frame
// outside Kiln's own src/ and bin/ (tests excepted) wins (the model file); when a whole forward lives in Kiln's module library, the first
// library frame is used instead; frames below the tracer (the code that started the trace) never count. Paths are
// reported relative to the working directory.

import { relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { SourceLoc } from "../ir/graph.ts";

const INTERNAL_DIRS = [fileURLToPath(new URL("..", import.meta.url)), fileURLToPath(new URL("../../bin/", import.meta.url))];
const LIBRARY_DIR = fileURLToPath(new URL("./modules/", import.meta.url));
/** Frames below the tracer belong to whoever started the trace, not to the model. */
const TRACE_FILE = fileURLToPath(new URL("./trace.ts", import.meta.url));
const FRAME = /(?:\(|at )((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/;

function parseFrame(line: string): { file: string; line: number; col: number } | undefined {
  const m = FRAME.exec(line);
  if (!m) return undefined;
  const file = m[1]!.startsWith("file://") ? fileURLToPath(m[1]!) : m[1]!;
  return { file, line: Number(m[2]), col: Number(m[3]) };
}

const isInternal = (file: string) => file.includes(`${sep}node_modules${sep}`) || file.startsWith("node:");
const isKiln = (file: string) => INTERNAL_DIRS.some((d) => file.startsWith(d)) && !file.endsWith(".test.ts");

export function callerLocation(): SourceLoc | undefined {
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = saved;
  let library: SourceLoc | undefined;
  for (const line of stack.split("\n").slice(1)) {
    const f = parseFrame(line);
    if (!f || isInternal(f.file)) continue;
    if (f.file === TRACE_FILE) break;
    const loc = { file: relative(process.cwd(), f.file) || f.file, line: f.line, col: f.col };
    if (!isKiln(f.file)) return loc;
    if (!library && f.file.startsWith(LIBRARY_DIR)) library = loc;
  }
  return library;
}
