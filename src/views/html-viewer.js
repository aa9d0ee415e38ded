// Browser side of `kiln graph --format html` (inlined into the page by src/views/html.ts; plain ES2020, no imports,
// no network). Draws the precomputed layout of the current view into the SVG, pans on drag, zooms on wheel, shows a
// node's details on click, expands collapsed layer blocks, and highlights search matches.
// Invariants: it reads only #kiln-data; every text it inserts goes through textContent (never innerHTML with data).
(() => {
  const data = JSON.parse(document.getElementById("kiln-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const svg = document.getElementById("canvas");
  const viewport = document.getElementById("viewport");
  const panel = document.getElementById("panel");
  const toggle = document.getElementById("toggle");
  const search = document.getElementById("search");
  let viewName = data.views.collapsed ? "collapsed" : "expanded";
  const t = { x: 0, y: 0, k: 1 };
  let selected = null;
  const byId = new Map();

  document.getElementById("title").textContent = data.title;
  document.getElementById("subtitle").textContent = data.subtitle;
  const baseId = (id) => id.replace(/~\d+$/, "");

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function edgePath(p) {
    let d = `M${p[0]},${p[1]}`;
    for (let i = 2; i < p.length; i += 2) {
      const [x0, y0, x1, y1] = [p[i - 2], p[i - 1], p[i], p[i + 1]];
      const my = (y0 + y1) / 2;
      d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`;
    }
    return d;
  }

  function applyTransform() {
    viewport.setAttribute("transform", `translate(${t.x},${t.y}) scale(${t.k})`);
  }

  function render() {
    const v = data.views[viewName];
    viewport.textContent = "";
    byId.clear();
    const edges = el("g", { class: "edges" }, viewport);
    for (const [from, to, label, pts] of v.edges) {
      const path = el("path", { class: "edge", d: edgePath(pts), "marker-end": "url(#arrow)", "data-from": from, "data-to": to }, edges);
      el("title", {}, path).textContent = label;
    }
    const nodes = el("g", { class: "nodes" }, viewport);
    for (const [id, x, y, w, h, kind, label, sub, fill, stroke] of v.nodes) {
      const g = el("g", { class: `node ${kind}`, transform: `translate(${x},${y})`, "data-id": id, "data-kind": kind }, nodes);
      el("rect", { width: w, height: h, rx: kind === "input" || kind === "output" ? h / 2 : 6, fill: fill, stroke: stroke }, g);
      el("text", { x: w / 2, y: 16, "text-anchor": "middle" }, g).textContent = label;
      el("text", { class: "sub", x: w / 2, y: 30, "text-anchor": "middle" }, g).textContent = sub;
      byId.set(id, { g: g, x: x, y: y, w: w, h: h });
    }
    toggle.textContent = viewName === "collapsed" ? "Expand all layers" : "Collapse repeated layers";
    toggle.style.display = data.views.collapsed ? "" : "none";
    highlight(search.value);
    if (selected && byId.has(selected)) select(selected);
  }

  function fit() {
    const v = data.views[viewName];
    const r = svg.getBoundingClientRect();
    // Whole graph when that keeps labels legible (scale >= MIN_FIT); taller graphs fit the width and show the top.
    const MIN_FIT = 0.55;
    t.k = Math.min(1.5, r.width / v.width, Math.max(r.height / v.height, Math.min(MIN_FIT, r.width / v.width)));
    t.x = (r.width - v.width * t.k) / 2;
    t.y = 8;
    applyTransform();
  }

  function centreOn(id) {
    const n = byId.get(id);
    if (!n) return;
    const r = svg.getBoundingClientRect();
    t.k = Math.max(t.k, 0.8);
    t.x = r.width / 2 - (n.x + n.w / 2) * t.k;
    t.y = r.height / 3 - (n.y + n.h / 2) * t.k;
    applyTransform();
  }

  function row(table, k, v) {
    const tr = document.createElement("tr");
    const a = document.createElement("td");
    const b = document.createElement("td");
    a.textContent = k;
    b.textContent = v;
    tr.append(a, b);
    table.appendChild(tr);
  }

  function section(title, entries) {
    if (!entries.length) return;
    const h = document.createElement("h3");
    h.textContent = title;
    const table = document.createElement("table");
    for (const [k, v] of entries) row(table, k, v);
    panel.append(h, table);
  }

  function showDetails(id) {
    const d = data.details[baseId(id)];
    panel.textContent = "";
    const h = document.createElement("h2");
    h.textContent = d.title;
    const where = document.createElement("div");
    where.className = "muted";
    where.textContent = (d.scope ? `module ${d.scope}` : "top level") + (d.loc ? ` · ${d.loc}` : "");
    where.id = "detail-where";
    panel.append(h, where);
    if (d.note) {
      const p = document.createElement("p");
      p.textContent = d.note;
      panel.appendChild(p);
    }
    section(
      "outputs",
      d.outputs.map((o) => [o.name, o.type]),
    );
    section(
      "inputs",
      d.inputs.map((o) => [o.name, o.type]),
    );
    section("attributes", Object.entries(d.attrs));
    section("notes", Object.entries(d.meta || {}));
    if (d.loc) section("source", [["line", d.loc]]);
  }

  function select(id) {
    for (const e of viewport.querySelectorAll(".selected")) e.classList.remove("selected");
    for (const e of viewport.querySelectorAll(".edge.hot")) e.classList.remove("hot");
    selected = id;
    const n = byId.get(id);
    if (!n) return;
    n.g.classList.add("selected");
    for (const e of viewport.querySelectorAll(".edge")) if (e.dataset.from === id || e.dataset.to === id) e.classList.add("hot");
    showDetails(id);
  }

  function setView(name, focus) {
    viewName = name;
    render();
    if (focus) centreOn(focus);
    else fit();
  }

  function highlight(q) {
    q = q.trim().toLowerCase();
    let first = null;
    for (const [id, n] of byId) {
      const d = data.details[baseId(id)];
      const hay = `${d.title} ${d.scope} ${d.outputs.map((o) => o.name).join(" ")} ${d.inputs.map((o) => o.name).join(" ")}`.toLowerCase();
      const hit = q !== "" && hay.includes(q);
      n.g.classList.toggle("match", hit);
      if (hit && !first) first = id;
    }
    return first;
  }

  // Pan with the pointer, zoom with the wheel around the cursor; a click without movement selects.
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, tx: t.x, ty: t.y, moved: false, target: e.target.closest(".node") };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    svg.classList.add("dragging");
    t.x = drag.tx + dx;
    t.y = drag.ty + dy;
    applyTransform();
  });
  svg.addEventListener("pointerup", () => {
    svg.classList.remove("dragging");
    const d = drag;
    drag = null;
    if (!d || d.moved || !d.target) return;
    const id = d.target.dataset.id;
    if (d.target.dataset.kind !== "block") return select(id);
    const first = data.blockFirst[id];
    setView("expanded", first);
    select(first);
  });
  function zoom(factor, cx, cy) {
    const k = Math.min(4, Math.max(0.02, t.k * factor));
    t.x = cx - ((cx - t.x) * k) / t.k;
    t.y = cy - ((cy - t.y) * k) / t.k;
    t.k = k;
    applyTransform();
  }
  svg.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    },
    { passive: false },
  );
  const centre = () => {
    const r = svg.getBoundingClientRect();
    return [r.width / 2, r.height / 2];
  };
  document.getElementById("zoomin").onclick = () => zoom(1.25, ...centre());
  document.getElementById("zoomout").onclick = () => zoom(0.8, ...centre());
  document.getElementById("fit").onclick = fit;
  toggle.onclick = () => setView(viewName === "collapsed" ? "expanded" : "collapsed");
  search.addEventListener("input", () => highlight(search.value));
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const first = highlight(search.value);
    if (first) {
      centreOn(first);
      select(first);
    }
  });
  window.addEventListener("resize", fit);
  render();
  fit();
})();
