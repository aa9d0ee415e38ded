// LoRA in the interpreter against PEFT: every fixture adapter (attention-only, all Linears with rsLoRA and rank/alpha
// patterns, Conv1D fan_in_fan_out, GQA; LLaMA, GPT-2, GPT-J) folded into the weights reproduces the logits PEFT
// computed (relative L2 <= 1e-5) and its greedy tokens. Planted bugs (wrong scale, untransposed Conv1D delta) are
// caught, and bad adapters get one-line errors naming the tensor or option.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import { adapterDir, baseDir, LORA_ADAPTERS, readLoraGolden } from "../../test/lora-fixtures.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { causalLMLogits, greedyGenerate } from "../interp/causal-lm.ts";
import { relL2 } from "../interp/tensor.ts";
import { instantiateFromDir, loadWeights } from "../driver/instantiate.ts";
import { SafetensorsFile, writeSafetensors } from "../weights/safetensors.ts";
import { type LoraAdapter, loraScale, patternValue, readAdapter } from "./adapter.ts";
import { loraDelta } from "./bind.ts";

const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama };

async function adaptedLogits(model: string, fixture: string, adapter: LoraAdapter, ids: readonly number[]) {
  const inst = instantiateFromDir(MODELS[model]!, baseDir(fixture));
  const params = await loadWeights(inst, baseDir(fixture), { adapter });
  return { inst, params, logits: causalLMLogits(inst.graph, params, ids).logits };
}

describe("LoRA in the interpreter vs PEFT", () => {
  for (const { fixture, adapter, model } of LORA_ADAPTERS)
    it(`${fixture}/${adapter} (models/${model}.ts)`, async () => {
      const a = await readAdapter(adapterDir(fixture, adapter));
      for (const g of await readLoraGolden(fixture, adapter)) {
        const { inst, params, logits } = await adaptedLogits(model, fixture, a, g.ids);
        expect(relL2(logits, g.logits)).toBeLessThanOrEqual(1e-5);
        expect(greedyGenerate(inst.graph, params, g.ids, g.greedy.length)).toEqual(g.greedy);
      }
    });

  it("catches a planted wrong scale (alpha / r instead of rsLoRA's alpha / sqrt(r))", async () => {
    const a = await readAdapter(adapterDir("llama", "all_rslora"));
    const wrong = { ...a, modules: a.modules.map((m) => ({ ...m, scale: loraScale(m.alpha, m.rank, false) })) };
    const [g] = await readLoraGolden("llama", "all_rslora");
    expect(relL2((await adaptedLogits("llama", "llama", wrong, g!.ids)).logits, g!.logits)).toBeGreaterThan(1e-2);
  });

  it("catches a planted untransposed Conv1D delta (square c_proj, so only the numbers can tell)", async () => {
    const a = await readAdapter(adapterDir("gpt2", "all_rslora"));
    const wrong = { ...a, fanInFanOut: false, modules: a.modules.filter((m) => m.module.endsWith("attn.c_proj")) };
    const right = { ...wrong, fanInFanOut: true };
    const [g] = await readLoraGolden("gpt2", "all_rslora");
    const l1 = (await adaptedLogits("gpt2", "gpt2", right, g!.ids)).logits;
    const l2 = (await adaptedLogits("gpt2", "gpt2", wrong, g!.ids)).logits;
    expect(relL2(l1, l2)).toBeGreaterThan(1e-3);
  });
});

describe("reading adapters", () => {
  it("reads rank, alpha and scale per module from rank_pattern / alpha_pattern and use_rslora", async () => {
    const a = await readAdapter(adapterDir("llama", "all_rslora"));
    const byName = new Map(a.modules.map((m) => [m.module, m]));
    expect(a.modules).toHaveLength(14);
    const down1 = byName.get("model.layers.1.mlp.down_proj")!;
    expect([down1.rank, down1.alpha, down1.scale]).toEqual([2, 16, 16 / Math.sqrt(2)]);
    expect([byName.get("model.layers.0.mlp.down_proj")!.rank, byName.get("model.layers.0.self_attn.o_proj")!.rank]).toEqual([8, 4]);
    const k = byName.get("model.layers.0.self_attn.k_proj")!;
    expect([k.rank, k.alpha, k.scale]).toEqual([8, 4, 4 / Math.sqrt(8)]);
    const q = byName.get("model.layers.0.self_attn.q_proj")!;
    expect(q.A.shape).toEqual([8, 64]);
    expect(q.B.shape).toEqual([64, 8]);
    const plain = await readAdapter(adapterDir("llama", "attn_qv"));
    expect(plain.modules.map((m) => m.scale)).toEqual(Array(4).fill(2));
  });

  it("matches pattern keys like peft's get_pattern_key: a whole dotted suffix, first key wins", () => {
    const p = { "layers.1.mlp.down_proj": 2, down_proj: 3, "o_.*": 5 };
    expect(patternValue(p, "model.layers.1.mlp.down_proj")).toBe(2);
    expect(patternValue(p, "model.layers.11.mlp.down_proj")).toBe(3);
    expect(patternValue(p, "model.layers.0.self_attn.o_proj")).toBe(5);
    expect(patternValue(p, "model.layers.0.mlp.xdown_proj")).toBeUndefined();
    expect(patternValue(undefined, "x")).toBeUndefined();
  });

  it("lays the delta out like the base weight: [out, in], or [in, out] with fan_in_fan_out", () => {
    const A = { shape: [1, 3], data: Float32Array.from([1, 2, 3]) };
    const B = { shape: [2, 1], data: Float32Array.from([10, 20]) };
    expect([...loraDelta({ A, B, scale: 0.5, fanInFanOut: false }).data]).toEqual([5, 10, 15, 10, 20, 30]);
    const t = loraDelta({ A, B, scale: 0.5, fanInFanOut: true });
    expect(t.shape).toEqual([3, 2]);
    expect([...t.data]).toEqual([5, 10, 10, 20, 15, 30]);
  });
});

describe("bad adapters: one-line errors naming the tensor or option", () => {
  const tmp = mkdtempSync(join(tmpdir(), "kiln-lora-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  /** A copy of the llama attn_qv adapter with its config edited and/or its tensors replaced. */
  async function badAdapter(
    config: (c: Record<string, unknown>) => void,
    tensors?: (t: Map<string, { shape: number[]; data: Float32Array }>) => void,
  ): Promise<string> {
    const dir = join(tmp, `a${n++}`);
    cpSync(adapterDir("llama", "attn_qv"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    config(cfg);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(cfg));
    if (tensors) {
      const f = await SafetensorsFile.open(join(dir, "adapter_model.safetensors"));
      const t = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const i of f.tensors()) t.set(i.name, { shape: i.shape, data: await f.readF32(i.name) });
      await f.close();
      tensors(t);
      await writeSafetensors(
        join(dir, "adapter_model.safetensors"),
        [...t].map(([name, v]) => ({ name, dtype: "F32" as const, ...v })),
      );
    }
    return dir;
  }
  const load = async (dir: string) => {
    const a = await readAdapter(dir);
    await loadWeights(instantiateFromDir(llama, baseDir("llama")), baseDir("llama"), { adapter: a });
  };
  const Q = "base_model.model.model.layers.0.self_attn.q_proj";

  it("a module the model does not have", async () => {
    const dir = await badAdapter(
      (c) => (c.target_modules = ["q_proj", "v_proj", "qq_proj"]),
      (t) => {
        t.set(`${Q.replace("q_proj", "qq_proj")}.lora_A.weight`, t.get(`${Q}.lora_A.weight`)!);
        t.set(`${Q.replace("q_proj", "qq_proj")}.lora_B.weight`, t.get(`${Q}.lora_B.weight`)!);
      },
    );
    await expect(load(dir)).rejects.toThrow(
      /^.*adapter_model\.safetensors: 'base_model\.model\.model\.layers\.0\.self_attn\.qq_proj\.lora_A\.weight' adapts module 'model\.layers\.0\.self_attn\.qq_proj', but the model reads no weight/,
    );
  });

  it("a shape that does not fit", async () => {
    const dir = await badAdapter(
      () => {},
      (t) => t.set(`${Q}.lora_A.weight`, { shape: [4, 32], data: new Float32Array(128) }),
    );
    await expect(load(dir)).rejects.toThrow(
      /'base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight' \[4,32\] .* make a \[64,32\] update, but 'model\.layers\.0\.self_attn\.q_proj\.weight' is \[64,64\]$/,
    );
  });

  it("a rank that disagrees with adapter_config.json", async () => {
    const dir = await badAdapter((c) => (c.rank_pattern = { v_proj: 2 }));
    await expect(load(dir)).rejects.toThrow(
      /'base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight' has rank 4 but adapter_config\.json gives module 'model\.layers\.0\.self_attn\.v_proj' r = 2$/,
    );
  });

  it("a module target_modules does not name", async () => {
    const dir = await badAdapter((c) => (c.target_modules = ["q_proj"]));
    await expect(load(dir)).rejects.toThrow(
      /v_proj\.lora_A\.weight' adapts module 'model\.layers\.0\.self_attn\.v_proj', which target_modules \["q_proj"\] does not name$/,
    );
  });

  for (const [what, edit, msg] of [
    ["DoRA", (c: Record<string, unknown>) => (c.use_dora = true), /adapter_config\.json: use_dora = true: DoRA .* not supported$/],
    ["bias training", (c: Record<string, unknown>) => (c.bias = "lora_only"), /adapter_config\.json: bias = "lora_only": trained biases are not supported/],
    ["modules_to_save", (c: Record<string, unknown>) => (c.modules_to_save = ["lm_head"]), /modules_to_save = \["lm_head"\]: fully trained extra modules/],
    ["another PEFT method", (c: Record<string, unknown>) => (c.peft_type = "IA3"), /peft_type = "IA3": only LoRA adapters are supported$/],
  ] as const)
    it(`an unsupported option: ${what}`, async () => {
      await expect(load(await badAdapter(edit))).rejects.toThrow(msg);
    });

  it("embedding LoRA and DoRA magnitude tensors are named", async () => {
    const emb = await badAdapter(
      () => {},
      (t) => t.set("base_model.model.model.embed_tokens.lora_embedding_A", { shape: [4, 512], data: new Float32Array(2048) }),
    );
    await expect(load(emb)).rejects.toThrow(/tensor 'base_model\.model\.model\.embed_tokens\.lora_embedding_A': embedding LoRA is not supported$/);
    const dora = await badAdapter(
      () => {},
      (t) => t.set(`${Q}.lora_magnitude_vector`, { shape: [64], data: new Float32Array(64) }),
    );
    await expect(load(dora)).rejects.toThrow(/q_proj\.lora_magnitude_vector': DoRA .* not supported$/);
  });

  it("a directory that is not an adapter", async () => {
    await expect(readAdapter(baseDir("llama"))).rejects.toThrow(/adapter_config\.json: not found \(is --lora a PEFT adapter directory\?\)$/);
  });
});
