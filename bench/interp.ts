// `npm run bench`, interpreter part: the CPU interpreter's fp32 forward of a 56M-parameter LLaMA over 64 tokens
// against PyTorch's on the same checkpoint with the same thread count, and KV-cached generation of 32 tokens
// against one 64-token prefill. Ratios come from one run: Kiln's rounds are split around PyTorch's (run in a
// child process, bench/torch_forward.py, when scripts/python.mjs finds a Python with torch and transformers), and
// medians are compared. Also the peak memory of `kiln run` on that model against its fp32 weights plus the KV cache.
// Runs alone with `npx tsx bench/interp.ts`.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import llama from "../models/llama.ts";
import { causalLMLogits } from "../src/interp/causal-lm.ts";
import { nativeKernels } from "../src/interp/fast/native.ts";
import { KvCacheSession } from "../src/interp/kv-cache.ts";
import { instantiateFromDir, loadWeights } from "../src/driver/instantiate.ts";
import { ensureInterpLlama, INTERP_LLAMA, interpLlamaParams } from "./interp-llama.ts";

const DIR = join(import.meta.dirname, ".data", "interp-llama");
const PROMPT = Array.from({ length: 64 }, (_, i) => (i * 7919 + 17) % 32000);
const NEW_TOKENS = 32;
const TIME = "/usr/bin/time";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;

/** The Python scripts/python.mjs picks (a plain .mjs script, so it runs as a child rather than being imported). */
function findPython(): string | undefined {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, "../scripts/python.mjs"), "torch", "transformers"], {
    encoding: "utf8",
    cwd: join(import.meta.dirname, ".."),
  });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function torchForward(threads: number, rounds: number): { seconds: number[]; torch: string } | string {
  const py = findPython();
  if (!py) return "no Python with torch and transformers found (scripts/python.mjs; .ci/setup-python.sh installs one)";
  const r = spawnSync(py, [join(import.meta.dirname, "torch_forward.py"), DIR, String(threads), String(rounds), PROMPT.join(",")], { encoding: "utf8" });
  if (r.status !== 0) return `PyTorch run failed: ${(r.stderr ?? "").trim().split("\n").at(-1)}`;
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { seconds: number[]; torch: string };
}

export interface InterpReport {
  readonly lines: string[];
  readonly forwardVsTorch?: number;
  readonly generationVsPrefill: number;
}

export async function interpBench(rounds: number, log: (m: string) => void = (m) => console.error(m)): Promise<InterpReport> {
  const params = await ensureInterpLlama(DIR, log);
  const inst = instantiateFromDir(llama, DIR);
  const weights = await loadWeights(inst, DIR);
  const native = nativeKernels();
  const threads = native?.threads() ?? 1;
  const forward = () => {
    const t0 = performance.now();
    causalLMLogits(inst.graph, weights, PROMPT);
    return (performance.now() - t0) / 1000;
  };
  forward(); // warm-up
  const kiln: number[] = [];
  const half = Math.ceil(rounds / 2);
  for (let i = 0; i < half; i++) kiln.push(forward());
  const torch = torchForward(threads, rounds);
  for (let i = half; i < rounds; i++) kiln.push(forward());

  // A decode step reads every weight once except the embedding table (one row): the memory-bound floor of a step.
  const tables = new Set(inst.graph.nodes.filter((n) => n.op === "embedding").map((n) => n.inputs[0]));
  const stepBytes = inst.graph.params.reduce((a, p) => a + (tables.has(p.value) ? 0 : weights.get(p.name)!.data.byteLength), 0);
  // The same number of bytes read by a bare SIMD loop on the same threads, twice per round next to the decode.
  const probe = native ? new Float32Array(stepBytes / 4).fill(1) : undefined;
  const bareRead: number[] = [];
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const s = new KvCacheSession(inst.graph, weights);
    const t0 = performance.now();
    const first = s.feed(PROMPT);
    const t1 = performance.now();
    let next = 1 + (first.data[first.data.length - 1]! > 0 ? 1 : 0);
    for (let k = 0; k < NEW_TOKENS; k++) next = 1 + (s.feed([next]).data[0]! > 0 ? 2 : 3);
    const t2 = performance.now();
    prefill.push((t1 - t0) / 1000);
    decode.push((t2 - t1) / 1000);
    if (probe) {
      const t3 = performance.now();
      native!.sum(probe);
      native!.sum(probe);
      bareRead.push((performance.now() - t3) / 2000);
    }
  }
  const ratios = prefill.map((p, i) => decode[i]! / p);
  const generationVsPrefill = median(ratios);
  const perToken = median(decode) / NEW_TOKENS;
  const lines = [
    `interpreter: ${(params / 1e6).toFixed(1)}M-parameter LLaMA (hidden 512, 8 layers, vocab 32000), fp32, 64-token prompt; ${native ? `native kernels (${native.isa()}, ${threads} threads)` : "JS kernels (no native helper)"}; ${availableParallelism()} CPUs; medians of ${rounds}`,
  ];
  let forwardVsTorch: number | undefined;
  if (typeof torch === "string") lines.push(`  forward: Kiln ${ms(median(kiln))} (best ${ms(Math.min(...kiln))}); PyTorch not run: ${torch}`);
  else {
    forwardVsTorch = median(kiln) / median(torch.seconds);
    lines.push(
      `  forward: Kiln ${ms(median(kiln))} (best ${ms(Math.min(...kiln))}), PyTorch ${torch.torch} ${ms(median(torch.seconds))} (best ${ms(Math.min(...torch.seconds))}), ${threads} threads each: ${forwardVsTorch.toFixed(2)}x PyTorch's time (goal <= 1.5x)`,
    );
  }
  lines.push(
    `  generation: ${NEW_TOKENS} new tokens with the KV cache ${ms(median(decode))}, one 64-token prefill ${ms(median(prefill))}: ${generationVsPrefill.toFixed(2)}x (median of per-round ratios; goal <= 3x)`,
    `    per token ${(perToken * 1000).toFixed(1)} ms: the ${(stepBytes / 2 ** 20).toFixed(0)} MiB of fp32 weights a step reads (all but the embedding table), at ${(stepBytes / perToken / 2 ** 30).toFixed(1)} GiB/s`,
  );
  if (bareRead.length) {
    // The fastest read is the best estimate of the bandwidth there is (a slower one was preempted), so the floor
    // is conservative; the prefill is its median like the ratio above.
    const read = Math.min(...bareRead);
    const floor = (NEW_TOKENS * read) / median(prefill);
    lines.push(
      `    memory floor: a bare SIMD read of as many bytes takes ${ms(read)} (fastest of ${bareRead.length} rounds, 2 reads each; ${(stepBytes / read / 2 ** 30).toFixed(1)} GiB/s), so ${NEW_TOKENS} steps cannot take under ${ms(NEW_TOKENS * read)}: ${floor.toFixed(2)}x the prefill on this machine`,
    );
  }
  return { lines, forwardVsTorch, generationVsPrefill };
}

/** Peak RSS (MiB, GNU time: the largest process of the tree) of a fresh `node bin/kiln.js run ...`; undefined without GNU time. */
function runPeakMB(hfDir: string, ids: readonly number[], newTokens: number): number | undefined {
  if (!existsSync(TIME)) return undefined;
  const args = [
    "-f",
    "%M",
    process.execPath,
    "bin/kiln.js",
    "run",
    "models/llama.ts",
    "--hf",
    hfDir,
    "--ids",
    ids.join(","),
    "--max-new-tokens",
    String(newTokens),
    "--json",
  ];
  const r = spawnSync(TIME, args, { cwd: join(import.meta.dirname, ".."), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kiln run failed: ${r.stderr.trim().split("\n").at(-1)}`);
  return Number(r.stderr.trim().split("\n").at(-1)) / 1024;
}

/** `kiln run` on the 56M model as a user runs it (fresh process, type check cached): peak RSS against its fp32 weights
 * plus the KV cache, and the same command on the tiny LLaMA fixture (the process's fixed cost: Node, the CLI, tsx). */
export async function runMemoryBench(log: (m: string) => void = (m) => console.error(m)): Promise<{ lines: string[]; ratio?: number }> {
  await ensureInterpLlama(DIR, log);
  const weightsBytes = interpLlamaParams() * 4;
  const { num_hidden_layers: layers, num_key_value_heads: kvh, head_dim: d } = INTERP_LLAMA;
  const kvBytes = layers * 2 * (PROMPT.length + NEW_TOKENS) * kvh * d * 4;
  const tiny = join(import.meta.dirname, "../test/fixtures/hf/llama");
  runPeakMB(DIR, PROMPT, 1); // fills the type-check cache, so the timed runs measure what a second command costs
  const peak = runPeakMB(DIR, PROMPT, NEW_TOKENS);
  const fixed = runPeakMB(tiny, [1, 2, 3], 4);
  if (peak === undefined || fixed === undefined) return { lines: ["  memory of kiln run: not measured (no GNU time at /usr/bin/time)"] };
  const budgetMB = (weightsBytes + kvBytes) / 2 ** 20;
  const ratio = peak / budgetMB;
  return {
    ratio,
    lines: [
      `  memory: kiln run (56.4M model, ${PROMPT.length}-token prompt, ${NEW_TOKENS} new tokens) peaks at ${peak.toFixed(0)} MiB, fp32 weights + KV cache ${budgetMB.toFixed(1)} MiB: ${ratio.toFixed(2)}x (goal <= 1.3x)`,
      `    the same command on the tiny LLaMA fixture (the process's fixed cost) ${fixed.toFixed(0)} MiB; above it: ${((peak - fixed) / budgetMB).toFixed(2)}x`,
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await interpBench(Number(process.env.KILN_BENCH_ROUNDS ?? 5));
  console.log([...r.lines, ...(await runMemoryBench()).lines].join("\n"));
}
