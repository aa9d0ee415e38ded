// Reads the facts the Triton repo must agree with from a built engine directory's
// config.json (written by TensorRT-LLM's Engine.save: {version, pretrained_config,
// build_config}). Invariant: returns undefined when the engine directory is not on
// this machine (it may exist only on the serving host); throws TritonOptionError
// when it exists but contradicts the options.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TritonOptionError } from "./options.ts";
import type { TritonRepoOptions } from "./options.ts";

export interface EngineFacts {
  tp: number;
  pp: number;
  maxBeamWidth: number | undefined;
}

const positiveInt = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined);

/** Engine facts from `<engineDir>/config.json`, or undefined if that file is absent here. */
export function readEngineFacts(engineDir: string): EngineFacts | undefined {
  const path = join(engineDir, "config.json");
  if (!existsSync(path)) return undefined;
  let cfg: { pretrained_config?: { mapping?: Record<string, unknown> }; build_config?: Record<string, unknown> };
  try {
    cfg = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new TritonOptionError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const mapping = cfg.pretrained_config?.mapping ?? {};
  return {
    tp: positiveInt(mapping.tp_size) ?? 1,
    pp: positiveInt(mapping.pp_size) ?? 1,
    maxBeamWidth: positiveInt(cfg.build_config?.max_beam_width),
  };
}

/** Options with tp/pp taken from the engine when not given; throws when given ones contradict it. */
export function reconcileWithEngine(opts: TritonRepoOptions, engine: EngineFacts | undefined): TritonRepoOptions {
  if (!engine) return opts;
  const where = join(opts.engineDir, "config.json");
  for (const key of ["tp", "pp"] as const) {
    if (opts[key] !== undefined && opts[key] !== engine[key]) {
      throw new TritonOptionError(`triton option ${key}=${opts[key]} contradicts ${where} (${key}_size ${engine[key]})`);
    }
  }
  const beam = opts.maxBeamWidth;
  if (beam !== undefined && engine.maxBeamWidth !== undefined && beam > engine.maxBeamWidth) {
    throw new TritonOptionError(`triton option maxBeamWidth=${beam} exceeds the engine's max_beam_width ${engine.maxBeamWidth} (${where})`);
  }
  return { ...opts, tp: engine.tp, pp: engine.pp };
}
