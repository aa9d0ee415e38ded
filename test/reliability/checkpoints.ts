// Hostile variants of the tiny HF fixtures, made in a temp folder (never in the repo): a value planted in a tensor,
// a tensor's dtype retagged (same byte length, still valid safetensors), config.json fields replaced. Used by the
// numerics tests and the fuzz harness.

import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES } from "../golden.ts";

export type Fixture = "llama" | "gpt2" | "gptj" | "llama3_gqa";

interface Header {
  [name: string]: { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>;
}

function readHeader(file: string): { bytes: Buffer; header: Header; dataStart: number } {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  return { bytes, header: JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Header, dataStart: 8 + n };
}

/** A copy of fixture `name` in `dir`. */
export function copyFixture(name: Fixture, dir: string): string {
  cpSync(`${FIXTURES}${name}`, dir, { recursive: true });
  return dir;
}

/** Sets element `index` of F32 tensor `tensor` in dir/model.safetensors to `value`. */
export function plantF32(dir: string, tensor: string, index: number, value: number): void {
  const file = join(dir, "model.safetensors");
  const { bytes, header, dataStart } = readHeader(file);
  const t = header[tensor] as { dtype: string; data_offsets: [number, number] };
  if (t.dtype !== "F32") throw new Error(`${tensor} is ${t.dtype}`);
  bytes.writeFloatLE(value, dataStart + t.data_offsets[0] + 4 * index);
  writeFileSync(file, bytes);
}

/** Rewrites dtype strings of the header (same length, so offsets stay): e.g. F32 -> I32. */
export function retag(dir: string, tensor: string, dtype: string): void {
  const file = join(dir, "model.safetensors");
  const { bytes, header, dataStart } = readHeader(file);
  const t = header[tensor] as { dtype: string };
  const old = `"${tensor}":${JSON.stringify(t).replace(`"${t.dtype}"`, "DTYPE")}`;
  const text = bytes.subarray(8, dataStart).toString("utf8");
  const at = text.indexOf(`"${tensor}"`);
  const fieldAt = text.indexOf(`"dtype":"${t.dtype}"`, at);
  if (at < 0 || fieldAt < 0 || dtype.length !== t.dtype.length) throw new Error(`cannot retag ${tensor} (${old})`);
  bytes.write(`"dtype":"${dtype}"`, 8 + fieldAt, "utf8");
  writeFileSync(file, bytes);
}

/** Merges `fields` into dir/config.json (undefined deletes a field). */
export function patchConfig(dir: string, fields: Record<string, unknown>): void {
  const file = join(dir, "config.json");
  const cfg = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  for (const [k, v] of Object.entries(fields))
    if (v === undefined) delete cfg[k];
    else cfg[k] = v;
  writeFileSync(file, JSON.stringify(cfg, null, 2));
}
