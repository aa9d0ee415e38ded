// Layer check: every value import in the source tree must point to a folder of lower rank, as the table in
// docs/architecture.md (between `<!-- layers:begin -->` and `<!-- layers:end -->`) orders them. Also reports import
// cycles between the table's folders and source files that no row covers. Type-only imports are ignored (they erase),
// as are test files and `tests/` folders. Run: `npm run check:layers` (exit 1 with one line per problem).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

export interface LayerRow {
  rank: number;
  path: string;
}

export interface ImportEdge {
  from: string;
  line: number;
  to: string;
}

const SOURCE_ROOTS = ["src", "codegen", "models", "bin", "bench", "examples", "scripts"];
const SOURCE_FILE = /\.(ts|mts|js|mjs)$/;
const NOT_CHECKED = [/\.test\.ts$/, /\.d\.ts$/, /(^|\/)tests\//, /(^|\/)node_modules\//, /(^|\/)build\//, /(^|\/)\.data\//];

/** The rows of the layer table in a markdown text. */
export function parseLayerTable(markdown: string): LayerRow[] {
  const m = /<!-- layers:begin -->([\s\S]*?)<!-- layers:end -->/.exec(markdown);
  if (!m) throw new Error("docs/architecture.md: no <!-- layers:begin --> ... <!-- layers:end --> table");
  const rows: LayerRow[] = [];
  for (const line of m[1]!.split("\n")) {
    const cells = /^\|\s*(\d+)\s*\|\s*([^|\s]+)\s*\|/.exec(line);
    if (cells) rows.push({ rank: Number(cells[1]), path: cells[2]! });
  }
  if (rows.length === 0) throw new Error("docs/architecture.md: the layer table has no rows");
  return rows;
}

/** The row covering a repo-relative path: an exact file row, else the longest folder row above it. */
export function rowOf(rows: LayerRow[], file: string): LayerRow | undefined {
  let best: LayerRow | undefined;
  for (const row of rows) {
    const covers = file === row.path || file.startsWith(`${row.path}/`);
    if (covers && (!best || row.path.length > best.path.length)) best = row;
  }
  return best;
}

export function listSources(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(root, dir))) {
      const rel = `${dir}/${name}`;
      if (name.startsWith(".") || NOT_CHECKED.some((re) => re.test(`${rel}/`) && statSync(join(root, rel)).isDirectory())) continue;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (SOURCE_FILE.test(name) && !NOT_CHECKED.some((re) => re.test(rel))) out.push(rel);
    }
  };
  for (const dir of SOURCE_ROOTS) {
    try {
      if (statSync(join(root, dir)).isDirectory()) walk(dir);
    } catch {}
  }
  return out.sort();
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import "x"` runs x
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return !clause.name && !!named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
}

/** The value imports of one file, resolved to repo-relative paths (package imports other than `kiln` are dropped). */
export function valueImports(root: string, file: string, text: string): ImportEdge[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const edges: ImportEdge[] = [];
  const add = (spec: string, node: ts.Node): void => {
    let to: string | undefined;
    if (spec === "kiln") to = "src/index.ts";
    else if (spec.startsWith(".")) to = relative(root, resolve(root, dirname(file), spec));
    if (to !== undefined) edges.push({ from: file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, to });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && !isTypeOnlyImport(node)) add(node.moduleSpecifier.text, node);
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier) && !node.isTypeOnly)
      add(node.moduleSpecifier.text, node);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0]))
      add(node.arguments[0].text, node);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/** Strongly connected components of more than one row (Tarjan), each as its row paths. */
function cycles(nodes: string[], next: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let counter = 0;
  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) strong(v);
  return out;
}

/** Every problem as one line; empty when the tree keeps the table's order. */
export function checkLayers(rows: LayerRow[], files: string[], edgesOf: (file: string) => ImportEdge[]): string[] {
  const problems: string[] = [];
  const next = new Map<string, Set<string>>();
  for (const file of files) {
    const from = rowOf(rows, file);
    if (!from) {
      problems.push(`${file}: no row of the layer table in docs/architecture.md covers this file`);
      continue;
    }
    for (const edge of edgesOf(file)) {
      const to = rowOf(rows, edge.to);
      if (!to || to === from) continue; // outside the checked tree (e.g. a JSON file under test/), or inside one row
      if (!next.has(from.path)) next.set(from.path, new Set());
      next.get(from.path)!.add(to.path);
      if (to.rank >= from.rank)
        problems.push(
          `${edge.from}:${edge.line} imports ${edge.to}: ${from.path} (rank ${from.rank}) may only import lower ranks, not ${to.path} (rank ${to.rank})`,
        );
    }
  }
  for (const component of cycles([...next.keys()], next)) problems.push(`import cycle between ${component.join(", ")}`);
  return problems;
}

function main(): number {
  const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
  const rows = parseLayerTable(readFileSync(join(root, "docs/architecture.md"), "utf8"));
  const files = listSources(root);
  const problems = checkLayers(rows, files, (file) => valueImports(root, file, readFileSync(join(root, file), "utf8")));
  for (const p of problems) console.error(`check-layers: ${p}`);
  if (problems.length === 0) console.log(`check-layers: ${files.length} files in ${rows.length} layers, every import points down`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) process.exitCode = main();
