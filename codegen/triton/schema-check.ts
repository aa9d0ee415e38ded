// Checks a plain object against a protobufjs message Type before it is printed
// (and after it is parsed): unknown fields, wrong kinds, enum names, integer
// ranges, oneof exclusivity — then protobufjs's own Type.verify on the converted
// message. Invariant: an object that passes prints to text that parses back to it.

import protobuf from "protobufjs";
import type { FieldBase, MapField, Type } from "protobufjs";
import { TextFormatError } from "./pbtxt-lexer.ts";

/** Plain message: proto field name → value (see model-config.ts for the conventions). */
export type PlainMessage = { [field: string]: unknown };

const isInt = (v: unknown, lo: number, hi: number): boolean => typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;

const I32: [number, number] = [-(2 ** 31), 2 ** 31 - 1];
const U32: [number, number] = [0, 2 ** 32 - 1];
// 64-bit integers are plain JS numbers here; refuse values that would lose precision.
const I64: [number, number] = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
const U64: [number, number] = [0, Number.MAX_SAFE_INTEGER];

/** Scalar proto type → [check, description]. `bytes` is deliberately absent (unsupported). */
export const SCALARS: Record<string, { ok: (v: unknown) => boolean; what: string; range?: [number, number] }> = {
  string: { ok: (v) => typeof v === "string", what: "a string" },
  bool: { ok: (v) => typeof v === "boolean", what: "a boolean" },
  double: { ok: (v) => typeof v === "number", what: "a number" },
  float: { ok: (v) => typeof v === "number", what: "a number" },
  int32: { ok: (v) => isInt(v, ...I32), what: "an int32", range: I32 },
  sint32: { ok: (v) => isInt(v, ...I32), what: "an int32", range: I32 },
  sfixed32: { ok: (v) => isInt(v, ...I32), what: "an int32", range: I32 },
  uint32: { ok: (v) => isInt(v, ...U32), what: "a uint32", range: U32 },
  fixed32: { ok: (v) => isInt(v, ...U32), what: "a uint32", range: U32 },
  int64: { ok: (v) => isInt(v, ...I64), what: "a safe-integer int64", range: I64 },
  sint64: { ok: (v) => isInt(v, ...I64), what: "a safe-integer int64", range: I64 },
  sfixed64: { ok: (v) => isInt(v, ...I64), what: "a safe-integer int64", range: I64 },
  uint64: { ok: (v) => isInt(v, ...U64), what: "a safe-integer uint64", range: U64 },
  fixed64: { ok: (v) => isInt(v, ...U64), what: "a safe-integer uint64", range: U64 },
};

export function scalarSpec(type: string, path: string): (typeof SCALARS)[string] {
  const spec = SCALARS[type];
  if (!spec) throw new TextFormatError(`${path}: proto type "${type}" is not supported by the text-format codec`);
  return spec;
}

const isPlainObject = (v: unknown): v is PlainMessage => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Checks one singular value of `field` (a map field's value, or one element of a repeated field). */
function checkValue(field: FieldBase, value: unknown, path: string): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    if (!isPlainObject(value)) throw new TextFormatError(`${path}: expected a ${resolved.fullName.slice(1)} message`);
    checkFields(resolved, value, path);
  } else if (resolved instanceof protobuf.Enum) {
    if (typeof value !== "string" || !(value in resolved.values)) {
      const names = Object.keys(resolved.values).join(", ");
      throw new TextFormatError(`${path}: ${JSON.stringify(value)} is not a value of enum ${resolved.name} (${names})`);
    }
  } else {
    const spec = scalarSpec(field.type, path);
    if (!spec.ok(value)) throw new TextFormatError(`${path}: expected ${spec.what}, got ${JSON.stringify(value)}`);
  }
}

function checkMapKey(keyType: string, key: string, path: string): void {
  if (keyType === "string") return;
  const spec = scalarSpec(keyType, path);
  const asValue = keyType === "bool" ? ({ true: true, false: false } as Record<string, boolean>)[key] : Number(key);
  if (!spec.ok(asValue) || String(asValue) !== key) {
    throw new TextFormatError(`${path}: map key ${JSON.stringify(key)} is not ${spec.what}`);
  }
}

function checkFields(type: Type, msg: PlainMessage, path: string): void {
  for (const [name, value] of Object.entries(msg)) {
    const field = type.fields[name];
    const at = `${path}.${name}`;
    if (!field) throw new TextFormatError(`${at}: unknown field "${name}" in ${type.fullName.slice(1)}`);
    if (value === undefined) continue;
    if (field.map) {
      if (!isPlainObject(value)) throw new TextFormatError(`${at}: expected a map (plain object)`);
      for (const [k, v] of Object.entries(value)) {
        checkMapKey((field as FieldBase as MapField).keyType, k, at);
        checkValue(field, v, `${at}[${JSON.stringify(k)}]`);
      }
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new TextFormatError(`${at}: expected an array (repeated field)`);
      value.forEach((v, i) => checkValue(field, v, `${at}[${i}]`));
    } else {
      checkValue(field, value, at);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => msg[f.name] !== undefined).map((f) => f.name);
    if (set.length > 1) throw new TextFormatError(`${path}: oneof ${oneof.name} has several fields set (${set.join(", ")})`);
  }
}

/**
 * Throws TextFormatError naming the first offending field path (rooted at `root`) if `msg` is not a valid
 * plain `type` message; then runs protobufjs's verifier on the converted message as a second opinion.
 */
export function checkMessage(type: Type, msg: PlainMessage, root = type.name): void {
  if (!isPlainObject(msg)) throw new TextFormatError(`${root}: expected a ${type.fullName.slice(1)} message`);
  checkFields(type, msg, root);
  const verdict = type.verify(type.fromObject(msg));
  if (verdict) throw new TextFormatError(`${root}: ${verdict}`);
}
