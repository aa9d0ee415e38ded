// A pre-quantized checkpoint (prequant-format.ts) seen as a plain float checkpoint: every quantized Linear's
// `<module>.weight` becomes a virtual F32 tensor holding its dequantized values, and the tensors it was made from
// (FP8 scales, packed INT4 `qweight`/`qzeros`/`scales`/`g_idx`) are hidden, so weight maps, binding, the
// interpreter and the converter read such a checkpoint exactly like an unquantized one. The scales stay available
// by HF module path for the quantizer (src/quant/prequant.ts), which writes them into TensorRT-LLM's layout.
// Dequantization, in float32 (every product below is exact in float64 and rounded once):
//   - FP8: w[o, i] = e4m3(code[o, i]) * weight_scale (one scale, or weight_scale[o] per output channel).
//   - INT4: w[o, i] = (q[o, i] - z[g(i), o]) * s[g(i), o], unpacked by int4-packing.ts.
// Invariants: a quantized weight without its scale (or an INT4 module missing any packed tensor) is a one-line
// PrequantError naming the tensor; scales must be positive and finite; INT4 tensors are unpacked one module at a time.

import type { Checkpoint } from "./checkpoint.ts";
import { e4m3ToF32 } from "../numerics/fp8-e4m3.ts";
import { type PrequantFormat, PrequantError } from "./prequant-format.ts";
import { dequantizeInt4, type Int4Layout, type Int4Module, int4Layout, readInt4 } from "./int4-packing.ts";

/** One quantized Linear of the source checkpoint, by its HF module path. */
export interface QuantizedLinear {
  readonly module: string;
  /** [out, in]. */
  readonly shape: readonly [number, number];
  /** FP8: the weight scale (a number, or one per output channel). */
  readonly weightScale?: number | Float32Array;
  /** FP8: the static input (activation) scale. */
  readonly inputScale?: number;
  /** INT4: where its packed tensors are (unpacked on demand by `int4`). */
  readonly int4?: Int4Layout;
  /** Source tensors this Linear consumes (hidden from the plain view). */
  readonly consumed: readonly string[];
}

const scalar = (v: Float32Array, name: string): number => {
  if (v.length !== 1) throw new PrequantError(`tensor "${name}" has ${v.length} values; a per-tensor scale has one`);
  return checkScale(v[0]!, name);
};

function checkScale(s: number, name: string): number {
  if (!(s > 0) || !Number.isFinite(s)) throw new PrequantError(`tensor "${name}": scale ${s} is not a positive finite number`);
  return s;
}

export class DequantSource {
  readonly #ckpt: Checkpoint;
  readonly format: PrequantFormat;
  /** By the virtual weight name `<module>.weight`. */
  readonly linears: ReadonlyMap<string, QuantizedLinear>;
  /** FP8 KV cache: HF attention module -> max(k_scale, v_scale) (TensorRT-LLM merges them by max). */
  readonly kvScales: ReadonlyMap<string, number>;
  readonly #hidden: ReadonlySet<string>;

  private constructor(ckpt: Checkpoint, format: PrequantFormat, linears: Map<string, QuantizedLinear>, kv: Map<string, number>, hidden: Set<string>) {
    this.#ckpt = ckpt;
    this.format = format;
    this.linears = linears;
    this.kvScales = kv;
    this.#hidden = hidden;
  }

  static async open(ckpt: Checkpoint, format: PrequantFormat): Promise<DequantSource> {
    const linears = new Map<string, QuantizedLinear>();
    const hidden = new Set<string>();
    const names = ckpt.names();
    const has = new Set(names);
    const read = (n: string) => ckpt.readF32(n);
    if (format.kind === "fp8") {
      for (const name of names) {
        if (!name.endsWith(".weight") || ckpt.info(name)!.dtype !== "F8_E4M3") continue;
        const module = name.slice(0, -".weight".length);
        const [ws, is] = [`${module}.weight_scale`, `${module}.input_scale`];
        if (!has.has(ws)) throw new PrequantError(`${ckpt.dir}: tensor "${name}" is F8_E4M3 but "${ws}" is missing`);
        if (!has.has(is)) throw new PrequantError(`${ckpt.dir}: tensor "${name}" is F8_E4M3 but "${is}" (its static activation scale) is missing`);
        const shape = ckpt.info(name)!.shape as [number, number];
        const raw = await read(ws);
        let weightScale: number | Float32Array;
        if (format.weightScales === "tensor") weightScale = scalar(raw, ws);
        else {
          if (raw.length !== shape[0])
            throw new PrequantError(`tensor "${ws}" has ${raw.length} values; per-channel scales need ${shape[0]} (one per output row)`);
          raw.forEach((s) => checkScale(s, ws));
          weightScale = raw;
        }
        linears.set(name, { module, shape, weightScale, inputScale: scalar(await read(is), is), consumed: [ws, is] });
        hidden.add(ws).add(is);
      }
      const kv = new Map<string, number>();
      for (const name of names) {
        const m = /^(.*?)(\.k_proj)?\.k_scale$/.exec(name);
        if (!m) continue;
        const attn = m[1]!;
        const vName = m[2] ? `${attn}.v_proj.v_scale` : `${attn}.v_scale`;
        if (!has.has(vName)) throw new PrequantError(`${ckpt.dir}: "${name}" has no matching "${vName}"`);
        kv.set(attn, Math.max(scalar(await read(name), name), scalar(await read(vName), vName)));
        hidden.add(name).add(vName);
      }
      if (format.kvCache && kv.size === 0)
        throw new PrequantError(`${format.from}: declares an FP8 KV cache but the checkpoint has no k_scale/v_scale tensors`);
      if (!linears.size) throw new PrequantError(`${format.from}: declares FP8 but no tensor "*.weight" is F8_E4M3`);
      return new DequantSource(ckpt, format, linears, kv, hidden);
    }
    for (const name of names) {
      if (!name.endsWith(".qweight")) continue;
      const q = await int4Layout(ckpt, name.slice(0, -".qweight".length), format);
      linears.set(`${q.module}.weight`, { module: q.module, shape: [q.out, q.in], int4: q, consumed: q.consumed });
      for (const c of q.consumed) hidden.add(c);
    }
    if (!linears.size) throw new PrequantError(`${format.from}: declares ${format.producer.toUpperCase()} but no tensor "*.qweight" exists`);
    return new DequantSource(ckpt, format, linears, new Map(), hidden);
  }

  names(): string[] {
    const plain = this.#ckpt.names().filter((n) => !this.#hidden.has(n));
    return [...plain, ...[...this.linears.keys()].filter((n) => !plain.includes(n))];
  }

  info(name: string): { readonly dtype: string; readonly shape: readonly number[] } | undefined {
    const l = this.linears.get(name);
    if (l) return { dtype: "F32", shape: l.shape };
    return this.#hidden.has(name) ? undefined : this.#ckpt.info(name);
  }

  async readF32(name: string): Promise<Float32Array> {
    const l = this.linears.get(name);
    if (!l) return this.#ckpt.readF32(name);
    if (l.int4) return dequantizeInt4(await this.int4(name));
    const codes = await this.#ckpt.readBytes(name);
    const s = l.weightScale!;
    if (typeof s === "number") return e4m3ToF32(codes, s);
    const out = e4m3ToF32(codes);
    const cols = l.shape[1];
    for (let i = 0; i < out.length; i++) out[i] = out[i]! * s[Math.floor(i / cols)]!;
    return out;
  }

  /** An INT4 Linear's codes, zeros and scales, by its virtual weight name (read and unpacked now). */
  async int4(name: string): Promise<Int4Module> {
    const l = this.linears.get(name)?.int4;
    if (!l) throw new PrequantError(`tensor "${name}" is not an INT4 Linear of ${this.#ckpt.dir}`);
    return readInt4(this.#ckpt, l);
  }

  /**
   * The checkpoint the converter streams from: FP8 weights carry their scale and are widened to F32 as they are read
   * (expr-reader.ts), so the converter re-encodes them with the group's scale without any temporary copy; INT4
   * Linears are written from their unpacked tensors (codegen/common/int4-tensors.ts) and never read as floats.
   */
  converterSource(): Checkpoint {
    if (this.format.kind === "int4") return this.#ckpt;
    const scales = new Map<string, number>();
    for (const [name, l] of this.linears) {
      if (typeof l.weightScale !== "number") throw new PrequantError(`tensor "${name}": per-channel FP8 weights are not written for TensorRT-LLM`);
      scales.set(name, l.weightScale);
    }
    return this.#ckpt.withDequantScales(scales);
  }
}
