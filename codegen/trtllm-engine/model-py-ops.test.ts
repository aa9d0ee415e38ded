// Glue op rules: axes relative to the end, token dims untouched, scalars on the left through the functional form,
// unsupported ops and token-dim reshapes rejected with the node named; helpers emitted with their dependencies.

import { describe, expect, it } from "vitest";
import type { DType } from "../../src/ir/dtype.ts";
import type { Node } from "../../src/ir/graph.ts";
import type { Shape } from "../../src/ir/shape.ts";
import { CORE_OPS, type CoreOp } from "../../src/ir/ops.ts";
import { type AnyGlueCtx, constantLiteral, GLUE_OPS, type GlueRule, glueRuleFor, type HelperName, orderedHelpers } from "./model-py-ops.ts";
import { ModelPyError } from "../common/model-py-plan.ts";

const node = (op: string, attrs: Record<string, unknown> = {}): Node => ({
  op,
  inputs: [],
  outputs: [0],
  attrs,
  scope: "transformer.layers.0",
  loc: { file: "m.ts", line: 7, col: 1 },
});

function run(op: string, attrs: Record<string, unknown>, args: [string, Shape, boolean?][], dtype: DType = "f32"): { code: string; helpers: HelperName[] } {
  const helpers: HelperName[] = [];
  const ctx: AnyGlueCtx = {
    node: node(op, attrs),
    args: args.map(([expr, shape, literal]) => ({ expr, shape, literal: literal ?? false, dtype })),
    outShapes: [],
    F: (n) => `F.${n}`,
    helper: (h) => (helpers.push(h), h),
    dtype: (d) => (d === "f32" ? "self.config.dtype" : `"${d}"`),
  };
  return { code: glueRuleFor(op)!(ctx), helpers };
}

const H: Shape = ["batch", "seq", 64];

describe("glue op rules", () => {
  it("writes arithmetic with operators, and scalars on the left of / through F.div", () => {
    expect(
      run("mul", {}, [
        ["x", H],
        ["0.5", [], true],
      ]).code,
    ).toBe("x * 0.5");
    expect(
      run("sub", {}, [
        ["1.0", [], true],
        ["x", H],
      ]).code,
    ).toBe("1.0 - x");
    expect(
      run("div", {}, [
        ["1.0", [], true],
        ["x", H],
      ]).code,
    ).toBe("F.div(1.0, x)");
    expect(
      run("div", {}, [
        ["x", H],
        ["y", H],
      ]).code,
    ).toBe("x / y");
    expect(run("neg", {}, [["x", H]]).code).toBe("0.0 - x");
    expect(() =>
      run("add", {}, [
        ["1.0", [], true],
        ["2.0", [], true],
      ]),
    ).toThrow(/both operands are constants/);
  });

  it("emits axes counted from the end", () => {
    expect(run("softmax", { axis: 2 }, [["x", H]]).code).toBe("F.softmax(x, dim=-1)");
    expect(run("reduce_mean", { axes: [-1], keepDims: true }, [["x", H]]).code).toBe("F.mean(x, dim=-1, keepdim=True)");
    expect(run("reduce_sum", { axes: [2, 3], keepDims: false }, [["x", ["batch", "seq", 4, 16]]]).code).toBe("F.sum(x, dim=(-2, -1), keepdim=False)");
    expect(run("split", { axis: 2, sizes: [16, 48] }, [["x", H]]).code).toBe("F.split(x, [16, 48], dim=-1)");
    expect(run("repeat_interleave", { axis: 2, repeats: 2 }, [["k", ["batch", "seq", 2, 16]]]).code).toBe("F.repeat_interleave(k, 2, k.ndim() - 2)");
  });

  it("refuses to touch the batch/sequence dims, naming the node", () => {
    expect(() => run("softmax", { axis: 1 }, [["x", H]])).toThrow(ModelPyError);
    expect(() => run("softmax", { axis: 1 }, [["x", H]])).toThrow(/softmax in transformer\.layers\.0 at m\.ts:7:1: works on axis 1/);
    expect(() => run("reshape", { shape: ["seq", "batch", 64] }, [["x", H]])).toThrow(/changes the batch\/sequence dims/);
    expect(() => run("transpose", { perm: [1, 0, 2] }, [["x", H]])).toThrow(/moves a batch\/sequence dim/);
  });

  it("reshapes and permutes only the trailing dims, through helpers", () => {
    const r = run("reshape", { shape: ["batch", "seq", 4, 16] }, [["x", H]]);
    expect(r).toEqual({ code: "_kiln_view(x, 1, [4, 16])", helpers: ["_kiln_view"] });
    expect(run("transpose", { perm: [0, 1, 3, 2] }, [["x", ["batch", "seq", 4, 16]]]).code).toBe("_kiln_permute_tail(x, [1, 0])");
  });

  it("slices through split and keeps a whole-range slice as is", () => {
    expect(run("slice", { axis: -1, start: 16, end: 32 }, [["x", H]]).code).toBe("F.split(x, [16, 16, 32], dim=-1)[1]");
    expect(run("slice", { axis: -1, start: 0, end: 32 }, [["x", H]]).code).toBe("F.split(x, [32, 32], dim=-1)[0]");
    expect(run("slice", { axis: -1, start: 0, end: 64 }, [["x", H]]).code).toBe("x");
  });

  it("maps activations, exact GELU and rsqrt", () => {
    expect(run("gelu", { approximate: "tanh" }, [["x", H]]).code).toBe("F.gelu(x)");
    expect(run("gelu", { approximate: "none" }, [["x", H]])).toEqual({ code: "_kiln_gelu_erf(x)", helpers: ["_kiln_gelu_erf"] });
    expect(run("rsqrt", {}, [["x", H]]).code).toBe("F.div(1.0, F.sqrt(x))");
    expect(run("gated_activation", { act: "silu" }, [["x", ["batch", "seq", 128]]]).code).toBe("_kiln_gated(x, 64, F.silu)");
    expect(run("cast", { dtype: "f16", island: "none" }, [["x", H]]).code).toBe('F.cast(x, "f16")');
    // A float32 island: float32 in every build on the way in, the model's dtype on the way out.
    expect(run("cast", { dtype: "f32", island: "none" }, [["x", H]]).code).toBe("F.cast(x, self.config.dtype)");
    expect(run("cast", { dtype: "f32", island: "enter" }, [["x", H]]).code).toBe('F.cast(x, "float32")');
    expect(run("cast", { dtype: "f32", island: "exit" }, [["x", H]]).code).toBe("F.cast(x, self.config.dtype)");
    expect(
      run("linear", {}, [
        ["x", H],
        ["self.w.value", [32, 64]],
        ["self.b.value", [32]],
      ]).code,
    ).toBe("F.matmul(x, self.w.value, transb=True) + self.b.value");
  });

  it("rejects ops that only exist inside TensorRT-LLM's fused attention", () => {
    for (const op of ["rope", "causal_mask", "attention"]) expect(() => run(op, {}, [["x", H]])).toThrow(/TensorRT-LLM/);
  });
});

describe("routing glue", () => {
  const R: Shape = ["batch", "seq", 8];
  it("uses TensorRT-LLM's functional routing ops with non-negative dims", () => {
    expect(run("topk", { k: 2, axis: -1 }, [["r", R]]).code).toBe("F.topk(r, 2, r.ndim() - 1)");
    expect(run("argmax", { axis: 2, keepDims: true }, [["r", R]]).code).toBe("F.argmax(r, r.ndim() - 1, keepdim=True)");
    expect(
      run("greater", {}, [
        ["r", R],
        ["0.5", [], true],
      ]).code,
    ).toBe("F.gt(r, 0.5)");
    expect(
      run("less", {}, [
        ["r", R],
        ["s", R],
      ]).code,
    ).toBe("F.lt(r, s)");
    expect(
      run("equal", {}, [
        ["r", R],
        ["s", R],
      ]).code,
    ).toBe("F.eq(r, s)");
    expect(
      run("where", {}, [
        ["c", R],
        ["r", R],
        ["0.0", [], true],
      ]).code,
    ).toBe("F.where(c, r, 0.0)");
    expect(
      run("gather", { axis: -1 }, [
        ["r", R],
        ["i", R],
      ]).code,
    ).toBe("F.gather(r, r.ndim() - 1, i)");
    expect(
      run("index_select", { axis: -1 }, [
        ["r", R],
        ["i", [3]],
      ]).code,
    ).toBe("F.index_select(r, r.ndim() - 1, i)");
    expect(run("one_hot", { numClasses: 8, dtype: "f32" }, [["i", R]])).toEqual({ code: "_kiln_one_hot(i, 8, self.config.dtype)", helpers: ["_kiln_one_hot"] });
  });

  it("refuses moe as glue, saying why TensorRT-LLM's MOE cannot run it (the forms it can run are lowered to trtllm.moe)", () => {
    expect(() => run("moe", { scoring: "sigmoid", activation: "silu" }, [["x", R]])).toThrow(
      /moe in transformer\.layers\.0 at m\.ts:7:1: this mixture-of-experts block cannot be TensorRT-LLM's MOE \(router scoring 'sigmoid'.*--target hf or trtllm-torch/,
    );
  });
});

describe("helpers and constants", () => {
  it("orders helpers after their dependencies", () => {
    expect(orderedHelpers(new Set<HelperName>(["_kiln_gelu_erf", "_kiln_view", "_kiln_erf"]))).toEqual(["_kiln_erf", "_kiln_gelu_erf", "_kiln_view"]);
  });

  it("writes constants by dtype", () => {
    expect([constantLiteral(2, "f32"), constantLiteral(2, "i32"), constantLiteral(1, "bool"), constantLiteral(-0, "bf16")]).toEqual([
      "2.0",
      "2",
      "True",
      "-0.0",
    ]);
  });
});

describe("GLUE_OPS is complete over the op table", () => {
  it("does not compile without a rule for every core op", () => {
    // @ts-expect-error: a table missing any core op (here all but `add`) is a type error, so a new op cannot be forgotten
    const incomplete: { readonly [K in CoreOp]: GlueRule<K> } = { add: GLUE_OPS.add };
    expect(Object.keys(incomplete)).toEqual(["add"]);
    expect(Object.keys(GLUE_OPS).sort()).toEqual(Object.keys(CORE_OPS).sort());
  });
});
