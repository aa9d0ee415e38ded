// Protobuf TEXT format printer and parser driven by protobufjs reflection (any
// message Type: nested messages, enums, maps, repeated fields, oneofs).
// Invariants: printing validates first (schema-check.ts) and is deterministic —
// fields in field-number order, map entries sorted by key, two-space indent —
// and parseTextFormat(t, printTextFormat(t, m)) deep-equals m. The parser takes
// what protoc's TextFormat takes for these types: `#` comments, `f: v`, `f { }`,
// `f: { }`, `f < >`, `[a, b]` lists, map entries `{ key: .. value ..}`, and `,`/`;`
// after a field.

import protobuf from "protobufjs";
import type { Enum, Field, FieldBase, MapField, Type } from "protobufjs";
import { Lexer, quoteString } from "./pbtxt-lexer.ts";
import type { Token } from "./pbtxt-lexer.ts";
import { checkMessage, scalarSpec } from "./schema-check.ts";
import type { PlainMessage } from "./schema-check.ts";

export { TextFormatError } from "./pbtxt-lexer.ts";
export type { PlainMessage } from "./schema-check.ts";

const INDENT = "  ";

const messageTypeOf = (field: FieldBase): Type | null => (field.resolvedType instanceof protobuf.Type ? field.resolvedType : null);
const enumTypeOf = (field: FieldBase): Enum | null => (field.resolvedType instanceof protobuf.Enum ? field.resolvedType : null);
// protobufjs types Type.fields as Field although map fields are MapField (a FieldBase sibling).
const asMap = (field: FieldBase): MapField => field as MapField;
const byFieldNumber = (type: Type): Field[] => [...type.fieldsArray].sort((a, b) => a.id - b.id);

// ---------------------------------------------------------------- printer

function formatFloat(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return Object.is(v, -0) ? "-0" : String(v);
}

function formatScalar(field: FieldBase, v: unknown): string {
  if (enumTypeOf(field)) return v as string;
  if (field.type === "string") return quoteString(v as string);
  if (field.type === "float" || field.type === "double") return formatFloat(v as number);
  return String(v); // bool and integers: canonical JS text is canonical text format
}

/** Lines of a message block opened by `open` ("name " or "" for a list item). */
function printBlock(open: string, type: Type, msg: PlainMessage, pad: string): string[] {
  const body = printFields(type, msg, pad + INDENT);
  return body.length === 0 ? [`${pad}${open}{}`] : [`${pad}${open}{`, ...body, `${pad}}`];
}

function printMapEntry(field: MapField, key: string, value: unknown, pad: string): string[] {
  const inner = pad + INDENT;
  const keyText = field.keyType === "string" ? quoteString(key) : key; // checked canonical by schema-check
  const valueType = messageTypeOf(field);
  const valueLines = valueType ? printBlock("value ", valueType, value as PlainMessage, inner) : [`${inner}value: ${formatScalar(field, value)}`];
  return [`${pad}${field.name} {`, `${inner}key: ${keyText}`, ...valueLines, `${pad}}`];
}

function printRepeated(field: Field, values: unknown[], pad: string): string[] {
  if (values.length === 0) return [`${pad}${field.name}: []`];
  const type = messageTypeOf(field);
  if (!type) return [`${pad}${field.name}: [${values.map((v) => formatScalar(field, v)).join(", ")}]`];
  const items = values.map((v, i) => {
    const block = printBlock("", type, v as PlainMessage, pad + INDENT);
    if (i < values.length - 1) block[block.length - 1] += ",";
    return block;
  });
  return [`${pad}${field.name} [`, ...items.flat(), `${pad}]`];
}

function printFields(type: Type, msg: PlainMessage, pad: string): string[] {
  const lines: string[] = [];
  for (const field of byFieldNumber(type)) {
    const value = msg[field.name];
    if (value === undefined) continue;
    const sub = messageTypeOf(field);
    if (field.map) {
      const map = value as Record<string, unknown>;
      if (Object.keys(map).length === 0) lines.push(`${pad}${field.name}: []`); // maps are repeated entries
      for (const key of Object.keys(map).sort()) lines.push(...printMapEntry(asMap(field), key, map[key], pad));
    } else if (field.repeated) {
      lines.push(...printRepeated(field, value as unknown[], pad));
    } else if (sub) {
      lines.push(...printBlock(`${field.name} `, sub, value as PlainMessage, pad));
    } else {
      lines.push(`${pad}${field.name}: ${formatScalar(field, value)}`);
    }
  }
  return lines;
}

/** Validates `message` against `type` (throws TextFormatError), then prints it in protobuf text format. */
export function printTextFormat(type: Type, message: object): string {
  const msg = message as PlainMessage;
  checkMessage(type, msg);
  return `${printFields(type, msg, "").join("\n")}\n`;
}

// ---------------------------------------------------------------- parser

const BOOL_WORDS: Record<string, boolean> = { true: true, True: true, t: true, false: false, False: false, f: false };
const FLOAT_WORDS: Record<string, number> = { inf: Infinity, infinity: Infinity, nan: NaN };
const INT_RE = /^(-?)(?:0[xX]([0-9a-fA-F]+)|(0|[1-9]\d*))$/;

function parseInteger(tok: Token, protoType: string, lx: Lexer): number {
  const spec = scalarSpec(protoType, tok.text);
  const m = tok.kind === "number" ? INT_RE.exec(tok.text) : null;
  if (!m) throw lx.error(`expected ${spec.what}, found "${tok.text}"`, tok);
  const magnitude = m[2] !== undefined ? parseInt(m[2], 16) : Number(m[3]);
  const v = m[1] ? -magnitude : magnitude;
  if (!spec.ok(v)) throw lx.error(`${tok.text} is out of range for ${spec.what}`, tok);
  return v === 0 ? 0 : v; // no -0 for integers
}

function parseFloatValue(lx: Lexer): number {
  const negative = lx.tryPunct("-");
  const tok = lx.next();
  let v: number | undefined;
  if (tok.kind === "number" && !negative) v = Number(tok.text.replace(/[fF]$/, ""));
  else if (tok.kind === "ident") v = FLOAT_WORDS[tok.text.toLowerCase()];
  if (v === undefined || (tok.kind === "number" && Number.isNaN(v))) throw lx.error(`expected a number, found "${tok.text}"`, tok);
  return negative ? -v : v;
}

function parseScalarOfType(protoType: string, lx: Lexer): unknown {
  if (protoType === "string") {
    const tok = lx.next();
    if (tok.kind !== "string") throw lx.error(`expected a string, found "${tok.text}"`, tok);
    let s = tok.text;
    while (lx.peek()?.kind === "string") s += lx.next().text; // adjacent literals concatenate
    return s;
  }
  if (protoType === "float" || protoType === "double") return parseFloatValue(lx);
  const tok = lx.next();
  if (protoType === "bool") {
    const v = tok.kind === "ident" ? BOOL_WORDS[tok.text] : ({ "0": false, "1": true } as Record<string, boolean>)[tok.text];
    if (v === undefined) throw lx.error(`expected true or false, found "${tok.text}"`, tok);
    return v;
  }
  return parseInteger(tok, protoType, lx);
}

function parseScalar(field: FieldBase, lx: Lexer): unknown {
  const enumType = enumTypeOf(field);
  if (!enumType) return parseScalarOfType(field.type, lx);
  const tok = lx.next();
  if (tok.kind === "ident" && tok.text in enumType.values) return tok.text;
  const byNumber = tok.kind === "number" && INT_RE.test(tok.text) ? enumType.valuesById[Number(tok.text)] : undefined;
  if (byNumber !== undefined) return byNumber;
  throw lx.error(`"${tok.text}" is not a value of enum ${enumType.name}`, tok);
}

function parseBlock(type: Type, lx: Lexer): PlainMessage {
  const close = lx.tryPunct("{") ? "}" : lx.tryPunct("<") ? ">" : null;
  if (!close) throw lx.error(`expected "{" to open a ${type.name} message, found ${JSON.stringify(lx.peek()?.text ?? "end of input")}`);
  return parseFields(type, lx, close);
}

function defaultValue(field: FieldBase): unknown {
  const sub = messageTypeOf(field);
  if (sub) return {};
  const enumType = enumTypeOf(field);
  if (enumType) return enumType.valuesById[0] ?? Object.keys(enumType.values)[0];
  return ({ string: "", bool: false } as Record<string, unknown>)[field.type] ?? 0;
}

function parseMapEntry(field: MapField, lx: Lexer): [string, unknown] {
  const close = lx.tryPunct("{") ? "}" : lx.tryPunct("<") ? ">" : null;
  if (!close) throw lx.error(`expected "{" to open an entry of map "${field.name}"`);
  let key: string | undefined;
  let value: unknown;
  while (!lx.tryPunct(close)) {
    const tok = lx.expectIdent(`"key" or "value" in an entry of map "${field.name}"`);
    if (tok.text === "key" && key === undefined) {
      lx.expectPunct(":", `after "key"`);
      key = String(parseScalarOfType(field.keyType, lx));
    } else if (tok.text === "value" && value === undefined) {
      const sub = messageTypeOf(field);
      if (sub) lx.tryPunct(":");
      else lx.expectPunct(":", `after "value"`);
      value = sub ? parseBlock(sub, lx) : parseScalar(field, lx);
    } else {
      throw lx.error(`unexpected "${tok.text}" in an entry of map "${field.name}"`, tok);
    }
    if (!lx.tryPunct(",")) lx.tryPunct(";");
  }
  const defaultKey = ({ string: "", bool: "false" } as Record<string, string>)[field.keyType] ?? "0";
  return [key ?? defaultKey, value ?? defaultValue(field)];
}

/** One field occurrence after its name: returns its values (a list for `[...]` syntax). */
function parseFieldValues(field: Field, lx: Lexer): unknown[] {
  const sub = messageTypeOf(field);
  if (sub || field.map) lx.tryPunct(":");
  else lx.expectPunct(":", `after field "${field.name}"`);
  const one = (): unknown => (field.map ? parseMapEntry(asMap(field), lx) : sub ? parseBlock(sub, lx) : parseScalar(field, lx));
  if (!(field.repeated || field.map) || !lx.tryPunct("[")) return [one()];
  const items: unknown[] = [];
  if (lx.tryPunct("]")) return items;
  do items.push(one());
  while (lx.tryPunct(","));
  lx.expectPunct("]", `to close the list of "${field.name}"`);
  return items;
}

function store(msg: PlainMessage, field: Field, values: unknown[], lx: Lexer, at: Token): void {
  if (field.map) {
    const map = (msg[field.name] ??= {}) as Record<string, unknown>;
    for (const [k, v] of values as [string, unknown][]) {
      if (k in map) throw lx.error(`map "${field.name}" has key ${JSON.stringify(k)} twice`, at);
      map[k] = v;
    }
  } else if (field.repeated) {
    ((msg[field.name] ??= []) as unknown[]).push(...values);
  } else {
    if (field.name in msg) throw lx.error(`non-repeated field "${field.name}" is set twice`, at);
    const rival = field.partOf?.fieldsArray.find((f) => f !== field && f.name in msg);
    if (rival) throw lx.error(`"${field.name}" and "${rival.name}" are both set in oneof ${field.partOf!.name}`, at);
    msg[field.name] = values[0];
  }
}

function parseFields(type: Type, lx: Lexer, close: string | null): PlainMessage {
  const msg: PlainMessage = {};
  for (;;) {
    if (close === null ? lx.atEnd() : lx.tryPunct(close)) return msg;
    if (lx.atEnd()) throw lx.error(`expected "${close}" to close a ${type.name} message, found end of input`);
    const name = lx.expectIdent(`a field name of ${type.name}`);
    const field = type.fields[name.text];
    if (!field) throw lx.error(`unknown field "${name.text}" in ${type.fullName.slice(1)}`, name);
    store(msg, field, parseFieldValues(field, lx), lx, name);
    if (!lx.tryPunct(",")) lx.tryPunct(";");
  }
}

/** Parses protobuf text format into a plain `type` message; errors name `source`:line:col. */
export function parseTextFormat(type: Type, text: string, source = "<text>"): PlainMessage {
  const msg = parseFields(type, new Lexer(text, source), null);
  checkMessage(type, msg, source);
  return msg;
}
