// The text view is the IR printer's output with repeated layers folded into one line each (nodes and parameters).

import { expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import { printGraph } from "../ir/print.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { loadModelStages } from "./model-stages.ts";
import { toText } from "./text.ts";

it("folds the repeated layers of the lowered llama3_gqa", async () => {
  const s = await loadModelStages(await importModelFile("models/llama.ts"), { hfDir: `${FIXTURES}llama3_gqa` });
  const g = s.graph("trtllm");
  expect(toText(g)).toBe(printGraph(g));
  const text = toText(g, { collapse: true, locations: false }).replace(/ ropeScaling=\S+/g, "");
  expect(text).toMatchInlineSnapshot(`
    "graph llama {
      input %0: i32[batch, seq] input_ids
      input %1: i32[batch, seq] position_ids
      param %2: f32[512, 64] transformer.vocab_embedding.weight
      param %3: f32[64] transformer.layers.0.input_layernorm.weight
      param %4: f32[96, 64] transformer.layers.0.attention.qkv.weight
      param %5: f32[64, 64] transformer.layers.0.attention.dense.weight
      param %6: f32[64] transformer.layers.0.post_layernorm.weight
      param %7: f32[160, 64] transformer.layers.0.mlp.fc.weight
      param %8: f32[160, 64] transformer.layers.0.mlp.gate.weight
      param %9: f32[64, 160] transformer.layers.0.mlp.proj.weight
      ... 14 params of transformer.layers.1 … transformer.layers.2 (same names and types as transformer.layers.0)
      param %24: f32[64] transformer.ln_f.weight
      param %25: f32[512, 64] lm_head.weight
      %26: f32[batch, seq, 64] = embedding %2, %0  # @transformer.vocab_embedding
      %27: f32[batch, seq, 64] = rms_norm %26, %3 eps=0.00001  # @transformer.layers.0.input_layernorm
      %28: f32[batch, seq, 64] = trtllm.attention %27, %1, %4, %5 heads=8 kvHeads=2 headDim=8 rope=neox rotaryDim=8 ropeTheta=500000 scale=0.35355339059327373 qkvBias=false denseBias=false window=0 softcap=0 qkNorm=false qkNormEps=0.000001 reduce=allreduce !trtllm=Attention  # @transformer.layers.0.attention
      %29: f32[batch, seq, 64] = add %26, %28  # @transformer.layers.0
      %30: f32[batch, seq, 64] = rms_norm %29, %6 eps=0.00001  # @transformer.layers.0.post_layernorm
      %31: f32[batch, seq, 64] = trtllm.gated_mlp %30, %7, %8, %9 act=silu bias=false reduce=allreduce !trtllm=GatedMLP  # @transformer.layers.0.mlp
      %32: f32[batch, seq, 64] = add %29, %31  # @transformer.layers.0
      ... transformer.layers.1 … transformer.layers.2: × 2 identical layers (same as transformer.layers.0, 6 nodes each)
      %45: f32[batch, seq, 64] = rms_norm %44, %24 eps=0.00001  # @transformer.ln_f
      %46: f32[batch, seq, 512] = trtllm.lm_head %45, %25 vocab=512 softcap=0 !trtllm="ColumnLinear(gather_output)"  # @lm_head
      output logits = %46
    }
    "
  `);
});
