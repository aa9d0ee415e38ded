// Binding: checks a weight map against the model's parameters and a checkpoint's headers before any numbers are
// computed, and reports every missing, unused or mis-shaped tensor in one error. Then, for small models, loads the
// parameters as float32 (in memory) for the interpreter.

import type { Graph } from "../ir/graph.ts";
import { capList } from "../io/kiln-error.ts";
import { NumericsError } from "./numerics.ts";
import { type Dense, evalExpr, exprShape, exprSources, formatExpr, globToRegExp, WeightMapError, type WeightMapSpec } from "./weight-map.ts";

/** What binding needs from a checkpoint: names, header shapes, and float32 reads. */
export interface TensorSource {
  names(): string[];
  info(name: string): { readonly dtype: string; readonly shape: readonly number[] } | undefined;
  readF32(name: string): Promise<Float32Array>;
}

export class BindError extends Error {
  constructor(
    readonly problems: string[],
    where = "",
  ) {
    super(
      `weights${where && ` in ${where}`} do not fit the model (${problems.length.toLocaleString("en-US")} problem${problems.length > 1 ? "s" : ""}):\n  ${capList(problems, 40)}`,
    );
  }
}

const fmt = (s: readonly number[] | undefined) => `[${(s ?? []).join(", ")}]`;
const INTEGER_DTYPE = /^(I|U)\d+$|^BOOL$/;

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

export function graphParams(g: Graph): ParamSpec[] {
  return g.params.map((p) => ({ name: p.name, shape: g.values.get(p.value)!.shape as number[] }));
}

/** Every problem between parameters, the weight map and the checkpoint; empty when they fit. */
export function bindProblems(params: readonly ParamSpec[], spec: WeightMapSpec, source: TensorSource): string[] {
  const problems: string[] = [];
  const shapeOf = (n: string) => source.info(n)?.shape;
  const used = new Set<string>();
  const wanted = new Set(params.map((p) => p.name));
  for (const p of params) {
    const e = spec.map[p.name];
    if (!e) {
      problems.push(`parameter '${p.name}' ${fmt(p.shape)} has no entry in the weight map`);
      continue;
    }
    const missing = exprSources(e).filter((s) => !source.info(s));
    exprSources(e).forEach((s) => used.add(s));
    if (missing.length) {
      problems.push(`parameter '${p.name}': checkpoint has no tensor ${missing.map((m) => `'${m}'`).join(", ")}`);
      continue;
    }
    // Integer tensors are never read as weights (a retagged F32 tensor is valid safetensors, but its values are not).
    const integer = exprSources(e).filter((s) => INTEGER_DTYPE.test(source.info(s)!.dtype));
    if (integer.length) {
      problems.push(
        `parameter '${p.name}': checkpoint tensor ${integer.map((m) => `'${m}' is ${source.info(m)!.dtype}`).join(", ")}; weights must be floating point (F32, F16 or BF16)`,
      );
      continue;
    }
    try {
      const got = exprShape(e, shapeOf);
      if (got.length !== p.shape.length || got.some((d, i) => d !== p.shape[i]))
        problems.push(`parameter '${p.name}' is ${fmt(p.shape)} but ${formatExpr(e)} gives ${fmt(got)}`);
    } catch (err) {
      if (!(err instanceof WeightMapError)) throw err;
      problems.push(`parameter '${p.name}': ${err.message} in ${formatExpr(e)}`);
    }
  }
  for (const target of Object.keys(spec.map)) if (!wanted.has(target)) problems.push(`weight map entry '${target}' is not a parameter of the model`);
  const ignore = (spec.ignore ?? []).map(globToRegExp);
  const unused = source.names().filter((n) => !used.has(n) && !ignore.some((r) => r.test(n)));
  for (const n of unused) problems.push(`checkpoint tensor '${n}' ${fmt(shapeOf(n))} is not used by the model`);
  return problems;
}

/**
 * Evaluates every parameter's expression into float32 tensors (holds them all: the interpreter's weights). Source
 * tensors are read when a parameter first needs them and dropped after the last parameter that uses them, so
 * memory peaks at the parameters plus one parameter's sources, not at twice the weights. Non-finite source values
 * are an error naming every such tensor (after all are read), unless `allowNonFinite`.
 */
export async function loadParams(
  params: readonly ParamSpec[],
  spec: WeightMapSpec,
  source: TensorSource,
  where = "",
  opts: { allowNonFinite?: boolean } = {},
): Promise<Map<string, Dense>> {
  const problems = bindProblems(params, spec, source);
  if (problems.length) throw new BindError(problems, where);
  const usesLeft = new Map<string, number>();
  for (const p of params) for (const s of new Set(exprSources(spec.map[p.name]!))) usesLeft.set(s, (usesLeft.get(s) ?? 0) + 1);
  const cache = new Map<string, Dense>();
  const nonFinite: string[] = [];
  const out = new Map<string, Dense>();
  for (const p of params) {
    const sources = [...new Set(exprSources(spec.map[p.name]!))];
    for (const s of sources) {
      if (cache.has(s)) continue;
      const data = await source.readF32(s);
      const n = countNonFiniteF32(data);
      if (n) nonFinite.push(`tensor "${s}": ${n.toLocaleString("en-US")} non-finite value${n > 1 ? "s" : ""} (Inf/NaN)`);
      cache.set(s, { shape: source.info(s)!.shape, data });
    }
    out.set(
      p.name,
      evalExpr(spec.map[p.name]!, (s) => cache.get(s)!),
    );
    for (const s of sources) {
      const left = usesLeft.get(s)! - 1;
      usesLeft.set(s, left);
      if (left === 0) cache.delete(s);
    }
  }
  if (nonFinite.length && !opts.allowNonFinite)
    throw new NumericsError(
      `${where || "the checkpoint"}: ${nonFinite.length} weight tensor${nonFinite.length > 1 ? "s hold" : " holds"} non-finite values, so every logit would be NaN: ${capList(nonFinite, 8, "; ")}. Pass --allow-nonfinite to run anyway`,
    );
  return out;
}

function countNonFiniteF32(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) n++;
  return n;
}
