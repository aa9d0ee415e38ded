// Shapes with symbolic dimensions. A Dim is a concrete size or a named symbol ("batch", "seq") bound only when the
// graph runs. Two dims are equal when they are the same number or the same symbol; nothing is assumed about
// different symbols. Every helper here is pure.

export type Dim = number | string;
export type Shape = readonly Dim[];

export const formatDim = (d: Dim): string => String(d);
export const formatShape = (s: Shape): string => `[${s.map(formatDim).join(", ")}]`;
export const dimEq = (a: Dim, b: Dim): boolean => a === b;
export const shapeEq = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Symbolic element count: the product of the numeric dims and the multiset of symbols. */
export function elementCount(s: Shape): { n: number; symbols: string[] } {
  let n = 1;
  const symbols: string[] = [];
  for (const d of s) typeof d === "number" ? (n *= d) : symbols.push(d);
  return { n, symbols: symbols.sort() };
}

export function sameElementCount(a: Shape, b: Shape): boolean {
  const x = elementCount(a);
  const y = elementCount(b);
  return x.n === y.n && x.symbols.length === y.symbols.length && x.symbols.every((s, i) => s === y.symbols[i]);
}

/** Numpy broadcasting; returns undefined when the shapes do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else return undefined;
  }
  return out;
}

/** Normalizes a possibly negative axis against a rank; undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return Number.isInteger(a) && a >= 0 && a < rank ? a : undefined;
}

/** Resolves a symbolic shape against bound symbol sizes. Throws on an unbound symbol. */
export function concreteShape(s: Shape, bindings: ReadonlyMap<string, number>): number[] {
  return s.map((d) => {
    if (typeof d === "number") return d;
    const v = bindings.get(d);
    if (v === undefined) throw new Error(`symbolic dimension '${d}' is not bound`);
    return v;
  });
}
