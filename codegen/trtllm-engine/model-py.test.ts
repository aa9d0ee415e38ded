// model.py emission: every fixture model (forced through the custom path) and custom architectures compile as
// Python, pass the TensorRT-LLM 1.2 API checker, are deterministic, and register exactly the lowered graph's
// parameter names; per-layer attributes become config lists; glue becomes functional code; structure differences,
// unsupported ops and hostile model names are handled with clear errors or escaped output.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import examplePrimitives from "../../examples/llama_from_primitives.ts";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama, { type LlamaConfig } from "../../models/llama.ts";
import { Attention, defineModel, Embedding, GatedMLP, Linear, Module, Parameter, perLayer, RMSNorm, src, type Tensor, type z } from "../../src/index.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import type { Graph } from "../../src/ir/graph.ts";
import { placeParam } from "../../src/lower/mapping.ts";
import { type LoweredModel, lowerToTrtllm } from "../../src/lower/to-trtllm.ts";
import { instantiate } from "../../src/driver/instantiate.ts";
import { optimize } from "../../src/driver/optimize.ts";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { readHFConfigJson } from "../../src/weights/hf-config.ts";
import { shardWeights } from "../../src/lower/shard.ts";
import { exprShape } from "../../src/weights/weight-map.ts";
import { checkPythonApi } from "../apicheck/check-api.ts";
import { rankFilePlans } from "../common/checkpoint-plan.ts";
import { emitModelPy, expectedParameterNames, ModelPyError } from "./model-py.ts";
import { pretrainedConfig } from "./pretrained-config.ts";

const FIX = "test/fixtures/hf";
const tmp = mkdtempSync(join(tmpdir(), "kiln-model-py-"));
const python = process.env.KILN_PYTHON ?? "python3";

type Lowered = LoweredModel & { readonly shapeOf: (name: string) => readonly number[] | undefined; readonly hf: Record<string, unknown> };

const lowered = new Map<string, Promise<Lowered>>();
/** The lowered model of `def` on a fixture (memoized: lowering is the slow part of these tests). */
function lower(def: ModelDefinition<any>, fixture: string, override: Record<string, unknown> = {}): Promise<Lowered> {
  const key = `${def.name}/${fixture}/${JSON.stringify(override)}`;
  if (!lowered.has(key)) lowered.set(key, lowerNow(def, fixture, override));
  return lowered.get(key)!;
}

async function lowerNow(def: ModelDefinition<any>, fixture: string, override: Record<string, unknown>): Promise<Lowered> {
  const dir = `${FIX}/${fixture}`;
  const hf = { ...(readHFConfigJson(dir) as Record<string, unknown>), ...override };
  const opt = optimize(instantiate(def, hf));
  const ck = await openCheckpoint(dir);
  try {
    const shapes = new Map(ck.names().map((n) => [n, ck.info(n)!.shape]));
    const shapeOf = (n: string) => shapes.get(n);
    return { ...lowerToTrtllm(opt.graph, opt.weights.map, shapeOf), shapeOf, hf };
  } finally {
    await ck.close();
  }
}

function writePy(name: string, source: string): string {
  const file = join(tmp, `${name}.py`);
  writeFileSync(file, source);
  return file;
}

/** Runs Python code with the given files as argv; returns stdout, failing the test on a non-zero exit. */
function py(code: string, args: readonly string[] = []): string {
  const r = spawnSync(python, ["-c", code, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout;
}

const PY_COMPILE = "import py_compile, sys\nfor f in sys.argv[1:]:\n    py_compile.compile(f, doraise=True)\nprint('ok')";
/** Top-level statement kinds and every import of a file, from Python's own parser. */
const PY_OUTLINE = `
import ast, json, sys
def outline(path):
    tree = ast.parse(open(path).read())
    imports = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
    return {"top": [type(n).__name__ for n in tree.body], "imports": sorted(set(imports)), "classes": [n.name for n in tree.body if isinstance(n, ast.ClassDef)]}
print(json.dumps([outline(p) for p in sys.argv[1:]]))`;

const sortedParams = (g: Graph) => g.params.map((p) => p.name).sort();
const lines = (s: string) => s.split("\n");
/** The lines of `source` from the first line matching `from` up to (excluding) the next line matching `to`. */
function excerpt(source: string, from: RegExp, to: RegExp): string {
  const ls = lines(source);
  const a = ls.findIndex((l) => from.test(l));
  const b = ls.findIndex((l, i) => i > a && to.test(l));
  return ls.slice(a, b < 0 ? undefined : b).join("\n");
}

const FIXTURE_MODELS: [string, ModelDefinition<any>, string][] = [
  ["gpt2", gpt2, "gpt2"],
  ["gptj", gptj, "gptj"],
  ["llama", llama, "llama"],
  ["llama3_gqa", llama, "llama3_gqa"],
  ["llama_from_primitives", examplePrimitives, "llama"],
];

describe("model.py for every fixture model (forced custom path)", () => {
  const emitted = new Map<string, { low: Lowered; src: string; file: string }>();
  beforeAll(async () => {
    for (const [key, def, fixture] of FIXTURE_MODELS) {
      const low = await lower(def, fixture);
      const src = emitModelPy(low, { modelName: def.name, dslFile: `models/${def.name}.ts` }).source;
      emitted.set(key, { low, src, file: writePy(key, src) });
    }
  });

  it("compiles with py_compile", () => {
    expect(
      py(
        PY_COMPILE,
        [...emitted.values()].map((e) => e.file),
      ).trim(),
    ).toBe("ok");
  });

  for (const [key] of FIXTURE_MODELS) {
    it(`${key}: passes the TensorRT-LLM 1.2 API check`, () => {
      const r = checkPythonApi(emitted.get(key)!.file);
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.checked).toBeGreaterThanOrEqual(45);
    });

    it(`${key}: is deterministic and registers exactly the graph's parameter names`, () => {
      const { low, src } = emitted.get(key)!;
      const def = FIXTURE_MODELS.find(([k]) => k === key)![1];
      expect(emitModelPy(low, { modelName: def.name, dslFile: `models/${def.name}.ts` }).source).toBe(src);
      expect(expectedParameterNames(low).sort()).toEqual(sortedParams(low.graph));
      expect(new Set(expectedParameterNames(low)).size).toBe(low.graph.params.length);
    });
  }

  it("imports only from tensorrt_llm and defines the four classes in order, then registers in MODEL_MAP", () => {
    const [outline] = JSON.parse(py(PY_OUTLINE, [emitted.get("llama")!.file]));
    expect(outline.imports).toEqual([
      "tensorrt_llm",
      "tensorrt_llm.functional",
      "tensorrt_llm.layers",
      "tensorrt_llm.models",
      "tensorrt_llm.models.modeling_utils",
      "tensorrt_llm.module",
    ]);
    expect(outline.classes).toEqual(["KilnLlamaConfig", "KilnLlamaDecoderLayer", "KilnLlamaModel", "KilnLlamaForCausalLM"]);
    expect(outline.top.at(-1)).toBe("Assign");
    expect(emitted.get("llama")!.src.trimEnd().split("\n").at(-1)).toBe('MODEL_MAP["KilnLlamaForCausalLM"] = KilnLlamaForCausalLM');
  });

  it("keeps lines within 79 columns, with no trailing whitespace or tabs", () => {
    for (const { src } of emitted.values())
      for (const l of lines(src)) {
        expect(l.length).toBeLessThanOrEqual(79);
        expect(l).not.toMatch(/\s$|\t/);
      }
  });

  it("maps the attention attributes to TensorRT-LLM's Attention arguments (llama3 GQA)", () => {
    expect(excerpt(emitted.get("llama3_gqa")!.src, /self\.attention = Attention\(/, /^\s+\)$/)).toMatchInlineSnapshot(`
      "        self.attention = Attention(
                  local_layer_idx=self.local_layer_idx,
                  hidden_size=config.hidden_size,
                  attention_head_size=config.head_size,
                  num_attention_heads=config.num_attention_heads,
                  num_kv_heads=config.num_key_value_heads,
                  max_position_embeddings=config.max_position_embeddings,
                  dtype=config.dtype,
                  attention_mask_type=AttentionMaskType.causal,
                  bias=False,
                  dense_bias=False,
                  position_embedding_type=config.position_embedding_type,
                  rotary_embedding_base=config.rotary_base,
                  rotary_embedding_scaling=config.rotary_scaling,
                  rotary_embedding_percentage=config.rotary_pct,
                  q_scaling=1.0,
                  tp_group=config.mapping.tp_group,
                  tp_size=config.mapping.tp_size,
                  tp_rank=config.mapping.tp_rank,
                  quant_mode=config.quant_mode,"
    `);
  });

  it("writes GPT-2's learned positions and its decoder layer forward (snapshot)", () => {
    const src = emitted.get("gpt2")!.src;
    expect(src).toContain("self.position_embedding = Embedding(\n                config.max_position_embeddings,");
    expect(src).toContain("position_embedding_type=config.position_embedding_type,\n            q_scaling=1.0,");
    expect(src).not.toContain("rotary_embedding_base");
    const forward = excerpt(src, /^ {4}def forward\($/, /^class /).replace(/# \S+:\d+/g, "# <loc>");
    expect(forward).toMatchInlineSnapshot(`
      "    def forward(
              self,
              hidden_states: Tensor,
              attention_mask=None,
              use_cache=False,
              kv_cache_params=None,
              attention_params=None,
              lora_layer_params=None,
              spec_decoding_params=None,
          ):
              # <loc>
              input_layernorm_output = self.input_layernorm(hidden_states)
              # <loc>
              attention_output = self.attention(
                  input_layernorm_output,
                  attention_mask=attention_mask,
                  use_cache=use_cache,
                  kv_cache_params=kv_cache_params,
                  attention_params=attention_params,
                  lora_layer_params=lora_layer_params,
                  spec_decoding_params=spec_decoding_params,
              )
              if use_cache:
                  attention_output, presents = attention_output
              # <loc>
              hidden_states_1 = hidden_states + attention_output
              # <loc>
              post_layernorm_output = self.post_layernorm(hidden_states_1)
              # <loc>
              mlp_output = self.mlp(
                  post_layernorm_output,
                  lora_layer_params=lora_layer_params,
              )
              # <loc>
              hidden_states_2 = hidden_states_1 + mlp_output
              if use_cache:
                  return (hidden_states_2, presents)
              return hidden_states_2

      "
    `);
  });

  it("marks each block with the DSL source line it came from", () => {
    const { low, src } = emitted.get("gptj")!;
    const residual = low.graph.nodes.find((n) => n.op === "add" && n.scope === "transformer.layers.0")!;
    expect(residual.loc?.file).toBe("models/gptj.ts");
    const ls = lines(src);
    const at = ls.findIndex((l) => l.trim() === "hidden_states_1 = hidden_states + attention_output");
    expect(ls[at - 1]!.trim()).toBe(`# models/gptj.ts:${residual.loc!.line}`);
    expect(src).toContain("# Generated by Kiln from models/gptj.ts");
  });

  it("reads standard sizes from the config and writes no custom config fields for uniform layers", async () => {
    const low = emitted.get("llama")!.low;
    const r = emitModelPy(low, { modelName: "llama" });
    expect(r.configFields).toEqual({});
    expect(r.architecture).toBe("KilnLlamaForCausalLM");
    expect(r.className).toBe("KilnLlamaForCausalLM");
    expect(r.source).toContain("ffn_hidden_size=config.intermediate_size,\n            hidden_act=config.hidden_act,");
    expect(r.source).toContain("eps=config.norm_epsilon,");
  });

  it("gives each pipeline stage the names the checkpoint writer places there", () => {
    const low = emitted.get("llama3_gqa")!.low;
    for (const pp of [1, 2, 3])
      for (let s = 0; s < pp; s++) {
        const want = low.graph.params
          .map((p) => placeParam(p.name, low.numLayers, pp))
          .filter((p) => p.stage === s)
          .map((p) => p.localName);
        expect(expectedParameterNames(low, { pp, index: s }).sort()).toEqual(want.sort());
      }
  });
});

describe("per-layer attributes", () => {
  it("GPT-2 scale_attn_by_inverse_layer_idx: q_scaling becomes a per-layer config list", async () => {
    const low = await lower(gpt2, "gpt2", { scale_attn_by_inverse_layer_idx: true });
    const r = emitModelPy(low, { modelName: "gpt2" });
    expect(r.configFields).toEqual({ q_scaling: [1, 2] });
    expect(r.source).toContain("q_scaling=config.q_scaling[layer_idx],");
    expect(r.source).toMatch(/rotary_pct=1\.0,\n\s+q_scaling,\n\s+\*\*kwargs,/);
    expect(r.source).toContain("        self.q_scaling = q_scaling\n");
    const file = writePy("gpt2_inverse", r.source);
    expect(checkPythonApi(file).problems).toEqual([]);
  });
});

// A custom architecture TensorRT-LLM does not have: LLaMA blocks with a parallel residual (attention and MLP both
// read x), an extra linear and a constant 0.5 on the attention branch, a learned per-channel gate and a per-layer
// 1/(i+1) scale on the MLP branch, a nested custom parameter, a learned scale of the positions in every layer, a learned scale
// on the embeddings and a scalar before the final norm.
class Scale extends Module {
  readonly w: Parameter;
  constructor(d: number) {
    super();
    this.w = new Parameter([d]);
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.w);
  }
}

class ParallelBlock extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: GatedMLP;
  readonly gate: Parameter;
  readonly extra: Scale;
  readonly mix: Linear;
  readonly posScale: Parameter;
  constructor(
    c: LlamaConfig,
    readonly index: number,
  ) {
    super();
    this.inputNorm = new RMSNorm(c.hidden, c.eps);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      rope: { style: "neox", rotaryDim: c.headDim, theta: c.rope.theta, scaling: c.rope.scaling },
    });
    this.postNorm = new RMSNorm(c.hidden, c.eps);
    this.mlp = new GatedMLP(c.hidden, c.ffn, c.act);
    this.gate = new Parameter([c.hidden]);
    this.extra = new Scale(c.hidden);
    this.mix = new Linear(c.hidden, c.hidden);
    this.posScale = new Parameter([c.hidden]);
  }
  forward(x: Tensor, pos: Tensor): Tensor {
    const a = this.mix.forward(this.attn.forward(this.inputNorm.forward(x), pos)).mul(0.5);
    const m = this.extra.forward(this.mlp.forward(this.postNorm.forward(x)).mul(this.gate)).mul(1 / (this.index + 1));
    const p = pos
      .cast("f32")
      .reshape([x.dim(0), x.dim(1), 1])
      .mul(this.posScale);
    return x.add(a).add(m).add(p);
  }
}

class ParallelModel extends Module {
  readonly embed: Embedding;
  readonly embedScale: Parameter;
  readonly layers: ParallelBlock[];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;
  constructor(c: LlamaConfig) {
    super();
    this.embed = new Embedding(c.vocab, c.hidden);
    this.embedScale = new Parameter([c.hidden]);
    this.layers = Array.from({ length: c.layers }, (_, i) => new ParallelBlock(c, i));
    this.norm = new RMSNorm(c.hidden, c.eps);
    this.lmHead = new Linear(c.hidden, c.vocab);
  }
  forward(ids: Tensor, pos: Tensor): Tensor {
    const h = this.layers.reduce((x, l) => l.forward(x, pos), this.embed.forward(ids).mul(this.embedScale));
    return this.lmHead.forward(this.norm.forward(h.mul(2)));
  }
}

const parallelLlama = defineModel({
  name: "parallel-llama",
  architectures: ["LlamaForCausalLM"],
  config: llama.config as z.ZodType<LlamaConfig>,
  create: (c) => new ParallelModel(c),
  weights: (c) => {
    const base = llama.weights(c).map as Record<string, ReturnType<typeof src>>;
    const rename = (k: string) => k.replace(/^embed\./, "embed.").replace(/\.attn\./, ".attn.");
    return {
      map: {
        ...Object.fromEntries(Object.entries(base).map(([k, v]) => [rename(k), v])),
        embedScale: src("model.norm.weight"),
        ...perLayer(c.layers, (i) => ({
          [`layers.${i}.gate`]: src("model.norm.weight"),
          [`layers.${i}.extra.w`]: src(`model.layers.${i}.input_layernorm.weight`),
          [`layers.${i}.mix.weight`]: src(`model.layers.${i}.self_attn.o_proj.weight`),
          [`layers.${i}.posScale`]: src("model.norm.weight"),
        })),
      },
      ignore: ["*.rotary_emb.inv_freq"],
    };
  },
});

describe("a custom architecture (parallel residual, scalar and learned scales)", () => {
  let low: Lowered;
  let r: ReturnType<typeof emitModelPy>;
  let file: string;
  beforeAll(async () => {
    low = await lower(parallelLlama, "llama");
    r = emitModelPy(low, { modelName: parallelLlama.name, dslFile: "parallel_llama.ts" });
    file = writePy("parallel_llama", r.source);
  });

  it("compiles, passes the API check and registers the graph's parameter names", () => {
    expect(py(PY_COMPILE, [file]).trim()).toBe("ok");
    const check = checkPythonApi(file);
    expect(check.problems).toEqual([]);
    expect(check.checked).toBeGreaterThanOrEqual(45);
    expect(expectedParameterNames(low).sort()).toEqual(sortedParams(low.graph));
    expect(sortedParams(low.graph)).toContain("transformer.layers.1.extra.w");
  });

  it("writes the glue with functional ops and plain Parameters", () => {
    const s = r.source;
    expect(r.className).toBe("KilnParallelLlamaForCausalLM");
    expect(s).toContain("self.gate = Parameter(shape=(64,), dtype=config.dtype)");
    expect(s).toMatch(/self\.extra = KilnParallelLlamaGroup\(\)\n\s+# \S+\n\s+self\.extra\.w = Parameter\(shape=\(64,\), dtype=config\.dtype\)\n/);
    expect(s).toContain("self.embedScale = Parameter(shape=(64,), dtype=config.dtype)");
    expect(s).toContain("self.mix = KilnParallelLlamaGroup()");
    expect(s).toContain("self.mix.weight = Parameter(shape=(64, 64), dtype=config.dtype)");
    expect(s).toContain("linear = F.matmul(attention_output, self.mix.weight.value, transb=True)\n");
    expect(s).toMatch(/mul = linear \* 0\.5\n/);
    expect(s).toMatch(/mul_\d+ = mlp_output \* self\.gate\.value\n/);
    expect(s).toMatch(/mul_\d+ = mul_\d+ \* self\.extra\.w\.value\n/);
    expect(s).toMatch(/mul_\d+ = mul_\d+ \* self\.config\.layer_constant_0\[self\.layer_idx\]\n/);
    expect(s).toContain("hidden_states = vocab_embedding_output * self.embedScale.value");
    expect(s).toMatch(/if self\.mapping\.is_last_pp_rank\(\):\n\s+# \S+\n\s+mul = hidden_states \* 2\.0\n\s+# \S+\n\s+hidden_states = self\.ln_f\(mul\)/);
    // Positions read inside the layer: the layers get position_ids, reshaped over the trailing dims only.
    // (a cast to the graph's float type follows the engine dtype: config.dtype)
    expect(s).toMatch(
      /cast = F\.cast\(position_ids, self\.config\.dtype\)\n(\s+# \S+\n)?\s+reshape = _kiln_view\(cast, 0, \[1\]\)\n(\s+# \S+\n)?\s+mul_\d+ = reshape \* self\.posScale\.value\n/,
    );
    expect(s).toContain("        spec_decoding_params=None,\n        position_ids=None,\n    ):");
    expect(s).toContain("            position_ids=position_ids,\n        )");
    // Both branches read the layer input: a parallel residual.
    expect(s).toContain("input_layernorm_output = self.input_layernorm(hidden_states)");
    expect(s).toContain("post_layernorm_output = self.post_layernorm(hidden_states)");
  });

  it("turns the per-layer 1/(i+1) into a config list and keeps the shared 0.5 inline", () => {
    expect(r.configFields).toEqual({ layer_constant_0: [1, 0.5] });
    expect(r.source).toContain("        layer_constant_0,\n        **kwargs,");
  });

  it("fails naming the first layer whose structure differs", async () => {
    class Odd extends ParallelBlock {
      override forward(x: Tensor, pos: Tensor): Tensor {
        const y = super.forward(x, pos);
        return this.index === 1 ? y.mul(y.sigmoid()) : y;
      }
    }
    const odd = defineModel({
      ...parallelLlama,
      name: "odd",
      create: (c: LlamaConfig) => Object.assign(new ParallelModel(c), { layers: Array.from({ length: c.layers }, (_, i) => new Odd(c, i)) }),
    });
    const l = await lower(odd, "llama");
    expect(() => emitModelPy(l, { modelName: "odd" })).toThrow(ModelPyError);
    expect(() => emitModelPy(l, { modelName: "odd" })).toThrow(/decoder layer 1 differs in structure from layer 0 at op \d+ \(.*DecoderLayerList/);
  });
});

describe("exact (erf) GELU", () => {
  it("uses a GELU MLP class with TensorRT-LLM's parameter layout and an erf built from functional ops", async () => {
    const low = await lower(llama, "llama", { hidden_act: "gelu" });
    const r = emitModelPy(low, { modelName: "llama" });
    const file = writePy("llama_erf", r.source);
    expect(checkPythonApi(file).problems).toEqual([]);
    expect(expectedParameterNames(low).sort()).toEqual(sortedParams(low.graph));
    expect(r.source).toContain("self.mlp = KilnLlamaErfGeluMLP(");
    expect(r.source).toContain("gated=True,");
    expect(r.source).toContain("def _kiln_erf(x):");
    expect(r.source).toContain("mlp_output = self.mlp(post_layernorm_output)\n");
  });

  it("the emitted erf is within 2e-7 of math.erf (helper run with a scalar stand-in for F)", async () => {
    const low = await lower(llama, "llama", { hidden_act: "gelu" });
    const src = emitModelPy(low, { modelName: "llama" }).source;
    const helpers = excerpt(src, /^def _kiln_erf/, /^class /);
    const code = `
import math, types
F = types.SimpleNamespace(div=lambda a, b: a / b, abs=abs, exp=math.exp, where=lambda c, a, b: a if c else b)
${helpers}
xs = [i / 100.0 for i in range(-600, 601)]
print(max(abs(_kiln_erf(x) - math.erf(x)) for x in xs))
print(max(abs(_kiln_gelu_erf(x) - 0.5 * x * (1 + math.erf(x / math.sqrt(2)))) for x in xs))`;
    const [erfErr, geluErr] = py(code).trim().split("\n").map(Number);
    expect(erfErr).toBeLessThan(2e-7);
    expect(geluErr).toBeLessThan(1e-6);
  });
});

describe("GPT-J's single all-reduce (reduce=layer)", () => {
  it("builds attention and MLP without tp_group and all-reduces their sum once", async () => {
    const base = await lower(gptj, "gptj");
    const g = {
      ...base.graph,
      nodes: base.graph.nodes.map((n) => (n.op === "trtllm.attention" || n.op === "trtllm.mlp" ? { ...n, attrs: { ...n.attrs, reduce: "layer" } } : n)),
    };
    const low = { ...base, graph: g };
    const r = emitModelPy(low, { modelName: "gptj" });
    expect(r.source.match(/tp_group=None,/g)).toHaveLength(2);
    // x + attn is full + partial: the partial is reduced before the add, then again for the MLP branch.
    expect(r.source).toContain(
      "attention_output_reduced = attention_output\n        if self.config.mapping.tp_size > 1:\n            attention_output_reduced = F.allreduce(",
    );
    expect(checkPythonApi(writePy("gptj_layer_reduce", r.source)).problems).toEqual([]);
  });
});

describe("hostile model names", () => {
  const cases: [string, string][] = [
    ['x"); import os #', "KilnXImportOs"],
    ["a\nimport os\n#", "KilnAImportOs"],
    ["class", "KilnClass"],
    ["None", "KilnNone"],
    ["3b-model", "Kiln3bModel"],
    ["模型", "KilnCustom"],
    ["\u202egnp.exe", "KilnGnpExe"],
  ];
  it("become CamelCase class names; nothing of them runs, every line stays printable ASCII", async () => {
    const low = await lower(llama, "llama");
    const files = cases.map(([name, stem]) => {
      const r = emitModelPy(low, { modelName: name, dslFile: `dir/${name}.ts` });
      expect(r.className).toBe(`${stem}ForCausalLM`);
      for (const l of lines(r.source)) expect(l).toMatch(/^[\x20-\x7e]*$/);
      return writePy(`hostile_${stem}`, r.source);
    });
    const outlines = JSON.parse(py(PY_OUTLINE, files));
    outlines.forEach((o: { imports: string[]; classes: string[] }, k: number) => {
      const stem = cases[k]![1];
      expect(o.imports.every((m) => m.startsWith("tensorrt_llm"))).toBe(true);
      expect(o.classes).toEqual([`${stem}Config`, `${stem}DecoderLayer`, `${stem}Model`, `${stem}ForCausalLM`]);
    });
    expect(checkPythonApi(files[0]!).problems).toEqual([]);
    expect(readFileSync(files[0]!, "utf8")).toContain('(model "x\\"); import os #")');
  });
});

/** Tensors (name -> per-rank shape) that the lead's checkpoint writer puts into each rank file. */
function rankFiles(low: Lowered, tp: number, pp: number): Record<string, Record<string, number[]>> {
  const plans = rankFilePlans(low, shardWeights(low, tp, low.shapeOf), { tp, pp }, "float16");
  return Object.fromEntries(
    plans.map((p) => [p.file.replace(/^rank(\d+)\.safetensors$/, "$1"), Object.fromEntries(p.tensors.map((t) => [t.name, exprShape(t.expr, low.shapeOf)]))]),
  );
}

/** Builds the emitted classes for every rank against model-py-tree.py's stand-in tensorrt_llm. */
function moduleTree(
  name: string,
  low: Lowered,
  source: string,
  configFields: Record<string, unknown>,
  architecture: string,
  tp: number,
  pp: number,
): Record<string, Record<string, number[]>> {
  const config = { ...pretrainedConfig(low, architecture, undefined, { dtype: "float16", mapping: { tp, pp }, hf: low.hf }), ...configFields };
  const model = writePy(`${name}_tree`, source);
  const cfg = join(tmp, `${name}_tree.json`);
  writeFileSync(cfg, JSON.stringify(config));
  return JSON.parse(py("import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')", [TREE_SCRIPT, model, cfg]));
}
const TREE_SCRIPT = "codegen/trtllm-engine/model-py-tree.py";

describe("the emitted module tree, constructed in Python (stand-in tensorrt_llm) for every tp/pp rank", () => {
  const cases: [string, ModelDefinition<any>, string, number, number, Record<string, unknown>?][] = [
    ["llama3_gqa", llama, "llama3_gqa", 4, 2],
    ["gpt2", gpt2, "gpt2", 2, 2],
    ["gptj", gptj, "gptj", 2, 2],
    ["parallel_llama", parallelLlama, "llama", 2, 2],
    ["llama_erf_gelu", llama, "llama", 2, 1, { hidden_act: "gelu" }],
  ];
  for (const [name, def, fixture, tp, pp, override] of cases)
    it(`${name} tp=${tp} pp=${pp}: each rank registers exactly its rank file's tensors, with their shapes`, async () => {
      const low = await lower(def, fixture, override);
      const r = emitModelPy(low, { modelName: def.name });
      expect(moduleTree(name, low, r.source, r.configFields, r.architecture, tp, pp)).toEqual(rankFiles(low, tp, pp));
    });

  it("names that are not Python identifiers go through setattr/getattr and still match", async () => {
    const base = await lower(parallelLlama, "llama");
    const rename = (n: string) =>
      n
        .replace(/\.gate$/, ".in")
        .replace(/\.extra\.w$/, ".extra.\u00f1")
        .replace(/^transformer\.embedScale$/, "transformer.class");
    const graph = { ...base.graph, params: base.graph.params.map((p) => ({ ...p, name: rename(p.name) })) };
    const low: Lowered = { ...base, graph, weights: Object.fromEntries(Object.entries(base.weights).map(([k, v]) => [rename(k), v])) };
    const r = emitModelPy(low, { modelName: "renamed" });
    expect(r.source).toContain('setattr(self, "in", Parameter(shape=(64,), dtype=config.dtype))');
    expect(r.source).toContain('setattr(self.extra, "\\xf1", Parameter(shape=(64,), dtype=config.dtype))');
    expect(r.source).toContain('mul_1 = mlp_output * getattr(self, "in").value');
    expect(r.source).toContain('getattr(self, "class").value');
    expect(checkPythonApi(writePy("renamed", r.source)).problems).toEqual([]);
    expect(moduleTree("renamed", low, r.source, r.configFields, r.architecture, 2, 2)).toEqual(rankFiles(low, 2, 2));
  });
});
