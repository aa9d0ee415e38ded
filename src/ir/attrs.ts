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

const isInt = (x: unknown): boolean => typeof x === "number" && Number.isInteger(x);
const isDim = (d: unknown): boolean => (isInt(d) && (d as number) >= 0) || (typeof d === "string" && d.length > 0);
const JSON_TYPES = ["boolean", "number", "string", "object"];

/** Whether a value fits each named kind (the `oneOf` kind is checked against its list). */
const FITS: Record<Exclude<AttrKind, object>, (v: unknown) => boolean> = {
  number: (v) => typeof v === "number" && Number.isFinite(v),
  int: isInt,
  bool: (v) => typeof v === "boolean",
  string: (v) => typeof v === "string",
  ints: (v) => Array.isArray(v) && v.every(isInt),
  dims: (v) => Array.isArray(v) && v.every(isDim),
  dtype: (v) => (DTYPES as readonly unknown[]).includes(v),
  json: (v) => v === null || JSON_TYPES.includes(typeof v),
};

/** Returns a reason the value does not fit the kind, or undefined when it does. */
export function checkAttr(kind: AttrKind, v: unknown): string | undefined {
  if (typeof kind === "object") return kind.oneOf.includes(v as string) ? undefined : `expected one of ${kind.oneOf.join("|")}`;
  return FITS[kind](v) ? undefined : `expected ${kind}`;
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
