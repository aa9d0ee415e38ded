// Deterministic, human-readable IR text. Values are renumbered in definition order, so two graphs that compute the
// same thing the same way print identically whatever ids passes happened to allocate; attributes print in schema
// order. Stable enough for inline snapshot tests.

import { formatAttr, stableJson } from "./attrs.ts";
import type { Graph, ValueId } from "./graph.ts";
import { opDef } from "./ops.ts";
import { formatShape } from "./shape.ts";

export interface PrintOptions {
  /** Print source locations as trailing comments (default true). */
  readonly locations?: boolean;
}

export function printGraph(g: Graph, opts: PrintOptions = {}): string {
  const showLoc = opts.locations ?? true;
  const num = new Map<ValueId, number>();
  const name = (v: ValueId) => {
    if (!num.has(v)) num.set(v, num.size);
    return `%${num.get(v)}`;
  };
  const typeOf = (v: ValueId) => {
    const t = g.values.get(v);
    return t ? `${t.dtype}${formatShape(t.shape)}` : "?";
  };
  const lines = [`graph ${g.name} {`];
  for (const i of g.inputs) lines.push(`  input ${name(i.value)}: ${typeOf(i.value)} ${i.name}`);
  for (const p of g.params) lines.push(`  param ${name(p.value)}: ${typeOf(p.value)} ${p.name}`);
  for (const scope of Object.keys(g.hints).sort()) lines.push(`  hints ${scope || "<model>"} ${stableJson(g.hints[scope])}`);
  for (const n of g.nodes) {
    const outs = n.outputs.map((o) => `${name(o)}: ${typeOf(o)}`).join(", ");
    const schemaKeys = Object.keys(opDef(n.op)?.attrs ?? {});
    const keys = [
      ...schemaKeys.filter((k) => k in n.attrs),
      ...Object.keys(n.attrs)
        .filter((k) => !schemaKeys.includes(k))
        .sort(),
    ];
    const attrs = keys.map((k) => ` ${k}=${formatAttr(n.attrs[k])}`).join("");
    const meta = n.meta
      ? Object.keys(n.meta)
          .sort()
          .map((k) => ` !${k}=${formatAttr(n.meta![k])}`)
          .join("")
      : "";
    const ins = n.inputs.map((i) => (num.has(i) ? name(i) : `%?${i}`)).join(", ");
    const where = [n.scope && `@${n.scope}`, showLoc && n.loc && `${n.loc.file}:${n.loc.line}`].filter(Boolean).join(" ");
    lines.push(`  ${outs} = ${n.op}${ins ? ` ${ins}` : ""}${attrs}${meta}${where ? `  # ${where}` : ""}`);
  }
  for (const o of g.outputs) lines.push(`  output ${o.name} = ${num.has(o.value) ? name(o.value) : `%?${o.value}`}`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
