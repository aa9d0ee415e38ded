// `kiln passes <model.ts> --hf DIR [--explain] [--json]`: run the default pass pipeline and show what each pass
// did — op counts before and after, rewrites, and with --explain the near misses (patterns that almost matched and
// why not), plus the hints in effect.

import { instantiateFromDir } from "../../driver/instantiate.ts";
import { loadModelFile } from "../../driver/load-model-file.ts";
import { optimize } from "../../driver/optimize.ts";

export interface PassesFlags {
  readonly hf: string;
  readonly explain?: boolean;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

const MAX_MISSES_SHOWN = 5;

function diff(before: Record<string, number>, after: Record<string, number>): string {
  const ops = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const changes = ops.filter((o) => before[o] !== after[o]).map((o) => `${o} ${before[o] ?? 0}→${after[o] ?? 0}`);
  return changes.length ? changes.join(", ") : "no change";
}

export async function passesCommand(file: string, flags: PassesFlags, out: (s: string) => void): Promise<void> {
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  const inst = instantiateFromDir(def, flags.hf);
  const opt = optimize(inst);
  if (flags.json) {
    const passes = opt.log.map((e) => ({
      pass: e.pass,
      before: e.before,
      after: e.after,
      rewrites: e.rewrites,
      ms: Number(e.ms.toFixed(2)),
      ...(flags.explain && { nearMisses: e.nearMisses }),
    }));
    out(`${JSON.stringify({ model: def.name, hints: inst.graph.hints, nodes: { before: inst.graph.nodes.length, after: opt.graph.nodes.length }, passes })}\n`);
    return;
  }
  out(`model ${def.name}: ${inst.graph.nodes.length} nodes traced, ${opt.graph.nodes.length} after ${opt.log.length} passes\n`);
  const hints = Object.entries(inst.graph.hints);
  if (flags.explain)
    out(hints.length ? hints.map(([s, h]) => `hints ${s || "<model>"}: ${JSON.stringify(h)}\n`).join("") : "hints: none (defaults: every fusion on)\n");
  for (const e of opt.log) {
    out(`  ${e.pass.padEnd(20)} ${String(e.rewrites).padStart(4)} rewrites  ${diff(e.before, e.after)}\n`);
    if (!flags.explain) continue;
    out(`      ${e.description}\n`);
    const misses = [...e.nearMisses].sort((a, b) => b.matched - a.matched);
    for (const m of misses.slice(0, MAX_MISSES_SHOWN)) out(`      near miss ${m.rule} at ${m.at}: ${m.reason}\n`);
    if (misses.length > MAX_MISSES_SHOWN) out(`      ... ${misses.length - MAX_MISSES_SHOWN} more near misses (--json lists all)\n`);
  }
}
