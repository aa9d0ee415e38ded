// Modules: the unit users compose models from (like torch.nn.Module / TVM nn.Module). A module declares
// Parameters and child modules as fields in its constructor; attribute paths become parameter names and module
// scopes. `forward` is an ordinary method with any signature; the tracer wraps it to track the module scope.

import type { Hints } from "./hints.ts";
import { Parameter } from "./parameter.ts";

export abstract class Module {
  /** Compiler hints for this module and its children (see hints.ts). */
  hints?: Hints;
}

export type Child = { path: string; kind: "param"; value: Parameter } | { path: string; kind: "module"; value: Module };

/** Depth-first walk of a module tree in field order; arrays (module lists) index their items. First path wins. */
export function walkModule(root: Module): Child[] {
  const out: Child[] = [];
  const seen = new Set<object>([root]);
  const visit = (value: unknown, path: string) => {
    if (value instanceof Parameter) {
      if (!seen.has(value)) out.push({ path, kind: "param", value });
      seen.add(value);
    } else if (value instanceof Module) {
      if (seen.has(value)) return;
      seen.add(value);
      out.push({ path, kind: "module", value });
      visitFields(value, path);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, path ? `${path}.${i}` : String(i)));
    }
  };
  const visitFields = (m: Module, prefix: string) => {
    for (const [key, v] of Object.entries(m)) if (key !== "hints") visit(v, prefix ? `${prefix}.${key}` : key);
  };
  visitFields(root, "");
  return out;
}
