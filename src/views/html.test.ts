// The HTML view: a self-contained page (no URL anywhere, data escaped inside its script tag) whose layout data
// matches the view model; then the real page in headless Chromium (Debian `chromium`, driven by playwright-core):
// nodes are drawn and visible, clicking one shows its shape, dtype, attributes and source line, the collapsed
// layers block expands, panning and zooming move the drawing, and a screenshot has drawn (non-background) pixels in
// the node colours.

import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import { GraphBuilder } from "../ir/graph.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { htmlData, toHtml } from "./html.ts";
import { loadModelStages } from "./model-stages.ts";
import { nodeStyle } from "./op-style.ts";
import { buildView } from "./view-graph.ts";

const CHROMIUM = "/usr/bin/chromium";
type Playwright = typeof import("playwright-core");
let playwright: Playwright | undefined;
try {
  playwright = await import("playwright-core");
} catch {
  console.warn("SKIPPED headless-browser checks of the HTML view: playwright-core is not installed");
}
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`SKIPPED headless-browser checks of the HTML view: ${CHROMIUM} not found (Debian: apt-get install chromium)`);

const stages = await loadModelStages(await importModelFile("models/llama.ts"), { hfDir: `${FIXTURES}llama3_gqa` });
const g = stages.graph("fused");

describe("toHtml", () => {
  it("is self-contained and holds both views of the layout", () => {
    const html = toHtml(g, { subtitle: "fused" });
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?[a-z]*:?\/\//i);
    expect(html).not.toMatch(/<link|@import|url\(http/i);
    const data = htmlData(g);
    const collapsed = buildView(g, { collapse: true });
    const expanded = buildView(g);
    // Drawn nodes = view nodes, with position_ids drawn once per reader.
    const ropes = (v: typeof expanded) => v.edges.filter((e) => e.from === "in:position_ids").length;
    expect(data.views.collapsed!.nodes).toHaveLength(collapsed.nodes.length - 1 + ropes(collapsed));
    expect(data.views.expanded.nodes).toHaveLength(expanded.nodes.length - 1 + ropes(expanded));
    expect(data.blockFirst).toEqual({ "block:layers.1": expanded.nodes.find((n) => n.scope.startsWith("layers.1"))!.id });
    expect(data.details["block:layers.1"]!.note).toMatch(/^× 2 identical layers \(same as layers\.0, 17 nodes each\)/);
  });

  it("escapes the data so no name can close the script", () => {
    const b = new GraphBuilder("</script><img src=x onerror=alert(1)>");
    b.output("y", b.node("neg", [b.input("x", { dtype: "f32", shape: [2] })])[0]!);
    const html = toHtml(b.build());
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("\\u003c/script>\\u003cimg");
  });
});

describe.skipIf(!playwright || !hasChromium)("the HTML view in headless Chromium", () => {
  let browser: Awaited<ReturnType<Playwright["chromium"]["launch"]>>;
  const file = join(mkdtempSync(join(tmpdir(), "kiln-html-")), "llama.html");
  writeFileSync(file, toHtml(g, { subtitle: "fused graph" }));
  const data = htmlData(g);

  beforeAll(async () => {
    browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  }, 30_000);
  afterAll(async () => browser?.close());

  it("draws visible nodes; click shows details; search finds the block, which expands; pan and zoom move the drawing", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`file://${file}`);
    const nodes = page.locator("g.node");
    await nodes.first().waitFor();
    expect(await nodes.count()).toBe(data.views.collapsed!.nodes.length);
    for (const n of await nodes.all()) expect(await n.isVisible()).toBe(true);
    // Browser-side code is passed as text: the project's TypeScript settings have no DOM types.
    const inView = await page.evaluate<number>(`[...document.querySelectorAll("g.node")].filter((n) => {
      const r = n.getBoundingClientRect();
      return r.width > 20 && r.top >= 44 && r.bottom <= innerHeight && r.right <= innerWidth - 340;
    }).length`);
    expect(inView).toBeGreaterThanOrEqual(10);

    const attention = page.locator("g.node[data-id]").filter({ hasText: /^attentionf32/ });
    await attention.click();
    const panel = page.locator("#panel");
    await expect.poll(() => panel.textContent()).toContain("attention");
    const text = (await panel.textContent())!;
    expect(text).toContain("f32[batch, seq, 8, 8]");
    expect(text).toContain("module layers.0.attn");
    expect(text).toMatch(/src\/dsl\/modules\/attention\.ts:\d+:\d+/);
    expect(text).toMatch(/causal\s*true/);
    expect(await attention.getAttribute("class")).toContain("selected");

    // The block lies below the fold: find it (search centres on the first match), then click it.
    await page.locator("#search").fill("layers.1");
    await page.locator("#search").press("Enter");
    expect(await page.locator("#panel h2").textContent()).toBe("layers.1 … layers.2");
    await page.locator('g.node[data-kind="block"]').click();
    expect(await nodes.count()).toBe(data.views.expanded.nodes.length);
    expect(await page.locator("#detail-where").textContent()).toMatch(/^module layers\.1/);
    await page.locator("#toggle").click();
    expect(await nodes.count()).toBe(data.views.collapsed!.nodes.length);

    const transform = () => page.locator("#viewport").getAttribute("transform");
    const before = await transform();
    await page.mouse.move(300, 400);
    await page.mouse.down();
    await page.mouse.move(360, 300, { steps: 4 });
    await page.mouse.up();
    const panned = await transform();
    expect(panned).not.toBe(before);
    await page.mouse.wheel(0, -300);
    const scale = (t: string | null) => Number(/scale\(([\d.]+)\)/.exec(t!)![1]);
    expect(scale(await transform())).toBeGreaterThan(scale(panned));
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a screenshot shows drawn nodes in their colours", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    await page.goto(`file://${file}`);
    await page.locator("g.node").first().waitFor();
    const png = await page.screenshot();
    // Decode the PNG in the browser and count pixels of the drawing area that are not its background.
    const colours = ["norm", "linear", "attention"].map((op) => nodeStyle("op", op === "norm" ? "rms_norm" : op).fill);
    const stats = await page.evaluate<{ drawn: number; total: number; seen: string[] }>(`(async () => {
      const img = new Image();
      img.src = "data:image/png;base64,${png.toString("base64")}";
      await img.decode();
      const c = document.createElement("canvas");
      [c.width, c.height] = [img.width, img.height];
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(0, 44, 760, img.height - 44);
      const colours = ${JSON.stringify(colours)};
      const hex = (i) => "#" + [0, 1, 2].map((k) => data[i + k].toString(16).padStart(2, "0")).join("");
      let drawn = 0;
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4) {
        const h = hex(i);
        if (h !== "#fafafa") drawn++;
        if (colours.includes(h)) seen.add(h);
      }
      return { drawn, total: data.length / 4, seen: [...seen].sort() };
    })()`);
    expect(stats.drawn / stats.total).toBeGreaterThan(0.03);
    expect(stats.seen).toEqual([...colours].sort());
    await page.close();
  });
});
