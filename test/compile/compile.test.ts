// `kiln compile` end to end on the fixtures: the rank files, run by the CPU tensor-parallel simulator, reproduce the
// HF logits for every tp/pp the sizes allow; tensor names and shapes equal TensorRT-LLM's tables for its built-in
// classes; values follow its conventions; outputs are deterministic and appear atomically.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import { checkPythonApi } from "../../codegen/apicheck/check-api.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { simulateCheckpoint } from "../../src/driver/simulate-checkpoint.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURES, readGolden } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-compile-"));
const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama, llama3_gqa: llama };
const hfConfig = (f: string) => JSON.parse(readFileSync(`${FIXTURES}${f}/config.json`, "utf8"));

async function header(file: string): Promise<Record<string, { dtype: string; shape: number[] }>> {
  const f = await SafetensorsFile.open(file);
  const out = Object.fromEntries(f.tensors().map((t) => [t.name, { dtype: t.dtype, shape: t.shape }]));
  await f.close();
  return out;
}

describe("kiln compile: rank files reproduce the HF fixtures (CPU tensor-parallel simulation)", () => {
  for (const fixture of ["gpt2", "gptj", "llama", "llama3_gqa"])
    for (const tp of [1, 2, 4])
      for (const pp of [1, 2])
        it(`${fixture} tp=${tp} pp=${pp}`, async () => {
          const out = join(tmp, `${fixture}-tp${tp}-pp${pp}`);
          const r = await compileModel(MODELS[fixture]!, { hfDir: `${FIXTURES}${fixture}`, outDir: out, mapping: { tp, pp } });
          expect(
            readdirSync(out)
              .filter((f) => f.startsWith("rank"))
              .sort(),
          ).toEqual(Array.from({ length: tp * pp }, (_, i) => `rank${i}.safetensors`).sort());
          const golden = await readGolden(`${FIXTURES}${fixture}`);
          const logits = await simulateCheckpoint(
            out,
            r.lowered.graph,
            golden.map((g) => g.ids),
          );
          golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
        });
});

/** TensorRT-LLM's checkpoint tables (facts §4), computed independently of Kiln's lowering. */
function expectedTensors(fixture: string, tp: number, pp: number, rank: number): Record<string, number[]> {
  const c = hfConfig(fixture);
  const D = c.hidden_size ?? c.n_embd;
  const L = c.num_hidden_layers ?? c.n_layer;
  const H = c.num_attention_heads ?? c.n_head;
  const KV = c.num_key_value_heads ?? H;
  const hd = c.head_dim ?? D / H;
  const I = c.intermediate_size ?? 4 * D;
  const V = c.vocab_size;
  const [ppRank] = [Math.floor(rank / tp)];
  const base = Math.floor(L / pp);
  const first = ppRank * base + Math.min(ppRank, L % pp);
  const count = base + (ppRank < L % pp ? 1 : 0);
  const kvLocal = KV >= tp ? KV / tp : 1;
  const t: Record<string, number[]> = {};
  const family = fixture.startsWith("llama") ? "llama" : fixture;
  if (ppRank === 0) {
    t["transformer.vocab_embedding.weight"] = [V, D];
    if (family === "gpt2") t["transformer.position_embedding.weight"] = [c.n_positions, D];
  }
  for (let l = 0; l < count; l++) {
    const p = `transformer.layers.${l}`;
    const ln = family === "llama" ? ["weight"] : ["weight", "bias"];
    for (const w of ln) t[`${p}.input_layernorm.${w}`] = [D];
    t[`${p}.attention.qkv.weight`] = [(H / tp + 2 * kvLocal) * hd, D];
    if (family === "gpt2") t[`${p}.attention.qkv.bias`] = [(H / tp + 2 * kvLocal) * hd];
    t[`${p}.attention.dense.weight`] = [D, (H * hd) / tp];
    if (family === "gpt2") t[`${p}.attention.dense.bias`] = [D];
    if (family !== "gptj") for (const w of ln) t[`${p}.post_layernorm.${w}`] = [D];
    t[`${p}.mlp.fc.weight`] = [I / tp, D];
    if (family === "llama") t[`${p}.mlp.gate.weight`] = [I / tp, D];
    t[`${p}.mlp.proj.weight`] = [D, I / tp];
    if (family !== "llama") {
      t[`${p}.mlp.fc.bias`] = [I / tp];
      t[`${p}.mlp.proj.bias`] = [D];
    }
  }
  if (ppRank === pp - 1) {
    for (const w of family === "llama" ? ["weight"] : ["weight", "bias"]) t[`transformer.ln_f.${w}`] = [D];
    const Vpad = Math.ceil(V / tp) * tp;
    t["lm_head.weight"] = [Vpad / tp, D];
    if (family === "gptj") t["lm_head.bias"] = [Vpad / tp];
  }
  void first;
  return t;
}

describe("checkpoints for TensorRT-LLM's built-in classes", () => {
  const cases: [string, string][] = [
    ["gpt2", "GPTForCausalLM"],
    ["gptj", "GPTJForCausalLM"],
    ["llama", "LlamaForCausalLM"],
    ["llama3_gqa", "LlamaForCausalLM"],
  ];
  for (const [fixture, arch] of cases)
    it(`${fixture}: names and shapes per rank equal the facts tables (tp=2, pp=2), architecture ${arch}, no model.py`, async () => {
      const out = join(tmp, `${fixture}-tp2-pp2`);
      if (!existsSync(out)) await compileModel(MODELS[fixture]!, { hfDir: `${FIXTURES}${fixture}`, outDir: out, mapping: { tp: 2, pp: 2 } });
      for (let rank = 0; rank < 4; rank++) {
        const h = await header(join(out, `rank${rank}.safetensors`));
        expect(Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.shape]))).toEqual(expectedTensors(fixture, 2, 2, rank));
        expect(new Set(Object.values(h).map((v) => v.dtype))).toEqual(new Set(["F32"]));
      }
      const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      expect(cfg).toMatchObject({ architecture: arch, mapping: { world_size: 4, tp_size: 2, pp_size: 2 }, quantization: { quant_algo: null } });
      expect(existsSync(join(out, "model.py"))).toBe(false);
    });

  it("LLaMA: GatedMLP fc holds HF gate_proj and gate holds up_proj (tp=2, rank 1 rows)", async () => {
    const out = join(tmp, "llama-tp2-pp1");
    const f = await SafetensorsFile.open(join(out, "rank1.safetensors"));
    const hf = await SafetensorsFile.open(`${FIXTURES}llama/model.safetensors`);
    const half = (x: Float32Array) => x.subarray(x.length / 2);
    expect(await f.readF32("transformer.layers.0.mlp.fc.weight")).toEqual(half(await hf.readF32("model.layers.0.mlp.gate_proj.weight")));
    expect(await f.readF32("transformer.layers.0.mlp.gate.weight")).toEqual(half(await hf.readF32("model.layers.0.mlp.up_proj.weight")));
    await Promise.all([f.close(), hf.close()]);
  });

  it("GPT-J: mlp.proj.bias on rank 0 only, zeros elsewhere", async () => {
    const out = join(tmp, "gptj-tp2-pp1");
    const r0 = await SafetensorsFile.open(join(out, "rank0.safetensors"));
    const r1 = await SafetensorsFile.open(join(out, "rank1.safetensors"));
    const hf = await SafetensorsFile.open(`${FIXTURES}gptj/model.safetensors`);
    expect(await r0.readF32("transformer.layers.0.mlp.proj.bias")).toEqual(await hf.readF32("transformer.h.0.mlp.fc_out.bias"));
    expect([...(await r1.readF32("transformer.layers.0.mlp.proj.bias"))].every((v) => v === 0)).toBe(true);
    await Promise.all([r0.close(), r1.close(), hf.close()]);
  });
});

describe("kiln compile outputs", () => {
  it("is deterministic: two compiles give byte-identical files", async () => {
    const [a, b] = [join(tmp, "det-a"), join(tmp, "det-b")];
    for (const out of [a, b]) await compileModel(llama, { hfDir: `${FIXTURES}llama3_gqa`, outDir: out, mapping: { tp: 2, pp: 1 }, customCode: true });
    for (const f of readdirSync(a)) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
  });

  it("--custom-code emits a model.py that compiles and uses only real TensorRT-LLM 1.2 API, and still matches HF", async () => {
    const out = join(tmp, "det-a");
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.architecture).toMatch(/^Kiln\w*ForCausalLM$/);
    execFileSync("python3", ["-m", "py_compile", join(out, "model.py")]);
    const api = checkPythonApi(join(out, "model.py"));
    expect(api.problems).toEqual([]);
    expect(api.checked).toBeGreaterThan(30);
    expect(readFileSync(join(out, "model.py"), "utf8")).toContain(`MODEL_MAP["${cfg.architecture}"]`);
  });

  it("writes bfloat16 rank files with round-to-nearest-even values", async () => {
    const out = join(tmp, "bf16");
    const r = await compileModel(llama, { hfDir: `${FIXTURES}llama`, outDir: out, dtype: "bfloat16" });
    expect(r.emission.files["config.json"]).toContain('"dtype": "bfloat16"');
    const f = await SafetensorsFile.open(join(out, "rank0.safetensors"));
    const hf = await SafetensorsFile.open(`${FIXTURES}llama/model.safetensors`);
    expect(f.info("transformer.ln_f.weight")!.dtype).toBe("BF16");
    const got = await f.readF32("transformer.ln_f.weight");
    const want = await hf.readF32("model.norm.weight");
    const rne = (x: number) => {
      const u = new Uint32Array(Float32Array.of(x).buffer)[0]!;
      return new Float32Array(Uint32Array.of((((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0).buffer)[0]!;
    };
    expect([...got]).toEqual([...want].map(rne));
    await Promise.all([f.close(), hf.close()]);
  });

  it("rejects an impossible tp before writing anything", async () => {
    const out = join(tmp, "bad-tp");
    await expect(compileModel(llama, { hfDir: `${FIXTURES}llama`, outDir: out, mapping: { tp: 3, pp: 1 } })).rejects.toThrow(/not divisible by tp=3/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes("kiln-tmp"))).toEqual([]);
  });
});

describe("a model with a custom op (examples/llama_fused_norm)", () => {
  it("compiles to custom code with its Python plugin package, API-checked, and the rank files still match HF at tp=2", async () => {
    const { default: fused } = await import("../../examples/llama_fused_norm/model.ts");
    const out = join(tmp, "fused-norm-tp2");
    const r = await compileModel(fused, { hfDir: `${FIXTURES}llama3_gqa`, outDir: out, mapping: { tp: 2, pp: 1 } });
    expect(r.lowered.graph.nodes.some((n) => n.op === "fused_add_rms_norm")).toBe(true);
    expect(readdirSync(join(out, "kiln_plugins")).sort()).toContain("__init__.py");
    expect(r.emission.usage(out).join("\n")).toMatch(/PYTHONPATH=.*trtllm-build .*--model_cls_file/);
    const api = checkPythonApi(join(out, "model.py"), { manifest: ["codegen/apicheck/trtllm-1.2.json", "codegen/apicheck/trtllm-1.2-python-plugin.json"] });
    expect(api.problems).toEqual([]);
    const golden = await readGolden(`${FIXTURES}llama3_gqa`);
    const logits = await simulateCheckpoint(
      out,
      r.lowered.graph,
      golden.map((g) => g.ids),
    );
    golden.forEach((g, i) => expect(relL2(logits[i]!, g.logits)).toBeLessThanOrEqual(1e-5));
  });
});
