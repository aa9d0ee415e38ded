// Python literals for JSON values that wrap like black: one line when it fits in 79 columns, else one element per
// line with trailing commas, recursively. Used for config defaults and module-level constants of generated code.

import { pyLiteral, type PyJson, pyString } from "../python/identifiers.ts";
import { MAX_LINE, type PyWriter } from "../python/writer.ts";

/** Lines of the literal; `used` is the width already taken on its first line. */
export function literalLines(v: PyJson, used: number): string[] {
  const one = pyLiteral(v);
  if (used + one.length <= MAX_LINE || v === null || typeof v !== "object") return [one];
  const items = Array.isArray(v)
    ? (v as readonly PyJson[]).map((x) => literalLines(x, 8))
    : Object.entries(v as Record<string, PyJson>).map(([k, x]) => {
        const inner = literalLines(x, 8 + pyString(k).length + 2);
        return [`${pyString(k)}: ${inner[0]}`, ...inner.slice(1)];
      });
  const [open, close] = Array.isArray(v) ? ["[", "]"] : ["{", "}"];
  return [open, ...items.flatMap((it) => it.map((l, i) => `    ${l}${i === it.length - 1 ? "," : ""}`)), close];
}

/** `name = <literal>` at the writer's indentation, wrapped by literalLines. */
export function assignLiteral(w: PyWriter, name: string, v: PyJson): void {
  const lines = literalLines(v, w.indent.length + name.length + 3);
  w.line(`${name} = ${lines[0]}`);
  for (const l of lines.slice(1)) w.line(l);
}
