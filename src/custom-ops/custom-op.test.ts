// defineOp: a declared op traces, verifies, prints, round-trips through protobuf, runs in the interpreter, appears
// in patterns and rewrites; malformed declarations fail with one clear message naming the op and the field.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Tensor } from "../dsl/tensor.ts";
import { InterpError, runGraph } from "../interp/run.ts";
import { type RTensor, tensor } from "../interp/tensor.ts";
import { opDef, ShapeError } from "../ir/ops.ts";
import { printGraph } from "../ir/print.ts";
import { parseGraph, serializeGraph } from "../ir/serialize.ts";
import { verify } from "../ir/verify.ts";
import { pattern } from "../passes/pattern.ts";
import { rule, rulePass } from "../passes/rule.ts";
import { applyAndCheck, traceFn } from "../passes/testing.ts";
import { customOp, defineOp, type OpDecl, OpDeclError } from "./custom-op.ts";

const map = (x: RTensor, f: (v: number) => number) => tensor(x.dtype, x.shape, Float32Array.from(x.data, f));

// silu(x) * scale: one input, one attribute, one output.
const SCALED_SILU = defineOp({
  name: "test.scaled_silu",
  doc: "x * sigmoid(x) * scale",
  attrs: { scale: "number" },
  inputs: ["x"],
  outputs: ["y"],
  infer: ([x]) => [x!],
  reference: ([x], { scale }) => [map(x!, (v) => (v / (1 + Math.exp(-v))) * scale)],
});
const scaledSilu = (x: Tensor, scale: number) => SCALED_SILU.apply([x], { scale })[0]!;

const trace = (fwd: (x: Tensor) => Tensor) =>
  traceFn(
    () => {},
    (_m, x) => fwd(x!),
    [{ name: "x", dtype: "f32", shape: ["n", 4] }],
  );

describe("a declared op works like a built-in one", () => {
  it("traces, verifies, prints, round-trips and runs", () => {
    const g = verify(trace((x) => scaledSilu(x, 2)));
    expect(printGraph(g, { locations: false })).toMatchInlineSnapshot(`
      "graph fn {
        input %0: f32[n, 4] x
        %1: f32[n, 4] = test.scaled_silu %0 scale=2
        output logits = %1
      }
      "
    `);
    expect(printGraph(parseGraph(serializeGraph(g)))).toBe(printGraph(g));
    const y = runGraph(g, new Map([["x", tensor("f32", [1, 4], Float32Array.of(0, 1, -1, 2))]]), new Map()).get("logits")!;
    expect([...y.data].map((v) => v.toFixed(5))).toEqual(["0.00000", "1.46212", "-0.53788", "3.52319"]);
    expect(opDef("test.scaled_silu")?.doc).toBe("x * sigmoid(x) * scale");
    expect(customOp("test.scaled_silu")).toBe(SCALED_SILU);
  });

  it("is produced by a rewrite rule (proven equivalent) and matched by a pattern", () => {
    const g = trace((x) => x.sigmoid().mul(x).mul(3));
    const toOp = rule({
      name: "x * sigmoid(x) * k -> scaled_silu",
      pattern: pattern("scaled silu", { x: "value", k: "constant" }, ({ x, k }) => x.mul(x.sigmoid()).mul(k)),
      rewrite: ({ t, constants }) => scaledSilu(t.x, constants.k!),
    });
    const out = applyAndCheck(g, [rulePass("to-op", "", [toOp])]);
    expect(out.counts).toEqual({ "test.scaled_silu": 1 });
    expect(out.equivalence.ok).toBe(true);
    // And back: a pattern over the custom op itself.
    const back = rule({
      name: "scaled_silu(x, 3) -> silu(x) * 3",
      pattern: pattern("scaled silu op", { x: "value" }, ({ x }) => scaledSilu(x, 3)),
      rewrite: ({ t }) => t.x.silu().mul(3),
    });
    const round = applyAndCheck(out.graph, [rulePass("from-op", "", [back])]);
    expect(round.counts).toEqual({ silu: 1, constant: 1, mul: 1 });
    expect(round.equivalence.ok).toBe(true);
  });

  it("rejects bad operands and attributes while tracing, naming the op", () => {
    expect(() => trace((x) => SCALED_SILU.apply([x, x], { scale: 1 })[0]!)).toThrow(/test\.scaled_silu: takes 1 inputs, got 2/);
    expect(() => trace((x) => SCALED_SILU.apply([x], { scale: "big" as never })[0]!)).toThrow(
      /custom op 'test\.scaled_silu': attribute 'scale': expected number, got "big"/,
    );
  });
});

const base: OpDecl<{}> = { name: "test.ok", doc: "identity", attrs: {}, inputs: ["x"], outputs: ["y"], infer: ([x]) => [x!], reference: ([x]) => [x!] };
const kernelDir = mkdtempSync(join(tmpdir(), "kiln-op-"));
const kernelFile = (source: string) => {
  const p = join(kernelDir, `k${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(p, source);
  return p;
};

describe("malformed declarations", () => {
  const cases: [string, Partial<OpDecl<any>>, RegExp][] = [
    [
      "missing reference",
      { name: "test.m1", reference: undefined as never },
      /custom op 'test\.m1': missing `reference`, the TypeScript implementation the interpreter runs/,
    ],
    ["missing shape rule", { name: "test.m2", infer: undefined as never }, /custom op 'test\.m2': missing `infer`, the shape\/dtype rule/],
    ["bad name", { name: "Test-Op" }, /custom op 'Test-Op': the name must be lower_snake_case/],
    ["built-in name", { name: "rms_norm" }, /custom op 'rms_norm': clashes with a built-in op/],
    ["optional input first", { name: "test.m3", inputs: ["bias?", "x"] }, /optional inputs \('name\?'\) must all come last/],
    ["unknown lowering", { name: "test.m4", lowering: { kind: "plugin" } as never }, /lowering\.kind 'plugin' is neither "trtllm" nor "python_plugin"/],
    [
      "callee outside tensorrt_llm",
      { name: "test.m5", lowering: { kind: "trtllm", callee: "torch.relu", args: {} } },
      /lowering\.callee 'torch\.relu' must be a dotted name inside tensorrt_llm/,
    ],
    [
      "callee arg from a missing input",
      { name: "test.m6", lowering: { kind: "trtllm", callee: "tensorrt_llm.functional.relu", args: { input: { input: 1 } } } },
      /lowering\.args\.input: input 1 is not an input index \(0\.\.0\)/,
    ],
    [
      "relative kernel path",
      { name: "test.m7", lowering: { kind: "python_plugin", kernel: "kernel.py", outputLike: [0] } },
      /lowering\.kernel 'kernel\.py' is relative; give new URL\("\.\/kernel\.py", import\.meta\.url\)/,
    ],
    [
      "missing kernel file",
      { name: "test.m8", lowering: { kind: "python_plugin", kernel: "/nonexistent/k.py", outputLike: [0] } },
      /lowering\.kernel \/nonexistent\/k\.py does not exist/,
    ],
    [
      "kernel without launch",
      { name: "test.m9", lowering: { kind: "python_plugin", kernel: kernelFile("def run(inputs, outputs):\n    pass\n"), outputLike: [0] } },
      /lowering\.launch: .*k\w+\.py defines no top-level function 'launch'/,
    ],
    [
      "outputLike of the wrong length",
      { name: "test.m10", lowering: { kind: "python_plugin", kernel: kernelFile("def launch(i, o):\n    pass\n"), outputLike: [0, 0] } },
      /lowering\.outputLike has 2 entries for 1 outputs/,
    ],
    [
      "no plugin shape rule",
      { name: "test.m11", lowering: { kind: "python_plugin", kernel: kernelFile("def launch(i, o):\n    pass\n") } },
      /needs exactly one of outputLike .* or shapeRule/,
    ],
    [
      "wrong shape rule",
      { name: "test.m12", infer: ([x]) => [{ dtype: x!.dtype, shape: [...x!.shape, 2] }], verify: { cases: [{ shapes: [[3, 4]], attrs: {} }] } },
      /custom op 'test\.m12': verify\.cases\[0\]: the shape rule says output 0 \(y\) is f32\[3, 4, 2\] but the reference returned f32\[3, 4\] for inputs f32\[3, 4\]/,
    ],
    [
      "shape rule with too many outputs",
      { name: "test.m13", infer: ([x]) => [x!, x!], verify: { cases: [{ shapes: [[2]], attrs: {} }] } },
      /shape rule of custom op 'test\.m13' returned 2 output types, the declaration names 1 \(y\)/,
    ],
    [
      "verify case of the wrong arity",
      { name: "test.m14", verify: { cases: [{ shapes: [[2], [2]], attrs: {} }] } },
      /verify\.cases\[0\] gives 2 input shapes, the op takes 1/,
    ],
  ];
  for (const [what, patch, message] of cases)
    it(what, () => {
      const d = { ...base, ...patch } as OpDecl<any>;
      let err: unknown;
      try {
        defineOp(d);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OpDeclError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain("\n");
      if (/^test\./.test(d.name)) expect(opDef(d.name)).toBeUndefined();
    });

  it("a wrong shape rule without verify cases is caught when the interpreter runs the op", () => {
    const bad = defineOp({ ...base, name: "test.late", infer: ([x]) => [{ dtype: x!.dtype, shape: [x!.shape[0]!, 2] }] });
    const g = traceFn(
      () => {},
      (_m, x) => bad.apply([x!], {})[0]!,
      [{ name: "x", dtype: "f32", shape: [3, 4] }],
    );
    expect(() => runGraph(g, new Map([["x", tensor("f32", [3, 4])]]), new Map())).toThrow(InterpError);
    expect(() => runGraph(g, new Map([["x", tensor("f32", [3, 4])]]), new Map())).toThrow(
      /custom op 'test\.late': the shape rule says output 0 \(y\) is f32\[3, 2\] but the reference returned f32\[3, 4\]/,
    );
  });

  it("a shape rule that throws becomes an error at the user's line", () => {
    const picky = defineOp({
      ...base,
      name: "test.picky",
      infer: () => {
        throw new Error("x must be square");
      },
    });
    expect(() => trace((x) => picky.apply([x], {})[0]!)).toThrow(
      /test\.picky: shape rule of custom op 'test\.picky' threw: x must be square; operands: f32\[n, 4\] \(.*custom-op\.test\.ts:\d+/,
    );
    const strict = defineOp({
      ...base,
      name: "test.strict",
      infer: ([x]) => {
        if (x!.shape.length !== 3) throw new ShapeError(`needs rank 3, got ${x!.shape.length}`);
        return [x!];
      },
    });
    expect(() => trace((x) => strict.apply([x], {})[0]!)).toThrow(/test\.strict: needs rank 3, got 2/);
  });

  it("re-declaring the same op returns the first handle; a different one is refused", () => {
    const a = defineOp({ ...base, name: "test.again" });
    expect(defineOp({ ...base, name: "test.again" })).toBe(a);
    expect(() => defineOp({ ...base, name: "test.again", doc: "something else" })).toThrow(
      /custom op 'test\.again': is already declared with a different declaration/,
    );
  });
});
