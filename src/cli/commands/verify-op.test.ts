// kiln verify-op: exports the example op's cases (inputs rounded to each dtype, reference outputs from the
// TypeScript reference), checks the PyTorch transcription on the CPU when torch is around, prints the GPU command
// when no CUDA Python is, and fails clearly on an unknown op.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { FUSED_ADD_RMS_NORM } from "../../../examples/fused_add_rms_norm/op.ts";
import { tensor } from "../../interp/tensor.ts";
import { roundToBf16, roundToF16 } from "../../weights/half.ts";
import { SafetensorsFile } from "../../weights/safetensors.ts";
import { verifyOpCommand } from "./verify-op.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-verify-op-"));
const torchPython = [process.env.KILN_PYTHON, ".venv/bin/python", "python3"]
  .map((p) => (p?.includes("/") ? resolve(p) : p))
  .find((p) => p && (!p.includes("/") || existsSync(p)) && spawnSync(p, ["-c", "import torch"], { stdio: "ignore" }).status === 0);

async function run(arg: string, flags: Parameters<typeof verifyOpCommand>[1]) {
  let text = "";
  await verifyOpCommand(arg, flags, (s) => (text += s));
  return text;
}

describe("kiln verify-op", () => {
  it("exports every case x dtype with the reference outputs, and checks torch_reference on the CPU", async () => {
    const dir = join(tmp, "cpu");
    const text = await run("fused_add_rms_norm", { out: dir, ...(torchPython && { python: torchPython }) });
    expect(text).toContain("fused_add_rms_norm: reference and shape rule agree on 15 cases; python_plugin lowering checked against TensorRT-LLM 1.2");
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      op: "fused_add_rms_norm",
      kernel: "fused_add_rms_norm.py",
      launch: "launch",
      torch_reference: "torch_reference",
      tolerance: { f32: 1e-5, f16: 1e-3, bf16: 8e-3 },
    });
    expect(manifest.cases.map((c: { id: string }) => c.id).slice(0, 4)).toEqual(["c0-f32", "c0-f16", "c0-bf16", "c1-f32"]);
    expect(manifest.bench[2]).toEqual({
      id: "b0-bf16",
      dtype: "bf16",
      attrs: { eps: 1e-5 },
      input_shapes: [[1, 4096], [1, 4096], [4096]],
      outputs: [
        { name: "normed", shape: [1, 4096], dtype: "bf16" },
        { name: "new_residual", shape: [1, 4096], dtype: "bf16" },
      ],
    });
    // The f16/bf16 inputs are exactly representable in their dtype, and the outputs are the reference's on them.
    const f = await SafetensorsFile.open(join(dir, "cases.safetensors"));
    try {
      const ins = await Promise.all([0, 1, 2].map((k) => f.readF32(`c0-bf16.in${k}`)));
      expect(ins.every((t) => t.every((v) => roundToBf16(v) === v))).toBe(true);
      expect((await f.readF32("c0-f16.in0")).every((v) => roundToF16(v) === v)).toBe(true);
      expect((await f.readF32("c0-f32.in0")).some((v) => roundToBf16(v) !== v)).toBe(true);
      const [normed] = FUSED_ADD_RMS_NORM.decl.reference([tensor("bf16", [4, 64], ins[0]), tensor("bf16", [4, 64], ins[1]), tensor("bf16", [64], ins[2])], {
        eps: 1e-6,
      });
      expect(await f.readF32("c0-bf16.out0")).toEqual(normed!.data);
    } finally {
      await f.close();
    }
    if (torchPython) expect(text).toContain("verify-op fused_add_rms_norm: all checks pass (30/30 output checks; kernel not run: no CUDA)");
  });

  it("with --device and no CUDA Python, prints the exact command for a GPU machine", async () => {
    const dir = join(tmp, "gpu");
    const text = await run("examples/fused_add_rms_norm/op.ts#fused_add_rms_norm", { out: dir, device: true, python: "/nonexistent/python3" });
    expect(text).toContain("no Python with torch, triton and a CUDA device here");
    expect(text).toMatch(/ {2}cd \S*gpu && python3 verify_op_runner\.py --require-gpu --json results\.json --report report\.md\n/);
    expect(existsSync(join(dir, "verify_op_runner.py"))).toBe(true);
  });

  it("fails clearly on an op it cannot find", async () => {
    await expect(run("no_such_op", {})).rejects.toThrow(/verify-op: 'no_such_op' is neither a \.ts file nor an example \(no examples\/no_such_op\/op\.ts\)/);
    await expect(run("examples/fused_add_rms_norm/op.ts#other", {})).rejects.toThrow(/declared no custom op 'other'/);
    await expect(run("examples/llama_fused_norm/model.ts", {})).rejects.toThrow(/model\.ts exports no custom op/);
  });
});
