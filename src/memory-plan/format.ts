// `kiln plan` output: a two-column table of the plan (binary units, exact bytes where they matter), the problems
// when it does not fit with the smallest tensor-parallel size that does, and one line per warning.
// Invariant: pure text from the plan; numbers are the plan's, never recomputed here.

import type { MemoryPlan } from "./plan.ts";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** 1536 -> "1.50 KiB"; exact integers below 1 KiB. */
export function formatBytes(n: number): string {
  let u = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(2)} ${UNITS[u]}`;
}

const count = (n: number) => n.toLocaleString("en-US");

export function formatPlan(p: MemoryPlan & { readonly suggestedTp?: number }, model: string): string {
  const o = p.options;
  const d = p.dims;
  const quant = [o.quant && `--quant ${o.quant}`, o.kvCache && `--kv-cache ${o.kvCache}`].filter(Boolean).join(", ");
  const rows: [string, string][] = [
    ["parameters", `${count(p.paramCount)} (${(p.paramCount / 1e9).toFixed(2)} B)`],
    ["model", `${d.numLayers} layers, ${d.heads} heads, ${d.kvHeads} kv heads × ${d.headDim}, hidden ${d.hidden}, mlp ${d.ffn}, vocab ${d.vocab}`],
    ...(p.moe
      ? ([
          ["experts", `${p.moe.numExperts} per layer, top ${p.moe.topK}; ${p.moe.expertsPerGpu} per GPU (moe_tp ${p.moe.moeTp} × moe_ep ${p.moe.moeEp})`],
          ["active per token", `${count(p.moe.activeParamsPerToken)} parameters (${(p.moe.activeParamsPerToken / 1e9).toFixed(2)} B)`],
        ] as [string, string][])
      : []),
    ["weights per GPU", `${formatBytes(p.weightsPerGpu)} (${count(p.weightsPerGpu)} B; all GPUs ${formatBytes(p.weightsAllGpus)})`],
    [
      "activations (estimate)",
      `${formatBytes(p.activationsPerGpu)} (${count(p.activationTokens)} tokens × ${formatBytes(p.activationBytesPerToken)} + logits ${formatBytes(p.logitsBytes)})`,
    ],
    [
      "KV cache per token",
      `${formatBytes(p.kvBytesPerTokenPerLayer)} per layer per GPU, ${formatBytes(p.kvBytesPerTokenPerGpu)} per GPU, ${formatBytes(p.kvBytesPerTokenAllGpus)} all GPUs`,
    ],
    ["KV cache (0.9 of free)", `${formatBytes(p.kvBudgetBytes)} → ${count(p.kvTokens)} tokens in ${count(p.kvBlocks)} blocks of 32`],
    ["full sequences at once", `${count(p.fullSequences)} of --max-seq ${o.maxSeq} (--max-batch ${o.maxBatch})`],
    ["fits", p.fits ? "yes" : "NO"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const head = `plan for ${model}: ${o.dtype}${quant ? ` (${quant})` : ""}, tp=${o.tp} pp=${o.pp}, ${o.gpu.name} (${formatBytes(o.gpu.bytes)})`;
  const lines = [head, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  if (o.pp > 1)
    for (const s of p.stages) lines.push(`  stage ${s.stage}: ${s.layers} layers, weights ${formatBytes(s.weightBytes)}, KV ${count(s.kvTokens)} tokens`);
  for (const why of p.problems) lines.push(`warning: does not fit: ${why}`);
  if (!p.fits)
    lines.push(
      p.suggestedTp !== undefined
        ? `hint: the smallest tensor-parallel size that fits is --tp ${p.suggestedTp}`
        : `hint: no tensor-parallel size up to ${d.heads} fits with pp=${o.pp}; try --pp, --quant or a larger GPU`,
    );
  for (const w of p.warnings) lines.push(`note: ${w}`);
  return `${lines.join("\n")}\n`;
}
