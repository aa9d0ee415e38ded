// Core ops as PyTorch glue: axes relative to the end (one rule for [batch, seq, ...] and packed [tokens, ...]),
// token dims never reshaped or permuted, casts to the model's own dtype follow its run-time dtype, helpers only when
// used, and the ops that belong inside attention refused with the node named.

import { describe, expect, it } from "vitest";
import type { DType } from "../../src/ir/dtype.ts";
import type { Shape } from "../../src/ir/shape.ts";
import { CORE_OPS, type CoreOp } from "../../src/ir/ops.ts";
import { type AnyTorchGlueCtx, orderedTorchHelpers, TORCH_GLUE_OPS, type TorchGlueRule, type TorchHelper, torchGlueRuleFor } from "./glue-ops.ts";

function rule(op: string, attrs: Record<string, unknown>, args: { expr: string; shape: Shape; dtype?: DType; literal?: boolean }[]) {
  const helpers = new Set<TorchHelper>();
  const ctx: AnyTorchGlueCtx = {
    node: { op, attrs, inputs: [], outputs: [], scope: "transformer.layers.0", loc: { file: "m.ts", line: 7, col: 1 } },
    args: args.map((a) => ({ expr: a.expr, shape: a.shape, dtype: a.dtype ?? "f32", literal: a.literal ?? false })),
    helper: (h) => (helpers.add(h), h),
    modelDtype: "MODEL_DTYPE",
    paramDtype: "f32",
  };
  return { expr: torchGlueRuleFor(op)!(ctx), helpers: [...helpers] };
}

const X = { expr: "x", shape: ["batch", "seq", 64] as Shape };

describe("torch glue ops", () => {
  it("uses negative axes and leaves token dims alone", () => {
    expect(rule("split", { axis: 2, sizes: [32, 32] }, [X]).expr).toBe("torch.split(x, [32, 32], dim=-1)");
    expect(rule("reduce_mean", { axes: [2], keepDims: true }, [X]).expr).toBe("torch.mean(x, dim=-1, keepdim=True)");
    expect(rule("slice", { axis: -1, start: 8, end: 24 }, [X]).expr).toBe("x.narrow(-1, 8, 16)");
    const r = rule("reshape", { shape: ["batch", "seq", 4, 16] }, [X]);
    expect(r).toEqual({ expr: "_kiln_reshape_tail(x, 1, [4, 16])", helpers: ["_kiln_reshape_tail"] });
  });

  it("refuses to reshape, permute or reduce over batch/sequence dims, naming the node", () => {
    expect(() => rule("reshape", { shape: ["batch", "seq", 64] }, [{ expr: "y", shape: ["seq", "batch", 64] }])).toThrow(
      /reshape in transformer\.layers\.0 at m\.ts:7:1: .*changes the batch\/sequence dims/,
    );
    expect(() => rule("transpose", { perm: [1, 0, 2] }, [X])).toThrow(/moves a batch\/sequence dim/);
    expect(() => rule("softmax", { axis: 1 }, [X])).toThrow(/works on axis 1 of \[batch, seq, 64\], a batch\/sequence dim/);
  });

  it("casts to the parameter dtype follow the model's run-time dtype; others are literal", () => {
    expect(rule("cast", { dtype: "f32", island: "none" }, [X]).expr).toBe("x.to(MODEL_DTYPE)");
    expect(rule("cast", { dtype: "i32", island: "none" }, [X]).expr).toBe("x.to(torch.int32)");
    expect(rule("cast", { dtype: "bf16", island: "none" }, [X]).expr).toBe("x.to(torch.bfloat16)");
    // A float32 island: in float32 whatever the model's dtype, and back to it at the exit.
    expect(rule("cast", { dtype: "f32", island: "enter" }, [X]).expr).toBe("x.to(torch.float32)");
    expect(rule("cast", { dtype: "f32", island: "exit" }, [X]).expr).toBe("x.to(MODEL_DTYPE)");
  });

  it("activations and gated layouts go through helpers only when needed", () => {
    expect(rule("gelu", { approximate: "none" }, [X])).toEqual({ expr: "F.gelu(x)", helpers: [] });
    expect(rule("gelu", { approximate: "tanh" }, [X])).toEqual({ expr: "_kiln_gelu_tanh(x)", helpers: ["_kiln_gelu_tanh"] });
    expect(rule("gated_activation", { act: "silu" }, [{ expr: "h", shape: ["t", 128] }]).expr).toBe("_kiln_gated(h, F.silu)");
    expect(orderedTorchHelpers(new Set<TorchHelper>(["_kiln_softmax", "_kiln_reshape_tail"]))).toEqual(["_kiln_reshape_tail", "_kiln_softmax"]);
  });

  it("refuses constant-only binaries and ops that live inside attention", () => {
    expect(() =>
      rule("add", {}, [
        { ...X, expr: "1.0", literal: true },
        { ...X, expr: "2.0", literal: true },
      ]),
    ).toThrow(/both operands are constants/);
    for (const op of ["rope", "causal_mask", "attention"]) expect(() => rule(op, {}, [X])).toThrow(new RegExp(`^${op} in transformer\\.layers\\.0`));
  });
});

describe("torch glue for routing and MoE", () => {
  const R = { expr: "r", shape: ["batch", "seq", 8] as Shape };
  const IDX = { expr: "i", shape: ["batch", "seq", 2] as Shape, dtype: "i32" as DType };
  it("casts torch's int64 indices to the IR's int32 and widens index operands", () => {
    expect(rule("topk", { k: 2, axis: 2 }, [R])).toEqual({ expr: "_kiln_topk(r, 2, -1)", helpers: ["_kiln_topk"] });
    expect(rule("argmax", { axis: -1, keepDims: false }, [R]).expr).toBe("torch.argmax(r, dim=-1, keepdim=False).to(torch.int32)");
    expect(rule("gather", { axis: -1 }, [R, IDX]).expr).toBe("torch.gather(r, -1, i.long())");
    expect(rule("index_select", { axis: -1 }, [R, { ...IDX, shape: [2] }]).expr).toBe("torch.index_select(r, -1, i.long())");
    expect(rule("one_hot", { numClasses: 8, dtype: "f32" }, [IDX]).expr).toBe("F.one_hot(i.long(), 8).to(MODEL_DTYPE)");
    expect(rule("one_hot", { numClasses: 8, dtype: "i32" }, [IDX]).expr).toBe("F.one_hot(i.long(), 8).to(torch.int32)");
  });

  it("writes comparisons as operators and where as torch.where", () => {
    expect(rule("greater", {}, [R, { ...R, expr: "0.5", literal: true }]).expr).toBe("r > 0.5");
    expect(rule("equal", {}, [R, R]).expr).toBe("r == r");
    expect(rule("where", {}, [{ ...R, expr: "c", dtype: "bool" }, R, { ...R, expr: "0.0", literal: true }]).expr).toBe("torch.where(c, r, 0.0)");
    expect(() => rule("topk", { k: 2, axis: 0 }, [R])).toThrow(/topk in transformer\.layers\.0 .*a batch\/sequence dim/);
  });

  it("calls the sparse MoE helper with the op's attributes", () => {
    const w = (expr: string) => ({ expr, shape: [4, 8] as Shape });
    const attrs = { numExperts: 4, topK: 2, scoring: "softmax", normalizeTopK: false, activation: "gelu_tanh" };
    const r = rule("moe", attrs, [X, w("router"), w("gate"), w("up"), w("down")]);
    expect(r.expr).toBe('_kiln_moe(x, router, gate, up, down, top_k=2, scoring="softmax", normalize_top_k=False, act=_kiln_gelu_tanh)');
    expect(r.helpers.sort()).toEqual(["_kiln_gelu_tanh", "_kiln_moe"]);
    const shared = rule("moe", { ...attrs, activation: "silu" }, [X, ...["a", "b", "c", "d", "e", "f", "g", "h"].map(w)]);
    expect(shared.expr).toBe('_kiln_moe(x, a, b, c, d, e, f, g, h, top_k=2, scoring="softmax", normalize_top_k=False, act=F.silu)');
  });
});

describe("TORCH_GLUE_OPS is complete over the op table", () => {
  it("does not compile without a rule for every core op", () => {
    // @ts-expect-error: a table missing any core op (here all but `add`) is a type error, so a new op cannot be forgotten
    const incomplete: { readonly [K in CoreOp]: TorchGlueRule<K> } = { add: TORCH_GLUE_OPS.add };
    expect(Object.keys(incomplete)).toEqual(["add"]);
    expect(Object.keys(TORCH_GLUE_OPS).sort()).toEqual(Object.keys(CORE_OPS).sort());
  });
});
