// Several MLP-shaped blocks in one decoder layer (issue 14: experts written as GatedMLPs, or any layer with two
// feed-forward blocks) get distinct TensorRT-LLM names: the first keeps `mlp`, later ones `mlp_1`, `mlp_2`, ...
// The model: LLaMA whose layers add a second SwiGLU block (its own norm) after the usual one, with the second block
// reading the same checkpoint tensors. Its rank files, run by the CPU tensor-parallel simulator, reproduce the
// interpreter's logits of the same model at tp 1 and 2.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLlama, type LlamaConfig, llamaWeights } from "../../models/llama.ts";
import llama from "../../models/llama.ts";
import { defineModel } from "../../src/dsl/define-model.ts";
import { GatedMLP } from "../../src/dsl/modules/mlp.ts";
import { RMSNorm } from "../../src/dsl/modules/norms.ts";
import type { Tensor } from "../../src/dsl/tensor.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { instantiateFromDir, loadWeights } from "../../src/driver/instantiate.ts";
import { simulateCheckpoint } from "../../src/driver/simulate-checkpoint.ts";
import { causalLMLogits } from "../../src/interp/causal-lm.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { src } from "../../src/weights/weight-map.ts";
import { FIXTURES } from "../golden.ts";

class TwoMlpBlock extends GatedMLP {
  readonly norm2: RMSNorm;
  readonly mlp2: GatedMLP;

  constructor(c: LlamaConfig) {
    super(c.hidden, c.ffn, c.act);
    this.norm2 = new RMSNorm(c.hidden, c.eps);
    this.mlp2 = new GatedMLP(c.hidden, c.ffn, c.act);
  }

  override forward(x: Tensor): Tensor {
    const h = super.forward(x);
    return h.add(this.mlp2.forward(this.norm2.forward(h)));
  }
}

const twoMlps = defineModel({
  name: "llama_two_mlps",
  architectures: [],
  config: llama.config,
  create: (c: LlamaConfig) => createLlama(c, () => new TwoMlpBlock(c)),
  weights: (c: LlamaConfig) => {
    const { map, ignore } = llamaWeights(c);
    const extra = Object.fromEntries(
      Array.from({ length: c.layers }, (_, i) => [
        [`layers.${i}.mlp.norm2.weight`, src(`model.layers.${i}.post_attention_layernorm.weight`)],
        ...["gate", "up", "down"].map((p) => [`layers.${i}.mlp.mlp2.${p}.weight`, src(`model.layers.${i}.mlp.${p}_proj.weight`)]),
      ]).flat(),
    );
    return { map: { ...map, ...extra }, ignore };
  },
});

const tmp = mkdtempSync(join(tmpdir(), "kiln-two-mlps-"));
const dir = `${FIXTURES}llama`;
const PROMPT = [7, 300, 12, 45, 99, 3];

describe("two MLP blocks in one layer", () => {
  for (const tp of [1, 2])
    it(`get distinct names (mlp, mlp_1) and simulate like the interpreter at tp=${tp}`, async () => {
      const r = await compileModel(twoMlps, { hfDir: dir, outDir: join(tmp, `tp${tp}`), mapping: { tp, pp: 1 } });
      const mlps = r.lowered.graph.nodes.filter((n) => n.op === "trtllm.gated_mlp" && n.scope.startsWith("transformer.layers.0."));
      expect(mlps.map((n) => n.scope)).toEqual(["transformer.layers.0.mlp", "transformer.layers.0.mlp_1"]);
      const names = r.lowered.graph.params.map((p) => p.name).filter((n) => n.startsWith("transformer.layers.0.mlp"));
      expect(names.sort()).toEqual([
        "transformer.layers.0.mlp.fc.weight",
        "transformer.layers.0.mlp.gate.weight",
        "transformer.layers.0.mlp.proj.weight",
        "transformer.layers.0.mlp_1.fc.weight",
        "transformer.layers.0.mlp_1.gate.weight",
        "transformer.layers.0.mlp_1.proj.weight",
      ]);
      const inst = instantiateFromDir(twoMlps, dir);
      const want = causalLMLogits(inst.graph, await loadWeights(inst, dir), PROMPT).logits;
      const [got] = await simulateCheckpoint(join(tmp, `tp${tp}`), r.lowered.graph, [PROMPT]);
      expect(relL2(got!, want)).toBeLessThanOrEqual(1e-5);
      // The second block matters: without it the logits differ.
      const plain = instantiateFromDir(llama, dir);
      expect(relL2(causalLMLogits(plain.graph, await loadWeights(plain, dir), PROMPT).logits, want)).toBeGreaterThan(1e-3);
    });
});
