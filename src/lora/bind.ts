// Binding a LoRA adapter to a model through the model's own weight map, so any model with a weight map takes
// adapters, not only LLaMA: each adapted module `M` must have a checkpoint tensor `M.weight` that the weight map
// reads into at least one parameter, of the shape A and B imply ([out, in], or [in, out] with fan_in_fan_out).
// Because every weight-map transform (transpose, concat, slice, reshape, repeat, pad) is linear, adding the LoRA
// delta s * B @ A to the source tensor is the same as adding it after the map: a fused qkv, a Conv1D transpose or a
// tensor-parallel slice all carry the delta along. That is how the interpreter and --lora-merge apply adapters.
// Errors: one line naming the adapter tensor and the module or checkpoint tensor at fault.

import type { TensorSource } from "../weights/bind.ts";
import { type Dense, exprSources, type WeightMapSpec } from "../weights/weight-map.ts";
import { type LoraAdapter, LoraError, type LoraModule } from "./adapter.ts";

export interface BoundModule extends LoraModule {
  /** The checkpoint tensor the adapter changes. */
  readonly source: string;
  /** The model parameters the weight map fills from it. */
  readonly params: readonly string[];
  /** Its layout is [in, out] (Conv1D), so the delta is transposed. */
  readonly fanInFanOut: boolean;
}

type Headers = Pick<TensorSource, "names" | "info">;

/** The checkpoint tensor holding a module's weight: `M.weight`, else the one name that differs only by a leading
 * prefix (a checkpoint saved from the bare decoder, or an adapter trained on a wrapper). */
function weightOf(module: string, ckpt: Headers): string | undefined {
  const exact = `${module}.weight`;
  if (ckpt.info(exact)) return exact;
  const near = ckpt.names().filter((n) => exact.endsWith(`.${n}`) || n.endsWith(`.${exact}`));
  return near.length === 1 ? near[0] : undefined;
}

export function bindAdapter(adapter: LoraAdapter, spec: WeightMapSpec, ckpt: Headers): BoundModule[] {
  const readers = new Map<string, string[]>();
  for (const [param, e] of Object.entries(spec.map)) for (const s of exprSources(e)) readers.set(s, [...(readers.get(s) ?? []), param]);
  const where = `${adapter.dir}/adapter_model.safetensors`;
  return adapter.modules.map((m) => {
    const source = weightOf(m.module, ckpt);
    const params = source ? readers.get(source) : undefined;
    if (!source || !params)
      throw new LoraError(
        `${where}: '${m.tensorA}' adapts module '${m.module}', but the model reads no weight '${m.module}.weight' (no such Linear in its weight map)`,
      );
    const w = ckpt.info(source)!.shape;
    const [out, inn] = [m.B.shape[0]!, m.A.shape[1]!];
    const want = adapter.fanInFanOut ? [inn, out] : [out, inn];
    if (w.length !== 2 || w[0] !== want[0] || w[1] !== want[1])
      throw new LoraError(
        `${where}: '${m.tensorA}' [${m.A.shape}] and '${m.tensorB}' [${m.B.shape}] make a [${want}] update${adapter.fanInFanOut ? " (fan_in_fan_out)" : ""}, but '${source}' is [${w}]`,
      );
    return { ...m, source, params, fanInFanOut: adapter.fanInFanOut };
  });
}

/** s * B @ A laid out like the base weight ([out, in], or [in, out] with fan_in_fan_out), accumulated in float64. */
export function loraDelta(m: Pick<BoundModule, "A" | "B" | "scale" | "fanInFanOut">): Dense {
  const [r, inn] = m.A.shape as [number, number];
  const out = m.B.shape[0]!;
  const d = new Float32Array(out * inn);
  const row = new Float64Array(inn);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const b = m.B.data[o * r + k]!;
      for (let i = 0; i < inn; i++) row[i]! += b * m.A.data[k * inn + i]!;
    }
    for (let i = 0; i < inn; i++) d[m.fanInFanOut ? i * out + o : o * inn + i] = m.scale * row[i]!;
  }
  return { shape: m.fanInFanOut ? [inn, out] : [out, inn], data: d };
}

/** The base weights with the adapter folded in (W + s B A), keyed by checkpoint tensor name. */
export async function mergedWeights(bound: readonly BoundModule[], read: (name: string) => Promise<Float32Array>): Promise<Map<string, Dense>> {
  const merged = new Map<string, Dense>();
  for (const m of bound) {
    const base = merged.get(m.source)?.data ?? (await read(m.source));
    const delta = loraDelta(m);
    const sum = new Float32Array(base.length);
    for (let i = 0; i < sum.length; i++) sum[i] = base[i]! + delta.data[i]!;
    merged.set(m.source, { shape: delta.shape, data: sum });
  }
  return merged;
}

/** A tensor source that serves merged weights in place of the base ones (float32; shapes unchanged). */
export function withMerged(base: TensorSource, merged: ReadonlyMap<string, Dense>): TensorSource {
  return {
    names: () => base.names(),
    info: (n) => base.info(n),
    readF32: async (n) => merged.get(n)?.data ?? base.readF32(n),
  };
}

/** `ckpt` with the adapter folded into the tensors it changes, checked against the model's weight map first. */
export async function adaptedSource(ckpt: TensorSource, spec: WeightMapSpec, adapter: LoraAdapter): Promise<TensorSource> {
  return withMerged(ckpt, await mergedWeights(bindAdapter(adapter, spec, ckpt), (n) => ckpt.readF32(n)));
}
