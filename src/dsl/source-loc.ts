// Finds the line of the user's model file that made a DSL call, from the (source-mapped) stack. The first frame
// outside Kiln's own src/ and bin/ (tests excepted) wins (the model file); when a whole forward lives in Kiln's module library, the first
// library frame is used instead; frames below the tracer (the code that started the trace) never count. Paths are
// reported relative to the working directory.
// This runs once per traced op, so the stack is captured as raw V8 call sites (no text for the whole stack) and only
// the frames walked are turned into positions: each one alone, by the stack formatter in effect (Node's
// source-map-aware one under tsx, Vitest's under tests; module.findSourceMap where none is installed), memoized per
// generated position. A frame therefore reads exactly as it would in `new Error().stack`, which is what this used to
// parse; the frame window and classification are unchanged. A short window is tried first (most searches end
// within a few frames) and the full one only when the search runs off its end.

import { findSourceMap } from "node:module";
import { relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { SourceLoc } from "../ir/graph.ts";

const INTERNAL_DIRS = [fileURLToPath(new URL("..", import.meta.url)), fileURLToPath(new URL("../../bin/", import.meta.url))];
const LIBRARY_DIR = fileURLToPath(new URL("./modules/", import.meta.url));
/** Frames below the tracer belong to whoever started the trace, not to the model. */
const TRACE_FILE = fileURLToPath(new URL("./trace.ts", import.meta.url));
const FRAME = /(?:\(|at )((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/;
/** The frames searched: 40 counting callerLocation's own, which is never the answer (it is Kiln's), so 39 above it. */
const WINDOW = 39;

interface Frame {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

type Format = (error: object, sites: NodeJS.CallSite[]) => unknown;

function parseFrame(line: string): Frame | undefined {
  const m = FRAME.exec(line);
  if (!m) return undefined;
  const file = m[1]!.startsWith("file://") ? fileURLToPath(m[1]!) : m[1]!;
  return { file, line: Number(m[2]), col: Number(m[3]) };
}

const isInternal = (file: string) => file.includes(`${sep}node_modules${sep}`) || file.startsWith("node:");
const isKiln = (file: string) => INTERNAL_DIRS.some((d) => file.startsWith(d)) && !file.endsWith(".test.ts");

/** What a frame's (mapped) file means for the search; a pure function of the file name. */
type Role = "skip" | "stop" | "user" | "library";
const roleOf = (file: string): Role =>
  isInternal(file) ? "skip" : file === TRACE_FILE ? "stop" : !isKiln(file) ? "user" : file.startsWith(LIBRARY_DIR) ? "library" : "skip";

const roles = new Map<string, Role>();
function role(file: string): Role {
  let r = roles.get(file);
  if (r === undefined) roles.set(file, (r = roleOf(file)));
  return r;
}

/** Node's source-map formatting of one frame, for runtimes where Error.prepareStackTrace is not exposed. */
function nodeFrameText(site: NodeJS.CallSite): string {
  const file = site.getFileName() ?? site.getEvalOrigin();
  const sm = process.sourceMapsEnabled && file ? findSourceMap(file) : undefined;
  const e = sm?.findEntry(site.getLineNumber()! - 1, site.getColumnNumber()! - 1) as
    | { originalSource?: string; originalLine?: number; originalColumn?: number }
    | undefined;
  if (e?.originalSource === undefined || e.originalLine === undefined || e.originalColumn === undefined) return `${site}`;
  const source = e.originalSource.startsWith("file://") ? fileURLToPath(e.originalSource) : e.originalSource;
  return `f (${source}:${e.originalLine + 1}:${e.originalColumn + 1})`;
}

/** The stack lines one call site prints as, parsed (usually one; none for native and anonymous frames). */
function framesOf(site: NodeJS.CallSite, format: Format | undefined): Frame[] {
  const text = format
    ? String(format({}, [site]))
        .split("\n")
        .slice(1)
    : [nodeFrameText(site)];
  return text.map(parseFrame).filter((f): f is Frame => f !== undefined);
}

const NO_FRAMES: Frame[] = [];
/** Parsed frames per generated position, valid for the formatter they were made with. */
const positions = new Map<string, Frame[]>();
let positionsFormat: Format | undefined;

function mappedFrames(site: NodeJS.CallSite, format: Format | undefined): Frame[] {
  const script = site.getFileName() ?? site.getScriptNameOrSourceURL();
  if (!script) return NO_FRAMES;
  const key = `${script}:${site.getLineNumber()}:${site.getColumnNumber()}`;
  let frames = positions.get(key);
  if (!frames) positions.set(key, (frames = framesOf(site, format)));
  return frames;
}

const rawSites: Format = (_error, sites) => sites;

/** The innermost `limit` raw call sites above `above`, as `new Error()` in its caller would capture them. */
function captureSites(limit: number, above: () => unknown): { sites: NodeJS.CallSite[]; format: Format | undefined } {
  const savedLimit = Error.stackTraceLimit;
  const format = Error.prepareStackTrace as Format | undefined;
  Error.stackTraceLimit = limit;
  Error.prepareStackTrace = rawSites as typeof Error.prepareStackTrace;
  try {
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, above);
    return { sites: holder.stack ?? [], format: typeof format === "function" ? format : undefined };
  } finally {
    Error.prepareStackTrace = format as typeof Error.prepareStackTrace;
    Error.stackTraceLimit = savedLimit;
  }
}

let relCwd = "";
const relFiles = new Map<string, string>();
function relFile(file: string): string {
  const cwd = process.cwd();
  if (cwd !== relCwd) (relCwd = cwd), relFiles.clear();
  let rel = relFiles.get(file);
  if (rel === undefined) relFiles.set(file, (rel = relative(cwd, file) || file));
  return rel;
}

const toLoc = (f: Frame): SourceLoc => ({ file: relFile(f.file), line: f.line, col: f.col });

/** The search over a captured window: the answer, or "more" when the window ended before the search did. */
function search(sites: readonly NodeJS.CallSite[], format: Format | undefined, complete: boolean): SourceLoc | undefined | "more" {
  if (format !== positionsFormat) positions.clear(), (positionsFormat = format);
  let library: Frame | undefined;
  for (const site of sites)
    for (const f of mappedFrames(site, format)) {
      const r = role(f.file);
      if (r === "stop") return library && toLoc(library);
      if (r === "user") return toLoc(f);
      if (r === "library") library ??= f;
    }
  return complete ? library && toLoc(library) : "more";
}

/** Most searches end within this many frames; a search that does not is redone over the full window. */
const SHORT_WINDOW = 10;

export function callerLocation(): SourceLoc | undefined {
  const short = captureSites(SHORT_WINDOW, callerLocation);
  const found = search(short.sites, short.format, short.sites.length < SHORT_WINDOW);
  if (found !== "more") return found;
  const full = captureSites(WINDOW, callerLocation);
  return search(full.sites, full.format, true) as SourceLoc | undefined;
}
