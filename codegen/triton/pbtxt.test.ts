// Protobuf text-format codec: exact printed text, round trips (examples and
// property-based), the syntax variants protoc accepts, and rejected inputs.

import fc from "fast-check";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { modelConfigType } from "./model-config.ts";
import { TextFormatError, parseTextFormat, printTextFormat } from "./pbtxt.ts";
import { Lexer, quoteString } from "./pbtxt-lexer.ts";

const TEST_PROTO = `
syntax = "proto3";
package t;
enum Color { RED = 0; GREEN = 1; BLUE = 2; }
message Leaf { string s = 1; repeated int64 xs = 2; }
message Node {
  string name = 1;
  repeated sint32 vals = 2;
  Color color = 3;
  repeated Color colors = 4;
  Leaf leaf = 5;
  repeated Leaf leaves = 6;
  map<string, Leaf> by_name = 7;
  map<int32, string> by_id = 8;
  double ratio = 9;
  bool flag = 10;
  uint32 count = 11;
  int64 big = 12;
  oneof choice { string a = 13; Leaf b = 14; }
}`;
const root = protobuf.parse(TEST_PROTO, { keepCase: true }).root;
root.resolveAll();
const Node = root.lookupType("t.Node");

const roundTrip = (msg: object) => parseTextFormat(Node, printTextFormat(Node, msg));

describe("printTextFormat", () => {
  it("prints fields in field-number order with lists, nested blocks and sorted map entries", () => {
    const text = printTextFormat(Node, {
      flag: true,
      by_id: { "7": "seven", "-2": "minus two" },
      name: "n",
      leaves: [{ s: "a" }, { xs: [-1, 2] }],
      color: "BLUE",
      leaf: {},
      vals: [],
    });
    expect(text).toBe(
      [
        'name: "n"',
        "vals: []",
        "color: BLUE",
        "leaf {}",
        "leaves [",
        "  {",
        '    s: "a"',
        "  },",
        "  {",
        "    xs: [-1, 2]",
        "  }",
        "]",
        "by_id {",
        "  key: -2",
        '  value: "minus two"',
        "}",
        "by_id {",
        "  key: 7",
        '  value: "seven"',
        "}",
        "flag: true",
        "",
      ].join("\n"),
    );
  });

  it("escapes quotes, backslashes, newlines, control and non-ASCII characters", () => {
    expect(quoteString('say "hi"\\\n\t\r')).toBe('"say \\"hi\\"\\\\\\n\\t\\r"');
    expect(quoteString("\u0001\u007f")).toBe('"\\001\\177"');
    expect(quoteString("é€")).toBe('"\\303\\251\\342\\202\\254"'); // UTF-8 bytes in octal
    expect(printTextFormat(Node, { name: "a'b" })).toBe('name: "a\'b"\n');
  });

  it("writes empty lists and maps as [] and empty messages as {} (both parse back)", () => {
    const msg = { vals: [], by_name: {}, leaf: {} };
    expect(printTextFormat(Node, msg)).toBe("vals: []\nleaf {}\nby_name: []\n");
    expect(roundTrip(msg)).toEqual(msg);
  });

  it("prints special floats the way protoc reads them", () => {
    const text = printTextFormat(Node, { ratio: -Infinity });
    expect(text).toBe("ratio: -inf\n");
    expect(roundTrip({ ratio: -Infinity })).toEqual({ ratio: -Infinity });
    expect(roundTrip({ ratio: NaN }).ratio).toBeNaN();
    expect(roundTrip({ ratio: 1.5e-7 })).toEqual({ ratio: 1.5e-7 });
  });

  it("refuses invalid messages before printing, naming the field path", () => {
    const bad: [object, RegExp][] = [
      [{ nope: 1 }, /Node\.nope: unknown field "nope" in t\.Node/],
      [{ color: "PURPLE" }, /Node\.color: "PURPLE" is not a value of enum Color/],
      [{ leaves: [{ xs: [1.5] }] }, /Node\.leaves\[0\]\.xs\[0\]: expected a safe-integer int64/],
      [{ vals: [2 ** 31] }, /Node\.vals\[0\]: expected an int32/],
      [{ count: -1 }, /Node\.count: expected a uint32/],
      [{ by_id: { x: "y" } }, /Node\.by_id: map key "x" is not an int32/],
      [{ by_name: { k: "not a message" } }, /Node\.by_name\["k"\]: expected a t\.Leaf message/],
      [{ a: "x", b: {} }, /oneof choice has several fields set \(a, b\)/],
      [{ leaves: { s: "x" } }, /Node\.leaves: expected an array/],
      [{ name: "\ud800" }, /not well-formed UTF-16/],
    ];
    for (const [msg, re] of bad) expect(() => printTextFormat(Node, msg), JSON.stringify(msg)).toThrow(re);
  });
});

describe("parseTextFormat", () => {
  it("round-trips a message using every kind of field", () => {
    const msg = {
      name: 'quote " backslash \\ newline \n tab \t unicode é 😀',
      vals: [-3, 0, 7],
      color: "GREEN",
      colors: ["BLUE", "RED"],
      leaf: { s: "", xs: [] },
      leaves: [{ s: "x", xs: [-9007199254740991, 9007199254740991] }, {}],
      by_name: { "": { s: "empty key" }, 'k"ey': { xs: [1] } },
      by_id: { "0": "zero", "-5": "neg" },
      ratio: 0.25,
      flag: false,
      count: 4294967295,
      big: -1,
      b: { s: "in oneof" },
    };
    expect(roundTrip(msg)).toEqual(msg);
  });

  it("accepts protoc's syntax variants: comments, optional colons, <>, separators, numeric enums, hex", () => {
    const text = `
      # a comment line
      name: 'single' "concatenated"   # trailing comment
      vals: [ -1, 0x10 ] ; vals: 3
      color: 2
      colors: [GREEN, 0]
      leaf: < s: "angle" >
      leaves { s: "a" }, leaves: { xs: [ ] }
      leaves [ { s: "b" } ]
      by_name { key: "k" value: { s: "v" } }
      by_name: [ { key: "j", value { } }, { value { s: "no key" } } ]
      by_id { key: 1 }
      flag: t ratio: inf count: 0
      big: -42, a: "x";
    `;
    expect(parseTextFormat(Node, text)).toEqual({
      name: "singleconcatenated",
      vals: [-1, 16, 3],
      color: "BLUE",
      colors: ["GREEN", "RED"],
      leaf: { s: "angle" },
      leaves: [{ s: "a" }, { xs: [] }, { s: "b" }],
      by_name: { k: { s: "v" }, j: {}, "": { s: "no key" } },
      by_id: { "1": "" },
      flag: true,
      ratio: Infinity,
      count: 0,
      big: -42,
      a: "x",
    });
  });

  it("decodes octal, hex and unicode escapes as UTF-8", () => {
    expect(parseTextFormat(Node, String.raw`name: "\303\251\xe2\x82\xac\u00e9\U0001F600\?\a"`)).toEqual({
      name: "é€é😀?\u0007",
    });
  });

  it("reports errors with source:line:col", () => {
    const bad: [string, RegExp][] = [
      ['name: "a"\n  bogus: 1', /^cfg:2:3: unknown field "bogus" in t\.Node$/],
      ['name: "a" name: "b"', /cfg:1:11: non-repeated field "name" is set twice/],
      ['a: "x" b { }', /"b" and "a" are both set in oneof choice/],
      ["color: PURPLE", /cfg:1:8: "PURPLE" is not a value of enum Color/],
      ["color: 9", /"9" is not a value of enum Color/],
      ["vals: [1, 2", /expected "\]" to close the list of "vals"/],
      ["vals: 2147483648", /2147483648 is out of range for an int32/],
      ["count: -1", /-1 is out of range for a uint32/],
      ["big: 9007199254740992", /out of range for a safe-integer int64/],
      ["vals: 1.5", /expected an int32, found "1.5"/],
      ["vals: 010", /expected an int32, found "010"/],
      ['name: "open', /cfg:1:7: unterminated string literal/],
      [String.raw`name: "\377"`, /string literal is not valid UTF-8/],
      [String.raw`name: "\q"`, /unknown escape \\q/],
      ['leaf { s: "x"', /expected "}" to close a Leaf message, found end of input/],
      ['name "x"', /expected ":" after field "name"/],
      ["leaf: 3", /expected "\{" to open a Leaf message/],
      ["flag: yes", /expected true or false, found "yes"/],
      ["by_id { key: 1 key: 2 }", /unexpected "key" in an entry of map "by_id"/],
      ["by_id { key: 1 } by_id { key: 1 }", /map "by_id" has key "1" twice/],
      ["name: @", /unexpected character "@"/],
    ];
    for (const [text, re] of bad) {
      expect(() => parseTextFormat(Node, text, "cfg"), text).toThrow(TextFormatError);
      expect(() => parseTextFormat(Node, text, "cfg"), text).toThrow(re);
    }
  });

  it("reads a Triton config written in upstream style (spaces before colons, `f: { }`, commas)", () => {
    const text = `
name: "tensorrt_llm"
backend: "tensorrtllm"
max_batch_size: 8
model_transaction_policy {
  decoupled: False
}
dynamic_batching {
    preferred_batch_size: [ 8 ]
    default_queue_policy: { max_queue_size: 0 }
}
input [
  {
    name: "input_lengths"
    data_type: TYPE_INT32
    dims: [ 1 ]
    reshape: { shape: [ ] }
  }
]
output [ { name: "output_ids", data_type: TYPE_INT32, dims: [ -1, -1 ] } ]
instance_group [ { count: 1 kind : KIND_CPU } ]
parameters: {
  key: "gpt_model_type"
    value: {
      string_value: "inflight_fused_batching"
  }
}
`;
    expect(parseTextFormat(modelConfigType(), text)).toEqual({
      name: "tensorrt_llm",
      backend: "tensorrtllm",
      max_batch_size: 8,
      model_transaction_policy: { decoupled: false },
      dynamic_batching: { preferred_batch_size: [8], default_queue_policy: { max_queue_size: 0 } },
      input: [{ name: "input_lengths", data_type: "TYPE_INT32", dims: [1], reshape: { shape: [] } }],
      output: [{ name: "output_ids", data_type: "TYPE_INT32", dims: [-1, -1] }],
      instance_group: [{ count: 1, kind: "KIND_CPU" }],
      parameters: { gpt_model_type: { string_value: "inflight_fused_batching" } },
    });
  });
});

describe("properties", () => {
  it("any well-formed string survives quoteString → lexer", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-composite", maxLength: 40 }), (s) => {
        const tok = new Lexer(quoteString(s), "p").next();
        expect(tok).toMatchObject({ kind: "string", text: s });
      }),
      { numRuns: 300 },
    );
  });

  const leaf = fc.record({ s: fc.string({ maxLength: 8 }), xs: fc.array(fc.maxSafeInteger(), { maxLength: 3 }) }, { requiredKeys: [] });
  const node = fc.record(
    {
      name: fc.string({ maxLength: 12 }),
      vals: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 4 }),
      color: fc.constantFrom("RED", "GREEN", "BLUE"),
      leaves: fc.array(leaf, { maxLength: 3 }),
      by_name: fc.dictionary(fc.string({ maxLength: 5 }), leaf, { maxKeys: 3 }),
      by_id: fc.dictionary(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(String), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
      ratio: fc.double({ noNaN: true }),
      big: fc.maxSafeInteger(),
    },
    { requiredKeys: [] },
  );

  it("parse(print(m)) deep-equals m and printing is a fixed point", () => {
    fc.assert(
      fc.property(node, (m) => {
        const text = printTextFormat(Node, m);
        const back = parseTextFormat(Node, text);
        expect(back).toEqual(m);
        expect(printTextFormat(Node, back)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});
