// The trtllm-torch target, statically (TensorRT-LLM cannot be installed here): for GPT-2, GPT-J and LLaMA the
// emitted package compiles and every tensorrt_llm._torch / tensorrt_llm.functional name, call and keyword in it exists
// in the API manifests (a mutated file shows the check is not vacuous); the checkpoint holds HF-style separate
// q/k/v and gate/up tensors under the names the generated modules load, with values sliced exactly from the HF
// checkpoint; impossible tp sizes fail before anything is written.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { compileModel, prepareCompile } from "../../src/driver/compile.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURES } from "../../test/golden.ts";
import { checkPythonApi } from "../apicheck/check-api.ts";
import glue from "../hf/tests/glue_model.ts";

const MANIFESTS = ["trtllm-1.2.json", "trtllm-torch-1.2.json"].map((m) => fileURLToPath(new URL(`../apicheck/${m}`, import.meta.url)));
const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama, llama3_gqa: llama };
const tmp = mkdtempSync(join(tmpdir(), "kiln-trtllm-torch-"));
const out = (fixture: string) => join(tmp, fixture);
const compiled = new Map<string, Awaited<ReturnType<typeof compileModel>>>();

async function compile(fixture: string) {
  if (!compiled.has(fixture))
    compiled.set(
      fixture,
      await compileModel(MODELS[fixture]!, { hfDir: `${FIXTURES}${fixture}`, outDir: out(fixture), target: "trtllm-torch", mapping: { tp: 2, pp: 1 } }),
    );
  return compiled.get(fixture)!;
}

async function header(file: string): Promise<Record<string, number[]>> {
  const f = await SafetensorsFile.open(file);
  const h = Object.fromEntries(f.tensors().map((t) => [t.name, t.shape]));
  await f.close();
  return h;
}

const PKG: Record<string, string> = { gpt2: "kiln_gpt2", gptj: "kiln_gptj", llama: "kiln_llama", llama3_gqa: "kiln_llama" };

describe("trtllm-torch: the emitted package uses only real TensorRT-LLM 1.2 PyTorch-backend API", () => {
  for (const fixture of ["gpt2", "gptj", "llama", "llama3_gqa"])
    it(`${fixture}: compiles, registers the class, 0 API problems`, async () => {
      const r = await compile(fixture);
      const pkg = join(out(fixture), PKG[fixture]!);
      const modeling = join(pkg, `modeling_${PKG[fixture]}.py`);
      for (const f of ["__init__.py", `configuration_${PKG[fixture]}.py`, `modeling_${PKG[fixture]}.py`])
        execFileSync("python3", ["-m", "py_compile", join(pkg, f)]);
      const api = checkPythonApi(modeling, { manifest: MANIFESTS });
      expect(api.problems).toEqual([]);
      expect(api.checked).toBeGreaterThan(35);
      // DecoderLayer's own __init__ is nn.Module's (outside the manifests); nothing else is unchecked.
      expect(api.unverified.map((u) => u.name)).toEqual(["tensorrt_llm._torch.modules.decoder_layer.DecoderLayer.__init__"]);
      const source = readFileSync(modeling, "utf8");
      expect(source).toContain(`@register_auto_model("${r.emission.architecture}")`);
      const config = JSON.parse(readFileSync(join(out(fixture), "config.json"), "utf8"));
      expect(config.architectures).toEqual([r.emission.architecture]);
      expect(config.tie_word_embeddings).toBe(false);
      expect(existsSync(join(out(fixture), `configuration_${PKG[fixture]}.py`))).toBe(true);
    });

  it("the check is not vacuous: a misspelt keyword and a wrong forward argument are reported", async () => {
    await compile("llama");
    const modeling = join(out("llama"), "kiln_llama", "modeling_kiln_llama.py");
    const bad = join(tmp, "bad_modeling.py");
    writeFileSync(
      bad,
      readFileSync(modeling, "utf8")
        .replace("num_key_value_heads=", "num_kv_heads=")
        .replace(
          "attn_metadata=attn_metadata,\n            lora_params=lora_params,\n        )",
          "attn_meta=attn_metadata,\n            lora_params=lora_params,\n        )",
        ),
    );
    const api = checkPythonApi(bad, { manifest: MANIFESTS });
    const messages = api.problems.map((p) => p.message).join("\n");
    expect(messages).toMatch(/unknown keyword argument 'num_kv_heads'.*Attention\.__init__/);
    expect(messages).toMatch(/missing required argument\(s\) 'attn_metadata' \[\S*Attention\.forward\]/);
  });
});

/** HF LLaMA tensor names -> the backend names, with independent expectations from config.json. */
function expectedLlama(fixture: string): Record<string, number[]> {
  const c = JSON.parse(readFileSync(`${FIXTURES}${fixture}/config.json`, "utf8"));
  const [D, H, KV, hd, I, V] = [c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size, c.vocab_size];
  const t: Record<string, number[]> = { "model.embed_tokens.weight": [V, D], "model.norm.weight": [D], "lm_head.weight": [V, D] };
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    Object.assign(t, {
      [`${p}.input_layernorm.weight`]: [D],
      [`${p}.self_attn.q_proj.weight`]: [H * hd, D],
      [`${p}.self_attn.k_proj.weight`]: [KV * hd, D],
      [`${p}.self_attn.v_proj.weight`]: [KV * hd, D],
      [`${p}.self_attn.o_proj.weight`]: [D, H * hd],
      [`${p}.post_attention_layernorm.weight`]: [D],
      [`${p}.mlp.gate_proj.weight`]: [I, D],
      [`${p}.mlp.up_proj.weight`]: [I, D],
      [`${p}.mlp.down_proj.weight`]: [D, I],
    });
  }
  return t;
}

describe("trtllm-torch: checkpoint tensors", () => {
  it("LLaMA (GQA): HF-style names and full, unsharded shapes; q/k/v and gate/up separate", async () => {
    await compile("llama3_gqa");
    expect(await header(join(out("llama3_gqa"), "model.safetensors"))).toEqual(expectedLlama("llama3_gqa"));
  });

  it("LLaMA (GQA): k_proj and up_proj are the HF tensors exactly (sliced back out of the fused lowering)", async () => {
    await compile("llama3_gqa");
    const mine = await SafetensorsFile.open(join(out("llama3_gqa"), "model.safetensors"));
    const hf = await SafetensorsFile.open(`${FIXTURES}llama3_gqa/model.safetensors`);
    for (const [a, b] of [
      ["model.layers.2.self_attn.k_proj.weight", "model.layers.2.self_attn.k_proj.weight"],
      ["model.layers.1.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight"],
      ["model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.gate_proj.weight"],
    ])
      expect(await mine.readF32(a!)).toEqual(await hf.readF32(b!));
    await Promise.all([mine.close(), hf.close()]);
  });

  it("GPT-2: q/k/v are columns of the Conv1D c_attn, transposed; lm_head is the tied embedding", async () => {
    await compile("gpt2");
    const mine = await SafetensorsFile.open(join(out("gpt2"), "model.safetensors"));
    const hf = await SafetensorsFile.open(`${FIXTURES}gpt2/model.safetensors`);
    const cAttn = await hf.readF32("transformer.h.1.attn.c_attn.weight"); // [64, 192] (in, out)
    const k = await mine.readF32("model.layers.1.self_attn.k_proj.weight"); // [64, 64] (out, in)
    for (const [o, i] of [
      [0, 0],
      [5, 17],
      [63, 63],
    ] as const)
      expect(k[o * 64 + i]).toBe(cAttn[i * 192 + 64 + o]);
    expect(await mine.readF32("model.layers.1.self_attn.k_proj.bias")).toEqual((await hf.readF32("transformer.h.1.attn.c_attn.bias")).subarray(64, 128));
    expect(await mine.readF32("lm_head.weight")).toEqual(await hf.readF32("transformer.wte.weight"));
    expect(mine.info("model.embed_positions.weight")!.shape).toEqual([128, 64]);
    await Promise.all([mine.close(), hf.close()]);
  });

  it("GPT-J: the lm_head bias lives in output_bias (TensorRT-LLM's LMHead has none)", async () => {
    await compile("gptj");
    const h = await header(join(out("gptj"), "model.safetensors"));
    expect(h["output_bias.bias"]).toEqual([512]);
    expect(Object.keys(h).filter((k) => k.startsWith("lm_head"))).toEqual(["lm_head.weight"]);
    expect(h["model.layers.0.mlp.up_proj.weight"]).toEqual([256, 64]);
  });

  it("rejects a tp that does not divide the heads, before writing", async () => {
    const dir = join(tmp, "bad-tp");
    await expect(compileModel(llama, { hfDir: `${FIXTURES}llama`, outDir: dir, target: "trtllm-torch", mapping: { tp: 3, pp: 1 } })).rejects.toThrow(
      /--tp 3: num_attention_heads = 4 is not divisible/,
    );
    expect(existsSync(dir)).toBe(false);
  });
});

describe("trtllm-torch: glue and non-SiLU gates", () => {
  const emitTo = (name: string, def: ModelDefinition<any>, fixture: string, extra: Record<string, unknown> = {}) => {
    const hf = { ...JSON.parse(readFileSync(`${FIXTURES}${fixture}/config.json`, "utf8")), ...extra };
    const { emission } = prepareCompile(def, hf, "infer", { target: "trtllm-torch" });
    const dir = join(tmp, name);
    for (const [f, text] of Object.entries(emission.files)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
    return { dir, emission };
  };

  it("a custom architecture's glue (groups, plain parameters, per-layer constants, casts, reshapes) passes the API check", () => {
    const { dir, emission } = emitTo("glue", glue, "llama");
    const modeling = join(dir, "kiln_glue_llama", "modeling_kiln_glue_llama.py");
    execFileSync("python3", ["-m", "py_compile", modeling]);
    const api = checkPythonApi(modeling, { manifest: MANIFESTS });
    expect(api.problems).toEqual([]);
    const source = readFileSync(modeling, "utf8");
    expect(source).toContain("self.model_config.pretrained_config.layer_constant_0[self.layer_idx]");
    expect(source).toContain("self.embed_tokens(input_ids)");
    expect(emission.plans[0]!.tensors.map((t) => t.name)).toContain("model.layers.1.mix.weight");
    expect(JSON.parse(emission.files["config.json"]!).layer_constant_0).toHaveLength(2);
  });

  it("a gated MLP with GELU is built from column/row-parallel Linears (TensorRT-LLM's GatedMLP runs SiLU only)", () => {
    const { dir } = emitTo("gelu-gate", llama, "llama", { hidden_act: "gelu_pytorch_tanh" });
    const modeling = join(dir, "kiln_llama", "modeling_kiln_llama.py");
    const source = readFileSync(modeling, "utf8");
    expect(source).toContain("class KilnGatedMLP(nn.Module):");
    expect(source).toContain("tensor_parallel_mode=TensorParallelMode.ROW");
    expect(source).toContain("self.mlp = KilnGatedMLP(");
    expect(source).not.toMatch(/ = GatedMLP\(/);
    // LoRA as GatedMLP applies it: gate = mlp_h_to_4h, up = mlp_gate, down = mlp_4h_to_h, inside each Linear.
    for (const m of ["MLP_H_TO_4H], [local_intermediate]", "MLP_GATE], [local_intermediate]", "MLP_4H_TO_H], [hidden_size]"])
      expect(source).toContain(`lora=LoraLayer([LoraModuleType.${m})`);
    expect(source).toContain("gate = self.gate_proj(x, lora_params=lora_params, layer_idx=self.layer_idx)");
    expect(source).toMatch(/self\.mlp\(\s*post_attention_layernorm_output,\s*lora_params=lora_params,/);
    const api = checkPythonApi(modeling, { manifest: MANIFESTS });
    expect(api.problems).toEqual([]);
    expect(api.checked).toBeGreaterThan(40);
  });
});
