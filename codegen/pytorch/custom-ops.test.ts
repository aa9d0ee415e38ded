// Custom ops in the PyTorch-based targets: the call a node becomes, and the refusal of an op without a PyTorch
// implementation (the hf target's pytest runs the example op in transformers).
import { describe, expect, it } from "vitest";
import { defineOp, rtensor } from "../../src/index.ts";
import type { Node } from "../../src/ir/graph.ts";
import { torchCustomOpGlue, torchCustomOpImports } from "./custom-ops.ts";
import type { CustomOp } from "../../src/custom-ops/custom-op.ts";

const scaleOp = (name: string, pytorch: boolean) =>
  defineOp({
    name,
    doc: "x * factor",
    attrs: { factor: "number" },
    inputs: ["x"],
    outputs: ["y"],
    infer: ([x]) => [x!],
    reference: ([x], { factor }) => [
      rtensor(
        x!.dtype,
        x!.shape,
        x!.data.map((v) => v * factor),
      ),
    ],
    ...(pytorch && {
      pytorch: { module: new URL("../../examples/fused_add_rms_norm/fused_add_rms_norm_torch.py", import.meta.url), function: "fused_add_rms_norm" },
    }),
  });

const node = (op: string): Node => ({ op, inputs: [0], outputs: [1], attrs: { factor: 0.5 }, scope: "transformer.layers.0" });
const ctx = (op: string) => ({
  node: node(op),
  args: [{ expr: "hidden", literal: false, shape: [4], dtype: "f32" as const }],
  helper: (h: string) => h,
  modelDtype: "torch.float32",
  paramDtype: "f32" as const,
});

describe("custom ops in the PyTorch targets", () => {
  it("call the declared function with the inputs as a list and the attributes as keywords", () => {
    const op = scaleOp("test_torch.scale", true);
    const used: CustomOp[] = [];
    const rule = torchCustomOpGlue(op.name, "hf", (o) => used.push(o))!;
    expect(rule(ctx(op.name) as never)).toBe("_kiln_op_test_torch_scale([hidden], factor=0.5)[0]");
    expect(used.map((o) => o.name)).toEqual(["test_torch.scale"]);
    expect(torchCustomOpImports(used)).toEqual(["from .kiln_op_test_torch_scale import fused_add_rms_norm as _kiln_op_test_torch_scale"]);
  });

  it("refuse an op declared without a PyTorch implementation, naming the op and the field", () => {
    const op = scaleOp("test_torch.engine_only", false);
    expect(() => torchCustomOpGlue(op.name, "trtllm-torch", () => {})).toThrow(
      "custom op 'test_torch.engine_only' has no PyTorch implementation, which the trtllm-torch target needs: add pytorch: { module, function } to its declaration (only the trtllm-engine target uses its `lowering`)",
    );
  });

  it("leave ops that are not custom to the core glue table", () => {
    expect(torchCustomOpGlue("add", "hf", () => {})).toBeUndefined();
  });

  it("check the declared module and function when the op is defined", () => {
    expect(() =>
      defineOp({
        name: "test_torch.bad_fn",
        doc: "x",
        attrs: {},
        inputs: ["x"],
        outputs: ["y"],
        infer: ([x]) => [x!],
        reference: ([x]) => [x!],
        pytorch: { module: new URL("../../examples/fused_add_rms_norm/fused_add_rms_norm_torch.py", import.meta.url), function: "nope" },
      }),
    ).toThrow(/custom op 'test_torch.bad_fn': pytorch.function: .*fused_add_rms_norm_torch.py defines no top-level function 'nope'/);
  });
});
