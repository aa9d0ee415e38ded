// `npm ci` / `npm install` step: compiles Kiln's TypeScript (the CLI and the "kiln" API that model files import)
// into dist/ with esbuild, so `kiln` starts without transpiling (tsx stays for users' .ts model files only).
// Invariants: two entry points (src/cli/main.ts, src/index.ts) share chunks, so a model file's `import ... from
// "kiln"` reaches the same module instances as the CLI; every `import.meta.url` is rewritten to the URL of the
// original source file (relative to the output), so resources found next to sources (protos, native helpers,
// manifests) and the source-location rules of src/dsl/source-loc.ts see the paths they see when run from source;
// dist/manifest.json lists every input with its size and mtime, and bin/kiln.js runs from source whenever one
// differs (an edited checkout never runs stale code). Optional: on failure this prints one line and exits 0.

import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const root = join(import.meta.dirname, "..");
const out = join(root, "dist");
const say = (msg) => console.error(`kiln: ${msg}`);
const DIST_PLACEHOLDER = "__KILN_DIST_DIR__";

/** import.meta.url in a source file -> that file's own URL, computed relative to the chunk that ends up holding it. */
const sourceUrls = {
  name: "source-import-meta-url",
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
      if (args.path.includes(`${"/"}node_modules${"/"}`)) return undefined;
      const text = readFileSync(args.path, "utf8");
      if (!text.includes("import.meta.url")) return undefined;
      // The chunk holding this code is not known yet: DIST_PLACEHOLDER becomes that chunk's path to dist/ below.
      const rel = relative(root, args.path).split("\\").join("/");
      const expr = `new URL(${JSON.stringify(`../${rel}`)}, new URL("${DIST_PLACEHOLDER}", import.meta.url)).href`;
      return { contents: text.replaceAll("import.meta.url", expr), loader: args.path.endsWith(".js") || args.path.endsWith(".mjs") ? "js" : "ts" };
    });
  },
};

async function main() {
  if (process.env.KILN_BUILD_CLI === "0") return say("KILN_BUILD_CLI=0: CLI not compiled (kiln runs from source through tsx)");
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    return say("esbuild not found: CLI not compiled (kiln runs from source through tsx, slower to start)");
  }
  rmSync(out, { recursive: true, force: true });
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: ["src/cli/main.ts", "src/index.ts"],
    outdir: out,
    outbase: ".",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    // Dependencies are bundled too (fewer files to resolve at startup: 0.37 s -> see docs/performance.md), except
    // the type checker's (loaded lazily, only by commands that type-check) and the TypeScript loader.
    external: ["ts-morph", "typescript", "tsx", "esbuild"],
    // CommonJS dependencies inside ESM output call require(): give them a real one.
    banner: { js: 'import { createRequire as __kilnCreateRequire } from "node:module"; const require = __kilnCreateRequire(import.meta.url);' },
    sourcemap: true,
    sourcesContent: false,
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
    logLevel: "silent",
    write: false,
    plugins: [sourceUrls],
  });
  for (const f of result.outputFiles) {
    mkdirSync(dirname(f.path), { recursive: true });
    const toDist = relative(dirname(f.path), out).split("\\").join("/");
    writeFileSync(f.path, f.path.endsWith(".js") ? f.text.replaceAll(DIST_PLACEHOLDER, toDist ? `${toDist}/` : "./") : f.contents);
  }
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes("node_modules/"));
  const files = Object.fromEntries(
    inputs.map((f) => {
      const s = statSync(join(root, f));
      return [f, [s.size, s.mtimeMs]];
    }),
  );
  writeFileSync(join(out, "manifest.json"), JSON.stringify({ files }));
  say(`compiled the CLI into dist/ (${inputs.length} sources)`);
}

main().catch((e) => say(`CLI not compiled (${String(e.message ?? e).split("\n")[0]}); kiln runs from source through tsx`));
