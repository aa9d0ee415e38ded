// The one dependency sort of code generation: Python snippets (helper functions, runtime classes) that name the
// snippets they need are emitted dependencies first, each once, in the table's declaration order otherwise, so
// the output is deterministic. Tables are acyclic by construction (a snippet only names snippets declared for it).

export interface Snippet<K extends string> {
  readonly deps: readonly K[];
}

/** The used keys and everything they depend on, dependencies first. */
export function dependencyOrder<K extends string>(table: Readonly<Record<K, Snippet<K>>>, used: ReadonlySet<K>): K[] {
  const out: K[] = [];
  const visit = (k: K): void => {
    if (out.includes(k)) return;
    table[k].deps.forEach(visit);
    out.push(k);
  };
  (Object.keys(table) as K[]).filter((k) => used.has(k)).forEach(visit);
  return out;
}
