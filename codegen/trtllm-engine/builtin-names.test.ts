// The checkpoints Kiln writes for TensorRT-LLM 1.2.1's built-in classes, held to the classes' own module trees as
// the API manifests record them (trtllm-1.2.json for LLaMA/GPT and the layers, trtllm-1.2-builtin-models.json for
// Gemma, Phi-3, GPT-NeoX and QWen): config.json's architecture is a MODEL_MAP key of that class, and every tensor of
// every rank file names a parameter the class registers (child modules from each __init__, down to a layer's
// registered weight or bias). A wrong module name (post_layernorm for GPT-NeoX's post_attention_layernorm) fails.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileModel } from "../../src/driver/compile.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { ZOO } from "../../test/golden.ts";
import { zooModel } from "../../test/zoo/models.ts";

interface ClassEntry {
  readonly bases: string[];
  readonly methods: Record<
    string,
    { body?: { child_modules?: { name: string; callee: string; callee_resolved?: string }[]; registered_parameters?: { name: string }[] } }
  >;
}
interface Manifest {
  readonly modules: Record<string, { imports?: Record<string, string>; classes?: Record<string, ClassEntry> }>;
  readonly resolution?: Record<string, { target: string }>;
  readonly model_map?: Record<string, { class: string; defined_in: string }>;
}

const load = (f: string) => JSON.parse(readFileSync(new URL(`../apicheck/${f}`, import.meta.url), "utf8")) as Manifest;
const MAIN = load("trtllm-1.2.json");
const MODELS = load("trtllm-1.2-builtin-models.json");

/** "a.b.C" -> its manifest entry (either manifest), following the main manifest's re-export table. */
function classOf(dotted: string): ClassEntry {
  const target = MAIN.resolution?.[dotted]?.target ?? dotted;
  const at = target.lastIndexOf(".");
  const entry = (MODELS.modules[target.slice(0, at)] ?? MAIN.modules[target.slice(0, at)])?.classes?.[target.slice(at + 1)];
  if (!entry) throw new Error(`${dotted}: no such class in the manifests`);
  return entry;
}

/** The classes a child module is where the manifest cannot say (a class chosen at run time, a factory function):
 *  what these families get (GatedMLP for LLaMA and QWen's dense MLP, MLP for GPT's non-gated activations). */
const RUNTIME_CHOICE: Record<string, string> = {
  ClsMLP: "tensorrt_llm.layers.GatedMLP",
  MLPFactory: "tensorrt_llm.layers.MLP",
  mlp: "tensorrt_llm.layers.GatedMLP",
  q_layernorm: "tensorrt_llm.layers.RmsNorm",
  k_layernorm: "tensorrt_llm.layers.RmsNorm",
};

const importsOf = (module: string) => (MODELS.modules[module] ?? MAIN.modules[module])?.imports ?? {};
const baseOf = (module: string, base: string) => importsOf(module)[base] ?? `${module}.${base}`;
const isClass = (dotted: string) => {
  try {
    classOf(dotted);
    return true;
  } catch {
    return false;
  }
};

/** The class of child module `name` of `cls` (declared in `module`), looking through its bases. */
function child(cls: ClassEntry, module: string, name: string): string | undefined {
  const hit = (cls.methods.__init__?.body?.child_modules ?? []).find((k) => k.name === name);
  if (hit) {
    const callee = hit.callee_resolved ?? importsOf(module)[hit.callee];
    return callee && isClass(callee) ? callee : (RUNTIME_CHOICE[hit.callee] ?? RUNTIME_CHOICE[name]);
  }
  for (const b of cls.bases.filter((x) => x !== "Module")) {
    const target = MAIN.resolution?.[baseOf(module, b)]?.target ?? baseOf(module, b);
    const found = child(classOf(target), target.slice(0, target.lastIndexOf(".")), name);
    if (found) return found;
  }
  return undefined;
}

/** Whether `path` (a rank-file tensor name below `dotted`) is a parameter of that class's module tree. */
function registers(dotted: string, path: string[]): boolean {
  const target = MAIN.resolution?.[dotted]?.target ?? dotted;
  const cls = classOf(target);
  const module = target.slice(0, target.lastIndexOf("."));
  if (path.length === 1) {
    const own = (c: ClassEntry): boolean =>
      (c.methods.__init__?.body?.registered_parameters ?? []).some((p) => p.name === path[0]) ||
      c.bases.some((b) => b !== "Module" && own(classOf(baseOf(module, b))));
    return own(cls);
  }
  const next = child(cls, module, path[0]!);
  return next !== undefined && registers(next, path.slice(1));
}

/** Model and decoder-layer classes of each built-in family. */
const TREES: Record<string, { model: string; layer: string; architecture: string }> = {
  mistral: {
    model: "tensorrt_llm.models.llama.model.LLaMAModel",
    layer: "tensorrt_llm.models.llama.model.LLaMADecoderLayer",
    architecture: "LlamaForCausalLM",
  },
  qwen2: { model: "tensorrt_llm.models.qwen.model.QWenModel", layer: "tensorrt_llm.models.qwen.model.QWenDecoderLayer", architecture: "Qwen2ForCausalLM" },
  gemma: { model: "tensorrt_llm.models.gemma.model.GemmaModel", layer: "tensorrt_llm.models.gemma.model.GemmaDecoderLayer", architecture: "GemmaForCausalLM" },
  gemma2: {
    model: "tensorrt_llm.models.gemma.model.GemmaModel",
    layer: "tensorrt_llm.models.gemma.model.GemmaDecoderLayer",
    architecture: "Gemma2ForCausalLM",
  },
  starcoder2: { model: "tensorrt_llm.models.gpt.model.GPTModel", layer: "tensorrt_llm.models.gpt.model.GPTDecoderLayer", architecture: "GPTForCausalLM" },
  phi3: { model: "tensorrt_llm.models.phi3.model.Phi3Model", layer: "tensorrt_llm.models.phi3.model.Phi3DecoderLayer", architecture: "Phi3ForCausalLM" },
};

function tensorIsRegistered(family: string, name: string): boolean {
  const t = TREES[family]!;
  const parts = name.split(".");
  if (parts[0] === "lm_head") return registers("tensorrt_llm.layers.ColumnLinear", parts.slice(1));
  if (parts[1] === "layers") return registers(t.layer, parts.slice(3));
  return registers(t.model, parts.slice(1));
}

const tmp = mkdtempSync(join(tmpdir(), "kiln-builtin-names-"));

describe("built-in checkpoints name only what 1.2.1's classes register", () => {
  for (const family of Object.keys(TREES))
    it(`${family}: ${TREES[family]!.architecture}`, async () => {
      const out = join(tmp, family);
      await compileModel(zooModel(family), { hfDir: `${ZOO}${family}`, outDir: out, mapping: { tp: 2, pp: 1 } });
      const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      expect(config.architecture).toBe(TREES[family]!.architecture);
      const cls = MAIN.model_map![config.architecture]!.defined_in;
      expect(cls.split(".").slice(0, -1).join(".")).toBe(TREES[family]!.model.split(".").slice(0, -1).join("."));
      const f = await SafetensorsFile.open(join(out, "rank0.safetensors"));
      const names = f.tensors().map((t) => t.name);
      await f.close();
      expect(names.filter((n) => !tensorIsRegistered(family, n))).toEqual([]);
    });

  it("a name the class does not register is caught (GPT-NeoX has no post_layernorm)", () => {
    const neox = { model: "tensorrt_llm.models.gptneox.model.GPTNeoXModel", layer: "tensorrt_llm.models.gptneox.model.GPTNeoXDecoderLayer" };
    expect(registers(neox.layer, ["post_attention_layernorm", "weight"])).toBe(true);
    expect(registers(neox.layer, ["post_layernorm", "weight"])).toBe(false);
    expect(registers(neox.layer, ["attention", "qkv", "bias"])).toBe(true);
    expect(registers(neox.model, ["ln_f", "bias"])).toBe(true);
    expect(registers(TREES.gemma!.layer, ["mlp", "gate", "weight"])).toBe(true);
    expect(registers(TREES.phi3!.layer, ["mlp", "gate", "weight"])).toBe(false);
  });
});
