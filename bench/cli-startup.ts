// `npm run bench`, CLI part: `kiln --help` against `node -e 0` (fresh processes, interleaved, medians), and what the
// type check adds to a command when the model file is unchanged (the cache hit, timed in-process) and when it is
// not (a cold check, KILN_TYPECHECK_CACHE=0).

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { typecheckModelFile } from "../src/driver/load-model-file.ts";

const ROOT = join(import.meta.dirname, "..");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: "ignore", env });
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited with ${r.status}`);
  return (performance.now() - t0) / 1000;
}

export function startupBench(rounds: number): { lines: string[]; helpVsNode: number } {
  const node: number[] = [];
  const help: number[] = [];
  timeProcess(["bin/kiln.js", "--help"]);
  for (let i = 0; i < rounds; i++) {
    node.push(timeProcess(["-e", "0"]));
    help.push(timeProcess(["bin/kiln.js", "--help"]));
  }
  const helpVsNode = median(help) / median(node);
  return {
    helpVsNode,
    lines: [
      `  startup: kiln --help ${(median(help) * 1000).toFixed(0)} ms, node -e 0 ${(median(node) * 1000).toFixed(0)} ms: ${helpVsNode.toFixed(2)}x (medians of ${rounds}, interleaved; goal <= 3x)`,
    ],
  };
}

export function typecheckBench(rounds: number): { lines: string[]; cachedSeconds: number } {
  const model = join(ROOT, "models/llama.ts");
  const t0 = performance.now();
  process.env.KILN_TYPECHECK_CACHE = "0";
  try {
    typecheckModelFile(model);
  } finally {
    delete process.env.KILN_TYPECHECK_CACHE;
  }
  const cold = (performance.now() - t0) / 1000;
  typecheckModelFile(model); // fills the cache
  const hits: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    typecheckModelFile(model);
    hits.push((performance.now() - t) / 1000);
  }
  const cachedSeconds = median(hits);
  return {
    cachedSeconds,
    lines: [
      `  type check of models/llama.ts: unchanged (cache hit) ${(cachedSeconds * 1000).toFixed(1)} ms (median of ${rounds}; goal <= 100 ms), changed (ts-morph in a child process) ${cold.toFixed(2)} s`,
    ],
  };
}
