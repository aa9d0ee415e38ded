// The zoo through `kiln compile` (engine target): rank files, run by the CPU tensor-parallel simulator, reproduce the
// transformers logits at every tp/pp the sizes allow; the class is TensorRT-LLM 1.2.1's own (MODEL_MAP key), and
// sliding windows reach TensorRT-LLM as the per-layer max_attention_window list (config.json runtime_defaults, the
// printed run command, the Triton tensorrt_llm model's max_attention_window_size).

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkPythonApi } from "../../codegen/apicheck/check-api.ts";
import { tritonConfigs } from "../../codegen/triton/configs.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { simulateCheckpoint } from "../../src/driver/simulate-checkpoint.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { ENGINE_REFUSED, readGolden, ZOO, ZOO_FIXTURES } from "../golden.ts";
import { zooModel } from "./models.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-zoo-"));

/** What TensorRT-LLM 1.2.1 builds each zoo family with, and the per-layer windows its config asks for. */
const EXPECTED: Record<string, { architecture: string; builtin: string | null; windows: number[] | undefined }> = {
  // MistralForCausalLM maps to LLaMAForCausalLM in 1.2.1's MODEL_MAP; Kiln names it LlamaForCausalLM (reduce_fusion).
  mistral: { architecture: "LlamaForCausalLM", builtin: "llama", windows: [4, 4, 4] },
  // layer 0 is below max_window_layers = 1: global, i.e. the maximum sequence length (max_position_embeddings 128).
  qwen2: { architecture: "Qwen2ForCausalLM", builtin: "qwen", windows: [128, 5, 5] },
  // QK-norm: custom model.py with Attention(qk_layernorm=True, layernorm_type=RmsNorm, eps=rms_norm_eps).
  qwen3: { architecture: "KilnQwen3ForCausalLM", builtin: null, windows: undefined },
  // GemmaForCausalLM: norms folded to 1 + w in the checkpoint, the embedding scale is the class's own.
  gemma: { architecture: "GemmaForCausalLM", builtin: "gemma", windows: undefined },
  // GemmaForCausalLM's Gemma 2 form (soft-caps, four norms per layer); layers 0 and 2 slide (window 4), layer 1 is
  // global, at run time.
  gemma2: { architecture: "Gemma2ForCausalLM", builtin: "gemma2", windows: [4, 128, 4] },
  // 1.2.1's GPTNeoXForCausalLM computes the tanh GELU where HF GPT-NeoX uses the exact one: custom model.py
  // (parallel and sequential residual both).
  gpt_neox: { architecture: "KilnGptNeoxForCausalLM", builtin: null, windows: undefined },
  gpt_neox_seq: { architecture: "KilnGptNeoxForCausalLM", builtin: null, windows: undefined },
  // GPTForCausalLM's starcoder2 variant (rotary, GQA, biases); sliding window 4 at run time.
  starcoder2: { architecture: "GPTForCausalLM", builtin: "gpt", windows: [4, 4, 4] },
  // Phi3ForCausalLM: partial rotary as rotary_pct, one swiglu fc; sliding window 5.
  phi3: { architecture: "Phi3ForCausalLM", builtin: "phi3", windows: [5, 5, 5] },
  // Rope scaling through config.json's rotary_scaling (RotaryScalingType yarn / dynamic): still LLaMA's class.
  llama_yarn: { architecture: "LlamaForCausalLM", builtin: "llama", windows: undefined },
  llama_dynamic: { architecture: "LlamaForCausalLM", builtin: "llama", windows: undefined },
  // Parallel block with one LayerNorm, multi-query attention, exact GELU: custom model.py (1.2.1's FalconConfig fixes
  // the tanh GELU).
  falcon: { architecture: "KilnFalconForCausalLM", builtin: null, windows: undefined },
};

describe("zoo: kiln compile rank files reproduce transformers (CPU tensor-parallel simulation)", () => {
  for (const { fixture, model } of ZOO_FIXTURES)
    for (const [tp, pp] of [
      [1, 1],
      [2, 1],
      [4, 1],
      [1, 2],
      [2, 2],
    ] as const)
      it(`${fixture} tp=${tp} pp=${pp}`, async () => {
        const dir = `${ZOO}${fixture}`;
        const out = join(tmp, `${fixture}-tp${tp}-pp${pp}`);
        if (ENGINE_REFUSED[fixture]) {
          await expect(compileModel(zooModel(model), { hfDir: dir, outDir: out, mapping: { tp, pp } })).rejects.toThrow(ENGINE_REFUSED[fixture]);
          return;
        }
        const r = await compileModel(zooModel(model), { hfDir: dir, outDir: out, mapping: { tp, pp } });
        const golden = await readGolden(dir);
        const logits = await simulateCheckpoint(
          out,
          r.lowered.graph,
          golden.map((g) => g.ids),
        );
        golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
      });
});

describe("zoo: TensorRT-LLM classes and runtime windows", () => {
  for (const { fixture, model } of ZOO_FIXTURES.filter((f) => !ENGINE_REFUSED[f.fixture]))
    it(`${fixture}: ${EXPECTED[fixture]!.architecture}, ${EXPECTED[fixture]!.builtin ? "built in" : "custom code"}, windows ${EXPECTED[fixture]!.windows ?? "none"}`, async () => {
      const out = join(tmp, `${fixture}-class`);
      const r = await compileModel(zooModel(model), { hfDir: `${ZOO}${fixture}`, outDir: out, mapping: { tp: 2, pp: 1 } });
      const e = EXPECTED[fixture]!;
      const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      expect(config.architecture).toBe(e.architecture);
      expect(r.emission.info(out).builtin).toBe(e.builtin);
      if (!e.windows) {
        expect(config.runtime_defaults).toBeUndefined();
        expect(r.emission.usage(out).join("\n")).not.toContain("max_attention_window_size");
      } else {
        expect(config.runtime_defaults).toEqual({ max_attention_window: e.windows });
        expect(r.emission.usage(out).join("\n")).toContain(`--max_attention_window_size ${e.windows.join(" ")}`);
        const triton = tritonConfigs({
          repo: "/r",
          engineDir: "/e",
          tokenizerDir: "/t",
          tp: 2,
          pp: 1,
          maxAttentionWindow: config.runtime_defaults.max_attention_window,
        });
        expect(triton.tensorrt_llm.parameters?.max_attention_window_size).toEqual({ string_value: e.windows.join(",") });
      }
      if (e.builtin === null) {
        // Custom code: it uses only real TensorRT-LLM 1.2 API (the manifest's signatures) and registers its class.
        const api = checkPythonApi(join(out, "model.py"));
        expect(api.problems).toEqual([]);
        expect(readFileSync(join(out, "model.py"), "utf8")).toContain(`MODEL_MAP["${e.architecture}"]`);
      }
    });

  it("falcon: the reason leads with FalconForCausalLM's fixed tanh GELU; other shapes get no falcon reason", async () => {
    const out = join(tmp, "falcon-why");
    const r = await compileModel(zooModel("falcon"), { hfDir: `${ZOO}falcon`, outDir: out, mapping: { tp: 1, pp: 1 } });
    expect(r.emission.info(out).reason).toMatch(
      /^custom code: not falcon: 1\.2\.1's FalconConfig fixes hidden_act 'gelu', the tanh approximation, and HF Falcon's MLP uses the exact \(erf\) GELU; not llama: /,
    );
    const neox = await compileModel(zooModel("gpt_neox"), { hfDir: `${ZOO}gpt_neox`, outDir: join(tmp, "neox-why"), mapping: { tp: 1, pp: 1 } });
    expect(neox.emission.info(join(tmp, "neox-why")).reason).not.toContain("not falcon");
  });

  it("qwen3: the reason for custom code is the QK-norm, and model.py passes its epsilon", async () => {
    const out = join(tmp, "qwen3-why");
    const r = await compileModel(zooModel("qwen3"), { hfDir: `${ZOO}qwen3`, outDir: out, mapping: { tp: 1, pp: 1 } });
    expect(r.emission.info(out).reason).toContain("not llama: layer 0: per-head q/k RMSNorm (QK-norm); not qwen: layer 0: per-head q/k RMSNorm (QK-norm)");
    const py = readFileSync(join(out, "model.py"), "utf8");
    expect(py).toContain("qk_layernorm=True");
    expect(py).toContain("layernorm_type=LayerNormType.RmsNorm");
    expect(py).toContain("eps=0.000001");
    const c = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(c.head_size).toBe(24);
  });

  it("gemma2: model.py caps attention logits with max_attn_value, config.json carries Gemma2ConfigGroup's keys", async () => {
    const out = join(tmp, "gemma2-softcap");
    // --custom-code: by default Gemma 2 compiles for the built-in class (next test).
    await compileModel(zooModel("gemma2"), { hfDir: `${ZOO}gemma2`, outDir: out, mapping: { tp: 1, pp: 1 }, customCode: true });
    const py = readFileSync(join(out, "model.py"), "utf8");
    expect(py.match(/max_attn_value=2\.0,/g)?.length).toBe(1);
    const c = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    // DecoderModelForCausalLM soft-caps lm_head's logits when all three keys are present (query_pre_attn_scalar 24).
    expect([Math.round(c.query_pre_attn_scalar * 1e9) / 1e9, c.final_logit_softcapping, c.attn_logit_softcapping]).toEqual([24, 3, 2]);
  });

  it("gemma2 built in: GemmaConfig's Gemma 2 keys and the 1 + w scales of all four norms per layer", async () => {
    const out = join(tmp, "gemma2-builtin");
    await compileModel(zooModel("gemma2"), { hfDir: `${ZOO}gemma2`, outDir: out, mapping: { tp: 1, pp: 1 } });
    const c = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect([c.architecture, c.query_pre_attn_scalar, c.final_logit_softcapping, c.attn_logit_softcapping]).toEqual(["Gemma2ForCausalLM", 24, 3, 2]);
    const map = JSON.parse(readFileSync(join(out, "weights.map.json"), "utf8")).files["rank0.safetensors"];
    const norms = ["input_layernorm", "post_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"];
    expect(norms.map((n) => map[`transformer.layers.1.${n}.weight`].from)).toEqual(
      ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"].map(
        (n) => `offset[1](model.layers.1.${n}.weight)`,
      ),
    );
    expect(map["transformer.ln_f.weight"].from).toBe("offset[1](model.norm.weight)");
  });

  it("yarn and dynamic reach config.json as rotary_scaling in the keys 1.2.1's Attention reads", async () => {
    const rotary = async (fixture: string) => {
      const out = join(tmp, `${fixture}-rotary`);
      await compileModel(zooModel("llama"), { hfDir: `${ZOO}${fixture}`, outDir: out, mapping: { tp: 1, pp: 1 } });
      return JSON.parse(readFileSync(join(out, "config.json"), "utf8")).rotary_scaling;
    };
    expect(await rotary("llama_yarn")).toEqual({
      type: "yarn",
      rope_type: "yarn",
      factor: 4,
      original_max_position_embeddings: 32,
      beta_fast: 32,
      beta_slow: 1,
      mscale: 1,
      mscale_all_dim: 0,
    });
    // alpha 1: 1.2.1 builds its (unused) dynamic table from rotary_scaling["alpha"] and fails without it.
    expect(await rotary("llama_dynamic")).toEqual({ type: "dynamic", factor: 2, alpha: 1 });
  });

  it("qwen2 config carries QWenConfig's fields", async () => {
    const out = join(tmp, "qwen2-fields");
    await compileModel(zooModel("qwen2"), { hfDir: `${ZOO}qwen2`, outDir: out, mapping: { tp: 1, pp: 1 } });
    const c = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect([c.qwen_type, c.attn_bias, c.mlp_bias, c.tie_word_embeddings, c.rotary_base]).toEqual(["qwen2", true, false, true, 1e6]);
  });
});

describe("zoo: the PyTorch targets", () => {
  it("trtllm-torch: the layers pass attention_window_size from the per-layer config list", async () => {
    const out = join(tmp, "qwen2-torch");
    await compileModel(zooModel("qwen2"), { hfDir: `${ZOO}qwen2`, outDir: out, mapping: { tp: 1, pp: 1 }, target: "trtllm-torch" });
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).kiln_attention_windows).toEqual([0, 5, 5]);
    const py = readFileSync(join(out, "kiln_qwen2", "modeling_kiln_qwen2.py"), "utf8");
    expect(py).toContain("self.attention_window_size = config.kiln_attention_windows[layer_idx] or None");
    expect(py).toContain("attention_window_size=self.attention_window_size,");
  });

  it("trtllm-torch refuses soft-capping in one line naming the layer (1.2.1's backend Attention takes no logit cap)", async () => {
    await expect(
      compileModel(zooModel("gemma2"), { hfDir: `${ZOO}gemma2`, outDir: join(tmp, "gemma2-torch"), mapping: { tp: 1, pp: 1 }, target: "trtllm-torch" }),
    ).rejects.toThrow(/^transformer\.layers\.0\.attention: attention-logit soft-capping is not supported by --target trtllm-torch/);
  });

  it("trtllm-torch: QK-norm is QKNormRoPEAttention, its norms named q_norm / k_norm, and the code passes the API check", async () => {
    const out = join(tmp, "qwen3-torch");
    await compileModel(zooModel("qwen3"), { hfDir: `${ZOO}qwen3`, outDir: out, mapping: { tp: 1, pp: 1 }, target: "trtllm-torch" });
    const file = join(out, "kiln_qwen3", "modeling_kiln_qwen3.py");
    const py = readFileSync(file, "utf8");
    expect(py).toContain("from tensorrt_llm._torch.modules.qk_norm_attention import QKNormRoPEAttention");
    expect(py).toContain("fuse_qk_norm_rope=False,");
    const f = await SafetensorsFile.open(join(out, "model.safetensors"));
    const names = f.tensors().map((t) => t.name);
    await f.close();
    expect(names).toEqual(expect.arrayContaining(["model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight"]));
    expect(checkPythonApi(file, { manifest: ["codegen/apicheck/trtllm-1.2.json", "codegen/apicheck/trtllm-torch-1.2.json"] }).problems).toEqual([]);
  });
});
