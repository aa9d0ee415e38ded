// A small writer for generated Python: indentation by blocks, comments, PEP 8 blank lines, calls and signatures
// that fit in 79 columns or wrap one argument per line (black style, trailing comma), and an import collector that
// prints only the names actually used, sorted. Output is deterministic: the same calls give the same text.
// Invariants: indentation is 4 spaces; no line has trailing whitespace; the file ends with exactly one newline.

import { pyCommentText } from "./identifiers.ts";

export const MAX_LINE = 79;
const INDENT = "    ";

export class PyWriter {
  private readonly lines: string[] = [];
  private depth = 0;

  get indent(): string {
    return INDENT.repeat(this.depth);
  }

  line(text = ""): this {
    this.lines.push(text === "" ? "" : `${this.indent}${text}`);
    return this;
  }

  /** Blank lines, collapsing with blank lines already written (PEP 8: 2 around top-level defs, 1 between methods). */
  blank(n = 1): this {
    let have = 0;
    for (let i = this.lines.length - 1; i >= 0 && this.lines[i] === ""; i--) have++;
    if (this.lines.length > 0) for (let k = have; k < n; k++) this.lines.push("");
    return this;
  }

  /** `# text` with the text reduced to one printable ASCII line; long comments wrap at word boundaries. */
  comment(text: string): this {
    const words = pyCommentText(text).split(" ");
    let cur = "";
    const width = MAX_LINE - this.indent.length - 2;
    for (const w of words) {
      if (cur && cur.length + 1 + w.length > width) {
        this.line(`# ${cur}`);
        cur = w;
      } else cur = cur ? `${cur} ${w}` : w;
    }
    return this.line(cur ? `# ${cur}` : "#");
  }

  /** A docstring; `text` lines are written as given (callers pass generated text, never raw user input). */
  docstring(text: readonly string[]): this {
    if (text.length === 1) return this.line(`"""${text[0]}"""`);
    this.line(`"""${text[0]}`);
    for (const t of text.slice(1)) this.line(t);
    return this.line('"""');
  }

  block(header: string, body: () => void): this {
    this.line(header);
    return this.indented(body);
  }

  /** A block whose header wraps like a call: `def f(\n    a,\n):` when it does not fit on one line. */
  blockCall(head: string, args: readonly string[], body: () => void): this {
    this.call(head, args, ":");
    return this.indented(body);
  }

  private indented(body: () => void): this {
    this.depth++;
    const before = this.lines.length;
    body();
    if (this.lines.length === before) this.line("pass");
    this.depth--;
    return this;
  }

  /** `head(arg, ...)tail` on one line when it fits, else one argument per line with a trailing comma. */
  call(head: string, args: readonly string[], tail = ""): this {
    for (const l of wrapCall(this.indent, head, args, tail)) this.lines.push(l);
    return this;
  }

  /** `target = expr`, wrapped in parentheses on its own line when it does not fit; a call too long even for that
   *  is wrapped one argument per line (a MoE helper call with many weights). */
  assign(target: string, expr: string): this {
    const one = `${target} = ${expr}`;
    if (this.indent.length + one.length <= MAX_LINE) return this.line(one);
    const call = this.indent.length + INDENT.length + expr.length > MAX_LINE ? splitCall(expr) : undefined;
    if (call) return this.call(`${target} = ${call.head}`, call.args);
    return this.line(`${target} = (`).line(`${INDENT}${expr}`).line(")");
  }

  toString(): string {
    const out = [...this.lines];
    while (out.length && out[out.length - 1] === "") out.pop();
    return `${out.join("\n")}\n`;
  }
}

/** `head(a, b, ...)` split into its head and top-level arguments, or undefined when expr is not one such call. */
export function splitCall(expr: string): { head: string; args: string[] } | undefined {
  const open = /^[A-Za-z_][\w.]*\(/.exec(expr)?.[0].length;
  if (open === undefined || !expr.endsWith(")")) return undefined;
  const args: string[] = [];
  let depth = 0;
  let quote = "";
  let start = open;
  for (let i = open; i < expr.length - 1; i++) {
    const ch = expr[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ("([{".includes(ch)) depth++;
    else if (")]}".includes(ch)) {
      if (--depth < 0) return undefined; // the call closes before the end: `f(a)(b)` or `f(a) + g(b)`
    } else if (ch === "," && depth === 0) {
      args.push(expr.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (depth !== 0 || quote) return undefined;
  args.push(expr.slice(start, -1).trim());
  return { head: expr.slice(0, open - 1), args: args.filter((a) => a.length > 0) };
}

/** The lines of `head(args)tail` at indentation `indent`: one line if it fits in MAX_LINE, else wrapped. */
export function wrapCall(indent: string, head: string, args: readonly string[], tail = ""): string[] {
  const one = `${indent}${head}(${args.join(", ")})${tail}`;
  if (one.length <= MAX_LINE || args.length === 0) return [one];
  return [`${indent}${head}(`, ...args.map((a) => `${indent}${INDENT}${a},`), `${indent})${tail}`];
}

/** Collects `from module import name [as alias]` uses and prints them grouped by module, sorted. */
export class Imports {
  private readonly byModule = new Map<string, Set<string>>();

  /** Registers `name` from `module` and returns the local name to use in code. */
  use(module: string, name: string, alias?: string): string {
    const set = this.byModule.get(module) ?? new Set<string>();
    set.add(alias ? `${name} as ${alias}` : name);
    this.byModule.set(module, set);
    return alias ?? name;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const mod of [...this.byModule.keys()].sort()) {
      const names = [...this.byModule.get(mod)!].sort();
      const one = `from ${mod} import ${names.join(", ")}`;
      if (one.length <= MAX_LINE) out.push(one);
      else out.push(`from ${mod} import (`, ...names.map((n) => `${INDENT}${n},`), ")");
    }
    return out;
  }
}
