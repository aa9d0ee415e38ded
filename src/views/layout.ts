// A layered (Sugiyama-style) layout for dataflow DAGs, top to bottom, small enough to read in one sitting:
//   1. ranks by longest path from the sources; a source sits just above its first consumer, not at the top;
//   2. edges spanning several ranks get one dummy point per crossed rank, so they bend around nodes;
//   3. order within ranks by alternating barycenter sweeps (fewer crossings);
//   4. x by alternating sweeps that pull each node toward the mean of its neighbours, then resolve overlaps while
//      keeping the order (pool-adjacent-violators on each rank), so chains come out straight.
// Invariants: nodes of one rank never overlap (gap >= GAP between boxes); every edge goes downward; coordinates are
// non-negative; the result depends only on the input (deterministic). Edges that would point upward (a cycle, which
// a dataflow graph should not have) do not constrain ranks and are drawn as given.

export interface LayoutNodeIn {
  readonly id: string;
  readonly w: number;
  readonly h: number;
}

export interface LayoutEdgeIn {
  readonly from: string;
  readonly to: string;
}

export interface PlacedNode {
  readonly id: string;
  /** Top-left corner. */
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly rank: number;
}

export interface RoutedEdge {
  readonly from: string;
  readonly to: string;
  /** From the bottom centre of `from` through the dummy points to the top centre of `to`. */
  readonly points: readonly (readonly [number, number])[];
}

export interface Layout {
  readonly nodes: readonly PlacedNode[];
  readonly edges: readonly RoutedEdge[];
  readonly width: number;
  readonly height: number;
}

const GAP = 24;
const RANK_GAP = 34;
const MARGIN = 20;
const DUMMY_W = 6;
const SWEEPS = 8;

interface Item {
  readonly key: number;
  readonly w: number;
  readonly h: number;
  readonly real?: string;
  rank: number;
  x: number;
}

function ranksOf(nodes: readonly LayoutNodeIn[], edges: readonly LayoutEdgeIn[]): Map<string, number> {
  const ids = new Set(nodes.map((n) => n.id));
  const preds = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  const succs = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const e of edges) {
    if (!ids.has(e.from) || !ids.has(e.to) || e.from === e.to) continue;
    preds.get(e.to)!.push(e.from);
    succs.get(e.from)!.push(e.to);
  }
  // Kahn's order (ties in input order); on a cycle, the first unplaced node goes next and its pending edges are
  // treated as back edges.
  const indeg = new Map(nodes.map((n) => [n.id, preds.get(n.id)!.length]));
  const rank = new Map<string, number>();
  const ready = nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  let nextUnplaced = 0;
  while (rank.size < nodes.length) {
    let id = ready.shift();
    if (id === undefined) {
      while (rank.has(nodes[nextUnplaced]!.id)) nextUnplaced++;
      id = nodes[nextUnplaced]!.id;
    }
    if (rank.has(id)) continue;
    rank.set(
      id,
      Math.max(
        -1,
        ...preds
          .get(id)!
          .filter((p) => rank.has(p))
          .map((p) => rank.get(p)!),
      ) + 1,
    );
    for (const s of succs.get(id)!) {
      indeg.set(s, indeg.get(s)! - 1);
      if (indeg.get(s) === 0 && !rank.has(s)) ready.push(s);
    }
  }
  // Pull sources down to just above their first consumer.
  for (const n of nodes) {
    const s = succs.get(n.id)!;
    if (!preds.get(n.id)!.length && s.length) rank.set(n.id, Math.max(0, Math.min(...s.map((x) => rank.get(x)!)) - 1));
  }
  return rank;
}

/** Places blocks of consecutive items at their desired left edges without overlap, keeping order. */
function packRank(items: Item[], desired: number[]): void {
  const blocks: { start: number; end: number; sum: number; count: number; width: number }[] = [];
  const offsets: number[] = [];
  items.forEach((it, i) => {
    blocks.push({ start: i, end: i + 1, sum: desired[i]!, count: 1, width: it.w });
    offsets[i] = 0;
    for (;;) {
      const b = blocks.at(-1)!;
      const a = blocks.at(-2);
      if (!a || a.sum / a.count + a.width + GAP <= b.sum / b.count) break;
      // Merge b into a: b's items sit after a's, so their desired left edges shift by a's width.
      const shift = a.width + GAP;
      for (let k = b.start; k < b.end; k++) offsets[k] = offsets[k]! + shift;
      blocks.pop();
      blocks[blocks.length - 1] = {
        start: a.start,
        end: b.end,
        sum: a.sum + b.sum - shift * b.count,
        count: a.count + b.count,
        width: a.width + GAP + b.width,
      };
    }
  });
  for (const b of blocks) {
    const left = b.sum / b.count;
    for (let k = b.start; k < b.end; k++) items[k]!.x = left + offsets[k]!;
  }
}

export function layeredLayout(nodes: readonly LayoutNodeIn[], edges: readonly LayoutEdgeIn[]): Layout {
  const rank = ranksOf(nodes, edges);
  const items: Item[] = nodes.map((n, key) => ({ key, w: n.w, h: n.h, real: n.id, rank: rank.get(n.id)!, x: 0 }));
  const byId = new Map(items.map((it) => [it.real!, it]));
  // Edge chains through dummy items, one per crossed rank.
  const chains: { from: string; to: string; path: Item[] }[] = [];
  for (const e of edges) {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    if (!a || !b) continue;
    const path = [a];
    for (let r = a.rank + 1; r < b.rank; r++) {
      const d: Item = { key: items.length, w: DUMMY_W, h: 0, rank: r, x: 0 };
      items.push(d);
      path.push(d);
    }
    path.push(b);
    chains.push({ from: e.from, to: e.to, path });
  }
  const up = new Map<Item, Item[]>();
  const down = new Map<Item, Item[]>();
  for (const c of chains)
    for (let k = 0; k + 1 < c.path.length; k++) {
      const [p, q] = [c.path[k]!, c.path[k + 1]!];
      if (q.rank !== p.rank + 1) continue;
      down.set(p, [...(down.get(p) ?? []), q]);
      up.set(q, [...(up.get(q) ?? []), p]);
    }
  const maxRank = Math.max(0, ...items.map((it) => it.rank));
  const rows: Item[][] = Array.from({ length: maxRank + 1 }, () => []);
  for (const it of items) rows[it.rank]!.push(it);

  // Ordering: barycenters of neighbour positions, alternating downward and upward sweeps.
  const pos = new Map<Item, number>();
  const index = () => rows.forEach((row) => row.forEach((it, i) => pos.set(it, i)));
  index();
  const sortBy = (row: Item[], nbrs: Map<Item, Item[]>) => {
    const key = new Map(
      row.map((it, i) => {
        const ns = nbrs.get(it);
        return [it, ns?.length ? ns.reduce((s, n) => s + pos.get(n)!, 0) / ns.length : i] as const;
      }),
    );
    row.sort((a, b) => key.get(a)! - key.get(b)! || a.key - b.key);
    row.forEach((it, i) => pos.set(it, i));
  };
  for (let s = 0; s < SWEEPS; s++) {
    if (s % 2 === 0) for (let r = 1; r <= maxRank; r++) sortBy(rows[r]!, up);
    else for (let r = maxRank - 1; r >= 0; r--) sortBy(rows[r]!, down);
  }

  // Coordinates: start packed, then pull toward neighbours' centres.
  for (const row of rows)
    packRank(
      row,
      row.map(() => 0),
    );
  const centre = (it: Item) => it.x + it.w / 2;
  const pull = (row: Item[], nbrs: Map<Item, Item[]>) => {
    const desired = row.map((it) => {
      const ns = nbrs.get(it);
      return ns?.length ? ns.reduce((s, n) => s + centre(n), 0) / ns.length - it.w / 2 : it.x;
    });
    packRank(row, desired);
  };
  for (let s = 0; s < SWEEPS; s++) {
    if (s % 2 === 0) for (let r = 1; r <= maxRank; r++) pull(rows[r]!, up);
    else for (let r = maxRank - 1; r >= 0; r--) pull(rows[r]!, down);
  }
  for (let r = 1; r <= maxRank; r++) pull(rows[r]!, up);

  const minX = Math.min(...items.map((it) => it.x));
  const rowY: number[] = [];
  let y = MARGIN;
  for (const row of rows) {
    rowY.push(y);
    y += Math.max(0, ...row.map((it) => it.h)) + RANK_GAP;
  }
  const X = (it: Item) => it.x - minX + MARGIN;
  const placed = nodes.map((n) => {
    const it = byId.get(n.id)!;
    return { id: n.id, x: X(it), y: rowY[it.rank]!, w: it.w, h: it.h, rank: it.rank };
  });
  const routed = chains.map((c) => {
    const [a, b] = [c.path[0]!, c.path.at(-1)!];
    const mid = c.path.slice(1, -1).map((d) => [X(d) + d.w / 2, rowY[d.rank]! + rowHeight(rows[d.rank]!) / 2] as const);
    const points = [[X(a) + a.w / 2, rowY[a.rank]! + a.h] as const, ...mid, [X(b) + b.w / 2, rowY[b.rank]!] as const];
    return { from: c.from, to: c.to, points };
  });
  const width = Math.max(0, ...items.map((it) => X(it) + it.w)) + MARGIN;
  return { nodes: placed, edges: routed, width, height: y - RANK_GAP + MARGIN };
}

const rowHeight = (row: readonly Item[]) => Math.max(0, ...row.map((it) => it.h));
