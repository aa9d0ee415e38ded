// The layered layout: ranks follow the edges (sources sit just above their first reader), long edges bend through
// one dummy point per crossed rank, boxes of a rank never overlap, every edge runs downward, chains come out
// straight, and the result is deterministic. Random DAGs check the invariants as properties.

import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { type Layout, layeredLayout, type LayoutEdgeIn, type LayoutNodeIn } from "./layout.ts";

const box = (id: string, w = 60): LayoutNodeIn => ({ id, w, h: 30 });
const edge = (from: string, to: string): LayoutEdgeIn => ({ from, to });

function checkInvariants(l: Layout): void {
  const byRank = new Map<number, { x: number; w: number }[]>();
  for (const n of l.nodes) {
    expect(n.x).toBeGreaterThanOrEqual(0);
    expect(n.y).toBeGreaterThanOrEqual(0);
    expect(n.x + n.w).toBeLessThanOrEqual(l.width);
    expect(n.y + n.h).toBeLessThanOrEqual(l.height);
    byRank.set(n.rank, [...(byRank.get(n.rank) ?? []), n]);
  }
  for (const row of byRank.values()) {
    row.sort((a, b) => a.x - b.x);
    for (let i = 1; i < row.length; i++) expect(row[i]!.x).toBeGreaterThanOrEqual(row[i - 1]!.x + row[i - 1]!.w + 23.999);
  }
  for (const e of l.edges) for (let i = 1; i < e.points.length; i++) expect(e.points[i]![1]).toBeGreaterThan(e.points[i - 1]![1]);
}

describe("layeredLayout", () => {
  it("ranks a diamond with a long edge and routes the long edge through one dummy point", () => {
    const l = layeredLayout(
      [box("a"), box("b"), box("c"), box("m"), box("d")],
      [edge("a", "b"), edge("a", "c"), edge("c", "m"), edge("b", "d"), edge("m", "d"), edge("a", "d")],
    );
    const rank = Object.fromEntries(l.nodes.map((n) => [n.id, n.rank]));
    expect(rank).toEqual({ a: 0, b: 1, c: 1, m: 2, d: 3 });
    const long = l.edges.find((e) => e.from === "a" && e.to === "d")!;
    expect(long.points).toHaveLength(4); // bottom of a, dummies at ranks 1 and 2, top of d
    const bd = l.edges.find((e) => e.from === "b" && e.to === "d")!;
    expect(bd.points).toHaveLength(3);
    checkInvariants(l);
  });

  it("puts a source just above its first reader, not at the top", () => {
    const l = layeredLayout([box("x"), box("y"), box("z"), box("s")], [edge("x", "y"), edge("y", "z"), edge("s", "z")]);
    expect(l.nodes.find((n) => n.id === "s")!.rank).toBe(1);
  });

  it("draws a chain straight down and is deterministic", () => {
    const nodes = ["p", "q", "r"].map((id) => box(id));
    const edges = [edge("p", "q"), edge("q", "r")];
    const l = layeredLayout(nodes, edges);
    expect(new Set(l.nodes.map((n) => n.x + n.w / 2)).size).toBe(1);
    expect(layeredLayout(nodes, edges)).toEqual(l);
  });

  it("centres a node between two parents", () => {
    const l = layeredLayout([box("a"), box("b"), box("c")], [edge("a", "c"), edge("b", "c")]);
    const [a, b, c] = ["a", "b", "c"].map((id) => l.nodes.find((n) => n.id === id)!);
    expect(c!.x + c!.w / 2).toBeCloseTo((a!.x + a!.w / 2 + b!.x + b!.w / 2) / 2, 6);
  });

  test.prop([fc.integer({ min: 1, max: 30 }), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 20, max: 200 })), { maxLength: 60 })], { numRuns: 60 })(
    "random DAGs: no overlaps, edges downward, inside the canvas",
    (n, pairs) => {
      const nodes = Array.from({ length: n }, (_, i) => box(`v${i}`, pairs[i]?.[2] ?? 60));
      const edges = pairs
        .map(([a, b]) => [a % n, b % n] as const)
        .filter(([a, b]) => a < b)
        .map(([a, b]) => edge(`v${a}`, `v${b}`));
      const l = layeredLayout(nodes, edges);
      expect(l.nodes).toHaveLength(n);
      expect(l.edges).toHaveLength(edges.length);
      checkInvariants(l);
    },
  );
});
