#!/usr/bin/env node
// Entry point of the `kiln` command: enables TypeScript loading (tsx) so Kiln and users' model files run from
// source, maps the bare specifier "kiln" to this package for model files anywhere on disk, then starts the CLI.
import { register } from "node:module";
import { register as registerTsx } from "tsx/esm/api";

registerTsx();
register("./resolve-kiln.js", import.meta.url, { data: { kiln: new URL("../src/index.ts", import.meta.url).href } });
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
