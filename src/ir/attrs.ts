// Attribute schemas as data. Each op declares its attributes with these descriptors; the TypeScript type of an
// op's attributes is derived from the descriptors, and the same descriptors drive validation (after protobuf
// decoding), printing and serialization. A descriptor is the single source of truth for an attribute.

import { DTYPES, type DType } from "./dtype.ts";
import type { Dim } from "./shape.ts";

export type AttrKind =
  | "number" // any finite float (eps, scale)
  | "int"
  | "bool"
  | "string"
  | "ints"
  | "dims" // a shape that may hold symbols
  | "dtype"
  | "json" // a plain JSON value (e.g. rope scaling parameters); compared structurally
  | { readonly oneOf: readonly string[] };

export type AttrSchema = Readonly<Record<string, AttrKind>>;

type KindType<K> = K extends "number" | "int"
  ? number
  : K extends "bool"
    ? boolean
    : K extends "string"
      ? string
      : K extends "ints"
        ? number[]
        : K extends "dims"
          ? Dim[]
          : K extends "dtype"
            ? DType
            : K extends "json"
              ? JsonValue
              : K extends { readonly oneOf: readonly (infer S)[] }
                ? S
                : never;

export type AttrsOf<S extends AttrSchema> = { [P in keyof S]: KindType<S[P]> };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Returns a reason the value does not fit the kind, or undefined when it does. */
export function checkAttr(kind: AttrKind, v: unknown): string | undefined {
  const isInt = (x: unknown) => typeof x === "number" && Number.isInteger(x);
  if (typeof kind === "object") return kind.oneOf.includes(v as string) ? undefined : `expected one of ${kind.oneOf.join("|")}`;
  const ok: Record<Exclude<AttrKind, object>, () => boolean> = {
    number: () => typeof v === "number" && Number.isFinite(v),
    int: () => isInt(v),
    bool: () => typeof v === "boolean",
    string: () => typeof v === "string",
    ints: () => Array.isArray(v) && v.every(isInt),
    dims: () => Array.isArray(v) && v.every((d) => (isInt(d) && (d as number) >= 0) || (typeof d === "string" && d.length > 0)),
    dtype: () => (DTYPES as readonly unknown[]).includes(v),
    json: () => v === null || ["boolean", "number", "string", "object"].includes(typeof v),
  };
  return ok[kind]() ? undefined : `expected ${kind}`;
}

export function checkAttrs(schema: AttrSchema, attrs: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(schema)) {
    if (!(key in attrs)) return `missing attribute '${key}'`;
    const why = checkAttr(schema[key]!, attrs[key]);
    if (why) return `attribute '${key}': ${why}, got ${JSON.stringify(attrs[key])}`;
  }
  for (const key of Object.keys(attrs)) if (!(key in schema)) return `unknown attribute '${key}'`;
  return undefined;
}

/** Stable text for an attribute value (used by the printer and by CSE keys). */
export function formatAttr(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(v);
  if (typeof v === "string") return /^[A-Za-z_][\w.]*$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(formatAttr).join(", ")}]`;
  return stableJson(v);
}

export function stableJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(",")}}`;
}
