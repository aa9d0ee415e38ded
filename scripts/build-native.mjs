// `npm ci` / `npm install` step: builds native/ (kiln_native.node, the copy_file_range helper of the weight
// converter, and kiln_gemm.node, the interpreter's SIMD kernels: native/gemm.c) with the node-gyp that ships with npm, against the local Node headers (no download). Optional by
// design: when it cannot be built (no compiler, no headers, not Linux), this prints one line and exits 0, and
// `kiln compile` copies weights through memory instead (same bytes, slower) and the interpreter runs JS kernels. KILN_NATIVE=0 skips the build.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "..");
const say = (msg) => console.error(`kiln: ${msg}`);

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js")];
  return candidates.find((p) => p && existsSync(p));
}

/** A directory holding include/node/node_api.h: npm's nodedir setting, else the prefix Node runs from. */
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, join(dirname(process.execPath), "..")];
  return candidates.find((d) => d && existsSync(join(d, "include/node/node_api.h")));
}

function main() {
  if (process.env.KILN_NATIVE === "0") return say("KILN_NATIVE=0: native copy helper not built");
  const gyp = nodeGyp();
  const dir = nodeDir();
  if (!gyp || !dir)
    return say(`native copy helper not built (${!gyp ? "node-gyp" : "Node's C headers"} not found); kiln compile will copy weights through memory (slower)`);
  const r = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${dir}`], { cwd: join(root, "native"), encoding: "utf8" });
  if (r.status !== 0) {
    const why = `${r.stderr ?? ""}${r.stdout ?? ""}`.split("\n").find((l) => /error/i.test(l)) ?? `node-gyp exited with ${r.status}`;
    return say(`native copy helper not built (${why.trim()}); kiln compile will copy weights through memory (slower)`);
  }
  say("built native/build/Release/kiln_native.node (copy_file_range weight copies) and kiln_gemm.node (interpreter kernels)");
}

main();
