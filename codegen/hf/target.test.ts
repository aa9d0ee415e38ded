// The hf target's emission, without running it (codegen/hf/tests/ runs it with transformers): the files
// transformers' remote-code loading needs, a weight plan whose names are exactly the generated modules'
// parameters, byte-identical output, valid Python, per-layer values as config lists, and the options it refuses.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { prepareCompile } from "../../src/driver/compile.ts";
import { readHFConfigJson } from "../../src/weights/hf-config.ts";
import { FIXTURES } from "../../test/golden.ts";
import { hfStandardConfig } from "../pytorch/hf-config.ts";
import { expectedHfParameterNames, planHfModel } from "./modeling.ts";

const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama, llama3_gqa: llama };
const tmp = mkdtempSync(join(tmpdir(), "kiln-hf-emit-"));
const hfConfig = (f: string, extra: Record<string, unknown> = {}) => ({ ...(readHFConfigJson(`${FIXTURES}${f}`) as Record<string, unknown>), ...extra });
const emit = (f: string, extra: Record<string, unknown> = {}, o: Record<string, unknown> = {}) =>
  prepareCompile(MODELS[f]!, hfConfig(f, extra), "infer", { target: "hf", ...o });

describe("hf target emission", () => {
  for (const fixture of Object.keys(MODELS))
    it(`${fixture}: remote-code files, valid Python, weight names = generated parameters`, () => {
      const { emission, lowered } = emit(fixture);
      const stem = fixture.startsWith("llama") ? "llama" : fixture;
      expect(Object.keys(emission.files).sort()).toEqual(["config.json", `configuration_kiln_${stem}.py`, `modeling_kiln_${stem}.py`]);
      const config = JSON.parse(emission.files["config.json"]!);
      expect(config.auto_map.AutoModelForCausalLM).toBe(`modeling_kiln_${stem}.${emission.architecture}`);
      expect(config).toMatchObject({ architectures: [emission.architecture], model_type: `kiln_${stem}`, tie_word_embeddings: false, torch_dtype: "float32" });
      const [plan] = emission.plans;
      expect(plan!.file).toBe("model.safetensors");
      const std = hfStandardConfig(lowered, hfConfig(fixture), "float32");
      expect(plan!.tensors.map((t) => t.name)).toEqual(expectedHfParameterNames(planHfModel(lowered, Object.keys(std))));
      expect(new Set(plan!.tensors.map((t) => t.name))).toEqual(new Set(lowered.graph.params.map((p) => p.name)));
      const files = Object.entries(emission.files)
        .filter(([n]) => n.endsWith(".py"))
        .map(([n, text]) => {
          const f = join(tmp, `${fixture}-${n}`);
          writeFileSync(f, text);
          return f;
        });
      execFileSync("python3", ["-m", "py_compile", ...files]);
      for (const text of Object.values(emission.files)) expect(text.split("\n").filter((l) => l.length > 79)).toEqual([]);
    });

  it("is deterministic", () => {
    expect(emit("llama3_gqa").emission.files).toEqual(emit("llama3_gqa").emission.files);
  });

  it("per-layer softmax scales (GPT-2 scale_attn_by_inverse_layer_idx) become a config list the layers read", () => {
    const { emission } = emit("gpt2", { scale_attn_by_inverse_layer_idx: true });
    const config = JSON.parse(emission.files["config.json"]!);
    expect(config.q_scaling).toEqual([1, 2]);
    const modeling = emission.files["modeling_kiln_gpt2.py"]!;
    expect(modeling).toContain("scale=1.0 / (config.q_scaling[layer_idx] * math.sqrt(16))");
    expect(modeling).toMatch(/^import math$/m);
    expect(emission.files["configuration_kiln_gpt2.py"]).toContain("q_scaling = [1, 2]");
  });

  it("rope settings of LLaMA 3 are module constants; GPT-2 has no rope arguments", () => {
    const llama3 = emit("llama3_gqa").emission.files["modeling_kiln_llama.py"]!;
    expect(llama3).toContain('_KILN_ROPE_SCALING = {\n    "rope_type": "llama3",');
    expect(llama3).toContain("rope_scaling=_KILN_ROPE_SCALING,");
    const gpt2Attention = /self\.attention = KilnAttention\([^)]*\)/.exec(emit("gpt2").emission.files["modeling_kiln_gpt2.py"]!)![0];
    expect(gpt2Attention).toContain("qkv_bias=True");
    expect(gpt2Attention).not.toContain("rotary_dim");
  });

  it("refuses tensor/pipeline parallelism and --custom-code, naming the option", () => {
    expect(() => emit("llama", {}, { mapping: { tp: 2, pp: 1 } })).toThrow(/--tp\/--pp: the hf target writes a single-device model \(got tp=2, pp=1\)/);
    expect(() => emit("llama", {}, { customCode: true })).toThrow(/--custom-code applies to the trtllm-engine target only/);
  });

  it("usage says how transformers loads the directory", () => {
    const { emission } = emit("gptj");
    expect(emission.usage("out/hf-gptj").join("\n")).toContain('AutoModelForCausalLM.from_pretrained("out/hf-gptj", trust_remote_code=True)');
    expect(readFileSync(new URL("./VERIFIED.md", import.meta.url), "utf8")).toContain("gpu-check.py");
  });
});
