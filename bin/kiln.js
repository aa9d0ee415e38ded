#!/usr/bin/env node
// Entry point of the `kiln` command. Kiln itself runs compiled (dist/, built by `npm ci`: scripts/build-cli.mjs)
// when that build matches the sources, else from source through tsx. TypeScript loading (tsx), source-mapped
// stacks and the mapping of the bare specifier "kiln" to this package (for model files anywhere on disk) are set
// up for every command that may load a model (not for help or version), so those start as fast as Node allows.
import { readFileSync, statSync } from "node:fs";
import { register } from "node:module";

const root = new URL("../", import.meta.url);

/** dist/ is usable: built, and every source it was built from still has the size and mtime it had. */
function distIsFresh() {
  try {
    const { files } = JSON.parse(readFileSync(new URL("dist/manifest.json", root), "utf8"));
    return Object.entries(files).every(([f, [size, mtime]]) => {
      const s = statSync(new URL(f, root));
      return s.size === size && s.mtimeMs === mtime;
    });
  } catch {
    return false;
  }
}

const compiled = process.env.KILN_FROM_SOURCE !== "1" && distIsFresh();
const args = process.argv.slice(2);
/** Help and version print without loading a model; every other command may load one (a file, a zoo name or the
 * zoo entry a config picks: zoo models are .ts files too), so only these skip tsx. */
const onlyHelp = args.length === 0 || args.some((a) => a === "--help" || a === "-h" || a === "--version" || a === "-V") || args[0] === "help";
const needsTs = !compiled || !onlyHelp || args.some((a) => /\.[cm]?tsx?$/.test(a));
if (needsTs) process.setSourceMapsEnabled(true);
// The compiled CLI loads before tsx is registered, so tsx does not transform (and map) the 2 MB bundle again.
const cli = compiled ? await import("../dist/src/cli/main.js") : undefined;
if (needsTs) {
  const { register: registerTsx } = await import("tsx/esm/api");
  registerTsx();
  register("./resolve-kiln.js", import.meta.url, { data: { kiln: new URL(compiled ? "dist/src/index.js" : "src/index.ts", root).href } });
}
const { main } = cli ?? (await import("../src/cli/main.ts"));
process.exitCode = await main(args);
