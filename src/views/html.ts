// The HTML view: one self-contained file (inline CSS, inline script, inline data; nothing fetched) showing the graph as
// an SVG that pans (drag), zooms (wheel, buttons) and shows a node's details on click (op, module path, output
// shapes and dtypes, inputs and parameters, attributes, TensorRT-LLM notes, source line). Repeated decoder layers are
// collapsed into one block by default; clicking the block, or the toolbar button, switches to the expanded view.
// Both views are laid out here (layout.ts), so the page only draws. Graph inputs read by several nodes are drawn once
// above each reader instead of with long edges across the whole model.
// Invariants: the data is JSON inside a <script type="application/json"> with "<" escaped, so no graph name can end
// the script; node ids are the view model's ids, the same in both views; the file references no URL.

import { readFileSync } from "node:fs";
import type { Graph } from "../ir/graph.ts";
import { layeredLayout } from "./layout.ts";
import { nodeStyle } from "./op-style.ts";
import { buildView, type NodeDetail, type ViewGraph } from "./view-graph.ts";

const VIEWER_JS = new URL("./html-viewer.js", import.meta.url);
const LABEL_CHAR_W = 7.4;
const SUB_CHAR_W = 6.1;
const NODE_H = 38;

export interface HtmlOptions {
  /** Heading of the page (default: the graph name). */
  readonly title?: string;
  /** A second line under the title (stage, model file). */
  readonly subtitle?: string;
}

/** One drawn view: [id, x, y, w, h, kind, label, sub, fill, stroke] per node and [from, to, label, points] per edge. */
export interface HtmlView {
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly (readonly [string, number, number, number, number, string, string, string, string, string])[];
  readonly edges: readonly (readonly [string, string, string, readonly number[]])[];
}

export interface HtmlData {
  readonly title: string;
  readonly subtitle: string;
  readonly views: { readonly collapsed?: HtmlView; readonly expanded: HtmlView };
  readonly details: Readonly<Record<string, NodeDetail>>;
  /** Block id -> id of the first node it hides, to centre on when the block is expanded. */
  readonly blockFirst: Readonly<Record<string, string>>;
}

const round = (x: number) => Math.round(x * 10) / 10;
/** Drawn-node id of the k-th copy of a graph input ("in:position_ids~3"); details stay keyed by the input's id. */
export const ghostBase = (id: string): string => id.replace(/~\d+$/, "");

/** Replaces each graph input read by several nodes with one copy per reader. */
function ghostInputs(v: ViewGraph): { nodes: ViewGraph["nodes"]; edges: ViewGraph["edges"] } {
  const fanout = new Map<string, number>();
  for (const e of v.edges) if (e.from.startsWith("in:")) fanout.set(e.from, (fanout.get(e.from) ?? 0) + 1);
  const split = new Set([...fanout].filter(([, n]) => n > 1).map(([id]) => id));
  const nodes = v.nodes.filter((n) => !split.has(n.id));
  let k = 0;
  const edges = v.edges.map((e) => {
    if (!split.has(e.from)) return e;
    const id = `${e.from}~${k++}`;
    const base = v.nodes.find((n) => n.id === e.from)!;
    // Insert the copy just before its reader so the node list stays topologically ordered.
    nodes.splice(
      nodes.findIndex((n) => n.id === e.to),
      0,
      { ...base, id },
    );
    return { ...e, from: id };
  });
  return { nodes, edges };
}

function drawView(v: ViewGraph): HtmlView {
  const { nodes, edges } = ghostInputs(v);
  const sized = nodes.map((n) => ({ id: n.id, w: Math.ceil(Math.max(80, n.label.length * LABEL_CHAR_W, n.sub.length * SUB_CHAR_W) + 20), h: NODE_H }));
  const layout = layeredLayout(sized, edges);
  const at = new Map(layout.nodes.map((p) => [p.id, p]));
  return {
    width: Math.ceil(layout.width),
    height: Math.ceil(layout.height),
    nodes: nodes.map((n) => {
      const p = at.get(n.id)!;
      const s = nodeStyle(n.kind, n.label);
      return [n.id, round(p.x), round(p.y), p.w, p.h, n.kind, n.label, n.sub, s.fill, s.stroke] as const;
    }),
    edges: layout.edges.map((e, i) => [e.from, e.to, edges[i]!.label, e.points.flatMap(([x, y]) => [round(x), round(y)])] as const),
  };
}

export function htmlData(g: Graph, opts: HtmlOptions = {}): HtmlData {
  const expanded = buildView(g);
  const collapsed = expanded.runs.length ? buildView(g, { collapse: true }) : undefined;
  const details: Record<string, NodeDetail> = {};
  for (const n of [...expanded.nodes, ...(collapsed?.nodes ?? [])]) details[n.id] = n.detail;
  const blockFirst = Object.fromEntries(expanded.runs.map((r) => [`block:${r.layers[1]}`, `n${r.nodes[1]![0]}`]));
  return {
    title: opts.title ?? g.name,
    subtitle: opts.subtitle ?? "",
    views: { ...(collapsed && { collapsed: drawView(collapsed) }), expanded: drawView(expanded) },
    details,
    blockFirst,
  };
}

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const CSS = `
*{box-sizing:border-box}html,body{margin:0;height:100%;font:13px system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;background:#fafafa}
#bar{position:fixed;top:0;left:0;right:0;height:44px;display:flex;align-items:center;gap:8px;padding:0 12px;background:#fff;border-bottom:1px solid #ddd;z-index:2}
#bar h1{font-size:15px;margin:0 8px 0 0;white-space:nowrap}#bar .sub{color:#777;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#bar button,#bar input{font:inherit;padding:4px 9px;border:1px solid #bbb;border-radius:5px;background:#f6f6f6;cursor:pointer}#bar input{cursor:text;background:#fff;width:180px}
#bar .grow{flex:1}
#canvas{position:fixed;top:44px;left:0;width:calc(100vw - 340px);height:calc(100vh - 44px);cursor:grab;background:#fafafa}#canvas.dragging{cursor:grabbing}
#panel{position:fixed;top:44px;right:0;width:340px;bottom:0;overflow:auto;background:#fff;border-left:1px solid #ddd;padding:12px 14px}
#panel h2{font-size:15px;margin:0 0 4px;word-break:break-all}#panel .muted{color:#777}#panel table{border-collapse:collapse;width:100%;margin:6px 0 10px}
#panel td{border-top:1px solid #eee;padding:3px 4px;vertical-align:top;font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}#panel td:first-child{color:#555;width:38%}
#panel h3{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#666;margin:12px 0 2px}
.node rect{stroke-width:1.3}.node text{font:bold 12px ui-monospace,Menlo,Consolas,monospace;fill:#222;pointer-events:none}.node text.sub{font-weight:normal;font-size:10.5px;fill:#555}
.node{cursor:pointer}.node.selected rect{stroke:#d11;stroke-width:3}.node.match rect{stroke:#e69500;stroke-width:3}.node.block rect{stroke-dasharray:5 3}
.edge{fill:none;stroke:#9a9a9a;stroke-width:1.2}.edge.hot{stroke:#d11;stroke-width:2}
`;

const PAGE_BODY = `<div id="bar"><h1 id="title"></h1><span class="sub" id="subtitle"></span><span class="grow"></span>
<input id="search" placeholder="find op / module / tensor" aria-label="find"><button id="toggle" type="button"></button>
<button id="zoomin" type="button" title="zoom in">+</button><button id="zoomout" type="button" title="zoom out">−</button><button id="fit" type="button">Fit</button></div>
<svg id="canvas" xmlns="http://www.w3.org/2000/svg"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#9a9a9a"/></marker></defs><g id="viewport"></g></svg>
<div id="panel"><p class="muted">Click a node to see its shape, dtype, attributes and source line. Drag to pan, scroll to zoom.</p></div>`;

export function toHtml(g: Graph, opts: HtmlOptions = {}): string {
  const data = htmlData(g, opts);
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  const script = readFileSync(VIEWER_JS, "utf8");
  if (/<\/script/i.test(script)) throw new Error(`${VIEWER_JS.pathname} must not contain '</script'`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(data.title)} — kiln graph</title><style>${CSS}</style></head>
<body>${PAGE_BODY}
<script id="kiln-data" type="application/json">${json}</script>
<script>${script}</script>
</body></html>
`;
}
