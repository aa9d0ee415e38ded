// Runs several `kiln compile` command lines in one Node process (one tsx start-up instead of one per output), for
// the bridge tests that verify many outputs. Usage: node kiln_compile_many.mjs JOBS.json, where JOBS.json is a list
// of argument lists (each as given to `kiln`). Exits 1 at the first failing job, naming it.
import { readFileSync } from "node:fs";
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";

registerTsx();
register("../../bin/resolve-kiln.js", import.meta.url, { data: { kiln: new URL("../../src/index.ts", import.meta.url).href } });
const { main } = await import("../../src/cli/main.ts");
for (const args of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  let err = "";
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (s) => ((err += s), true);
  const code = await main(args, () => {});
  process.stderr.write = write;
  if (code !== 0) {
    console.error(`kiln ${args.join(" ")}: ${err.trim()}`);
    process.exit(1);
  }
}
