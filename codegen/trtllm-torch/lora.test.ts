// `kiln compile --target trtllm-torch --lora A,B`, statically: the adapter directories hold PEFT's own lora_A and
// lora_B x scale (per module, rank/alpha patterns and rsLoRA honoured) under the generated model's module names,
// padded to one rank with r = lora_alpha so TensorRT-LLM's loader scales by 1; lora/adapters.json and
// lora_example.py carry the LoraConfig settings (module names per MLP kind) and one LoRARequest per adapter, and
// pass the API check against the manifests; user-given adapter names reach Python quoted; replicated KV heads are
// refused. The numbers through the PyTorch backend's LoRA path: python-bridge/tests/test_lora_torch_verify.py.

import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/weights/safetensors.ts";
import { FIXTURES } from "../../test/golden.ts";
import { checkPythonApi } from "../apicheck/check-api.ts";
import { adapterNames } from "./lora.ts";

const MANIFESTS = ["trtllm-1.2.json", "trtllm-torch-1.2.json"].map((m) => fileURLToPath(new URL(`../apicheck/${m}`, import.meta.url)));
const LORA = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "kiln-torch-lora-"));

async function tensors(file: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const f = await SafetensorsFile.open(file);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of f.tensors()) out.set(t.name, { shape: [...t.shape], data: await f.readF32(t.name) });
  await f.close();
  return out;
}

async function compileWith(name: string, def: ModelDefinition<any>, fixture: string, adapters: string[], tp = 2) {
  const outDir = join(tmp, name);
  const loraRuntime = await Promise.all(adapters.map((a) => readAdapter(a)));
  const r = await compileModel(def, { hfDir: `${FIXTURES}${fixture}`, outDir, target: "trtllm-torch", mapping: { tp, pp: 1 }, loraRuntime });
  return { outDir, r };
}

describe("trtllm-torch --lora", () => {
  it("LLaMA: PEFT dirs with PEFT's A and scaled B per module, LoraConfig for GatedMLP names, a checked example", async () => {
    const { outDir, r } = await compileWith("llama", llama, "llama", [`${LORA}llama/attn_qv`, `${LORA}llama/all_rslora`]);
    const manifest = JSON.parse(readFileSync(join(outDir, "lora/adapters.json"), "utf8"));
    expect(manifest.lora_config).toEqual({
      max_lora_rank: 8,
      lora_target_modules: ["attn_q", "attn_k", "attn_v", "attn_dense", "mlp_h_to_4h", "mlp_4h_to_h", "mlp_gate"],
      trtllm_modules_to_hf_modules: {
        attn_q: "q_proj",
        attn_k: "k_proj",
        attn_v: "v_proj",
        attn_dense: "o_proj",
        mlp_h_to_4h: "gate_proj",
        mlp_4h_to_h: "down_proj",
        mlp_gate: "up_proj",
      },
      max_loras: 2,
      max_cpu_loras: 2,
    });
    expect(manifest.adapters.map((a: any) => [a.lora_name, a.lora_int_id, a.lora_path, a.rank])).toEqual([
      ["attn_qv", 1, "lora/1", 4],
      ["all_rslora", 2, "lora/2", 8],
    ]);
    // all_rslora: r 8, alpha 16, rsLoRA (scale alpha/sqrt(r)); rank_pattern o_proj 4 and layer 1 down_proj 2;
    // alpha_pattern k_proj 4.
    const cfg = JSON.parse(readFileSync(join(outDir, "lora/2/adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({ peft_type: "LORA", r: 8, lora_alpha: 8, use_rslora: false, fan_in_fan_out: false });
    const ours = await tensors(join(outDir, "lora/2/adapter_model.safetensors"));
    const peft = await tensors(`${LORA}llama/all_rslora/adapter_model.safetensors`);
    const cases: [string, string, number, number][] = [
      ["model.layers.0.self_attn.q_proj", "base_model.model.model.layers.0.self_attn.q_proj", 8, 16 / Math.sqrt(8)],
      ["model.layers.1.self_attn.k_proj", "base_model.model.model.layers.1.self_attn.k_proj", 8, 4 / Math.sqrt(8)],
      ["model.layers.0.self_attn.o_proj", "base_model.model.model.layers.0.self_attn.o_proj", 4, 16 / Math.sqrt(4)],
      ["model.layers.1.mlp.down_proj", "base_model.model.model.layers.1.mlp.down_proj", 2, 16 / Math.sqrt(2)],
      ["model.layers.0.mlp.gate_proj", "base_model.model.model.layers.0.mlp.gate_proj", 8, 16 / Math.sqrt(8)],
    ];
    for (const [mine, theirs, rank, scale] of cases) {
      const A = ours.get(`base_model.model.${mine}.lora_A.weight`)!;
      const B = ours.get(`base_model.model.${mine}.lora_B.weight`)!;
      const pA = peft.get(`${theirs}.lora_A.weight`)!;
      const pB = peft.get(`${theirs}.lora_B.weight`)!;
      expect(pA.shape[0]).toBe(rank);
      const inDim = pA.shape[1]!;
      expect(A.shape).toEqual([8, inDim]);
      expect([...A.data.subarray(0, rank * inDim)]).toEqual([...pA.data]);
      expect(A.data.subarray(rank * inDim).every((v) => v === 0)).toBe(true);
      const out = pB.shape[0]!;
      expect(B.shape).toEqual([out, 8]);
      for (let o = 0; o < out; o++)
        for (let k = 0; k < 8; k++) {
          const want = k < rank ? pB.data[o * rank + k]! * scale : 0;
          expect(Math.abs(B.data[o * 8 + k]! - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
        }
    }
    const example = join(outDir, "lora_example.py");
    execFileSync("python3", ["-m", "py_compile", example]);
    const api = checkPythonApi(example, { manifest: MANIFESTS });
    expect(api.problems).toEqual([]);
    expect(api.unverified.map((u) => u.name)).toEqual(["tensorrt_llm.llmapi.LLM"]);
    const source = readFileSync(example, "utf8");
    expect(source).toContain('("all_rslora", 2, os.path.join(HERE, "lora", "2")),');
    expect(source).toContain("llm = LLM(model=HERE, lora_config=lora_config, tensor_parallel_size=2)");
    expect(source).toContain("outputs = llm.generate(prompts, lora_request=requests)");
    const modeling = join(outDir, "kiln_llama", "modeling_kiln_llama.py");
    expect(checkPythonApi(modeling, { manifest: MANIFESTS }).problems).toEqual([]);
    expect(r.emission.usage(outDir).join("\n")).toContain(`python3 ${outDir}/lora_example.py`);
  });

  it("GPT-2: a plain MLP's up_proj is mlp_h_to_4h; the fused c_attn becomes q/k/v modules sharing A", async () => {
    const { outDir } = await compileWith("gpt2", gpt2, "gpt2", [`${LORA}gpt2/attn_qkv`]);
    const manifest = JSON.parse(readFileSync(join(outDir, "lora/adapters.json"), "utf8"));
    expect(manifest.lora_config.trtllm_modules_to_hf_modules).toEqual({ attn_q: "q_proj", attn_k: "k_proj", attn_v: "v_proj" });
    expect(manifest.lora_config.lora_target_modules).toEqual(["attn_q", "attn_k", "attn_v"]);
    const ours = await tensors(join(outDir, "lora/1/adapter_model.safetensors"));
    const peft = await tensors(`${LORA}gpt2/attn_qkv/adapter_model.safetensors`);
    // fan_in_fan_out: PEFT's A [4, 64], B [192, 4] act on the Conv1D's transposed weight; scale alpha/r = 2.
    const pA = peft.get("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight")!;
    const pB = peft.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight")!;
    ["q_proj", "k_proj", "v_proj"].forEach((m, part) => {
      const A = ours.get(`base_model.model.model.layers.0.self_attn.${m}.lora_A.weight`)!;
      const B = ours.get(`base_model.model.model.layers.0.self_attn.${m}.lora_B.weight`)!;
      expect(A.shape).toEqual([4, 64]);
      expect([...A.data]).toEqual([...pA.data]);
      expect(B.shape).toEqual([64, 4]);
      for (let i = 0; i < 64 * 4; i++) expect(B.data[i]).toBeCloseTo(pB.data[part * 64 * 4 + i]! * 2, 6);
    });
    expect(readFileSync(join(outDir, "kiln_gpt2", "modeling_kiln_gpt2.py"), "utf8")).toContain("lora_params=lora_params");
  });

  it("adapter names from directory names reach Python as string literals", async () => {
    const odd = join(tmp, `we"ird 'name\\ $(x)`);
    cpSync(`${LORA}llama/attn_qv`, odd, { recursive: true });
    const { outDir } = await compileWith("quoted", llama, "llama", [odd, `${LORA}llama/attn_qv`], 1);
    const example = join(outDir, "lora_example.py");
    execFileSync("python3", ["-m", "py_compile", example]);
    const script =
      "import ast,sys\nt=ast.parse(open(sys.argv[1]).read())\nv=[n.value for n in t.body if isinstance(n,ast.Assign) and n.targets[0].id=='ADAPTERS'][0]\nprint('|'.join(e.elts[0].value for e in v.elts))";
    expect(execFileSync("python3", ["-c", script, example], { encoding: "utf8" }).trim()).toBe(`we"ird 'name\\ $(x)|attn_qv`);
    expect(readFileSync(example, "utf8")).not.toContain("LLM(model=HERE, lora_config=lora_config, tensor_parallel_size");
  });

  it("grouped-query attention: a layer with k LoRA and no q LoRA gets an all-zero q module (LoraLayer sizes are positional)", async () => {
    const dir = join(tmp, "k-only");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ peft_type: "LORA", r: 2, lora_alpha: 2, target_modules: ["k_proj"] }));
    const key = "base_model.model.model.layers.0.self_attn.k_proj";
    await writeSafetensors(join(dir, "adapter_model.safetensors"), [
      { name: `${key}.lora_A.weight`, dtype: "F32", shape: [2, 64], data: new Float32Array(128).fill(0.5) },
      { name: `${key}.lora_B.weight`, dtype: "F32", shape: [16, 2], data: new Float32Array(32).fill(0.25) },
    ]);
    const { outDir } = await compileWith("k-only-out", llama, "llama3_gqa", [dir]);
    const ours = await tensors(join(outDir, "lora/1/adapter_model.safetensors"));
    expect([...ours.keys()].sort()).toEqual(
      ["k_proj.lora_A", "k_proj.lora_B", "q_proj.lora_A", "q_proj.lora_B"].map((m) => `base_model.model.model.layers.0.self_attn.${m}.weight`),
    );
    const q = ours.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!;
    expect(q.shape).toEqual([64, 2]);
    expect(q.data.every((v) => v === 0)).toBe(true);
    expect(ours.get(`${key}.lora_B.weight`)!.data.every((v) => v === 0.25)).toBe(true);
  });

  it("request names are the adapter directories' names, made distinct", () => {
    expect(adapterNames(["x/a", "y/a/", "z/a-2", "a"])).toEqual(["a", "a-2", "a-2-2", "a-3"]);
  });

  it("refuses k/v LoRA when TensorRT-LLM would replicate KV heads (tp > num_key_value_heads), before writing", async () => {
    const dir = join(tmp, "gqa-tp4");
    await expect(compileWith("gqa-tp4", llama, "llama3_gqa", [`${LORA}llama3_gqa/all_rslora`], 4)).rejects.toThrow(
      /LoRA on '.*k_proj' with 2 KV heads at tp 4: TensorRT-LLM's runtime LoRA splits k\/v across ranks/,
    );
    expect(existsSync(dir)).toBe(false);
  });
});
