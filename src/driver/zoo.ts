// The model zoo: the definitions in models/ that Kiln ships, by name, and how a command finds the one to use.
// `kiln run|compile|inspect|plan|graph` take a model file, a zoo name (`kiln run qwen2 --hf DIR`), or nothing, and
// then pick the zoo definition whose `architectures` holds config.json's `architectures[0]`. The architectures come
// from the definitions themselves (defineModel's `architectures`), so the list cannot drift from the files.
// Invariant: a spec that names an existing file is always loaded as a file, even if it equals a zoo name.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { ConfigError, readHFConfigJson } from "../weights/hf-config.ts";
import { importModelFile, loadModelFile, ModelFileError } from "./load-model-file.ts";

/** Zoo entries in the order `kiln models` lists them. */
export const ZOO_NAMES = [
  "llama",
  "mistral",
  "qwen2",
  "qwen3",
  "gemma",
  "gemma2",
  "gpt_neox",
  "starcoder2",
  "phi3",
  "falcon",
  "gpt2",
  "gptj",
  "mixtral",
  "qwen2_moe",
  "qwen3_moe",
] as const;

export type ZooName = (typeof ZOO_NAMES)[number];

/** The TensorRT-LLM 1.2.1 architecture (MODEL_MAP key -> class) the engine target emits for each zoo family on a
 *  standard checkpoint; test/zoo/compile.test.ts and test/compile check that compiling gives exactly this. */
export const ZOO_TRTLLM_CLASS: Record<ZooName, { architecture: string; class: string }> = {
  llama: { architecture: "LlamaForCausalLM", class: "LLaMAForCausalLM" },
  mistral: { architecture: "LlamaForCausalLM", class: "LLaMAForCausalLM" },
  qwen2: { architecture: "Qwen2ForCausalLM", class: "QWenForCausalLM" },
  // QK-norm: custom model.py with Attention(qk_layernorm=True) (codegen/trtllm-engine/builtin.ts says why).
  qwen3: { architecture: "KilnQwen3ForCausalLM", class: "custom model.py" },
  // GemmaForCausalLM: its checkpoint stores the (1 + w) norm scales, its model applies the sqrt(hidden) embedding scale.
  gemma: { architecture: "GemmaForCausalLM", class: "GemmaForCausalLM" },
  // GemmaForCausalLM's Gemma 2 form (architecture Gemma2ForCausalLM): inter_layernorms, max_attn_value, the
  // Gemma2ConfigGroup keys for the final cap; the alternating windows at run time.
  gemma2: { architecture: "Gemma2ForCausalLM", class: "GemmaForCausalLM" },
  // HF GPT-NeoX's exact GELU: 1.2.1's GPTNeoXForCausalLM computes ACT2FN's tanh GELU (and fixes the MLP at 4 x
  // hidden, parallel residual only), so custom model.py; a tanh-GELU, 4x, parallel config gets the built-in class.
  gpt_neox: { architecture: "KilnGptNeoxForCausalLM", class: "custom model.py" },
  // 1.2.1 builds StarCoder2 with GPTForCausalLM, gpt_variant starcoder2.
  starcoder2: { architecture: "GPTForCausalLM", class: "GPTForCausalLM" },
  // Phi3ForCausalLM (partial rotary as rotary_pct, gate_up as one swiglu fc); a full-rotary Phi-3 has LLaMA's
  // structure and compiles for the built-in LLaMA class; with --pp > 1 custom model.py (Phi3Model has no stages).
  phi3: { architecture: "Phi3ForCausalLM", class: "Phi3ForCausalLM" },
  // Falcon 7B style (parallel block, multi-query, exact GELU): custom model.py; 1.2.1's FalconForCausalLM fixes the
  // tanh GELU (FalconConfig's hidden_act 'gelu'), so HF Falcon cannot use it (`kiln inspect` says so).
  falcon: { architecture: "KilnFalconForCausalLM", class: "custom model.py" },
  gpt2: { architecture: "GPTForCausalLM", class: "GPTForCausalLM" },
  gptj: { architecture: "GPTJForCausalLM", class: "GPTJForCausalLM" },
  // Issue 14: the built-in classes with their MoE config (1.2.1 MODEL_MAP: MixtralForCausalLM -> LLaMAForCausalLM,
  // Qwen2MoeForCausalLM -> QWenForCausalLM); the engine lowering of `moe` is issue 14 part B.
  mixtral: { architecture: "MixtralForCausalLM", class: "LLaMAForCausalLM" },
  qwen2_moe: { architecture: "Qwen2MoeForCausalLM", class: "QWenForCausalLM" },
  // QK-norm like qwen3: custom model.py (with TensorRT-LLM's MOE layer, part B).
  qwen3_moe: { architecture: "KilnQwen3MoeForCausalLM", class: "custom model.py" },
};

/** Absolute path of a zoo model file (models/<name>.ts in this package). */
export const zooFile = (name: ZooName): string => fileURLToPath(new URL(`../../models/${name}.ts`, import.meta.url));

export interface ZooEntry {
  readonly name: ZooName;
  readonly file: string;
  readonly def: ModelDefinition;
}

/** Every zoo definition, imported (zoo files are type-checked with the package, not again at load). */
export async function loadZoo(): Promise<ZooEntry[]> {
  return Promise.all(ZOO_NAMES.map(async (name) => ({ name, file: zooFile(name), def: await importModelFile(zooFile(name)) })));
}

const isZooName = (s: string): s is ZooName => (ZOO_NAMES as readonly string[]).includes(s);

/** The zoo definition that reads a config.json's `architectures`; a one-line error listing the zoo otherwise. */
export async function pickFromConfig(config: unknown, where: string): Promise<ZooEntry> {
  const archs = (config as { architectures?: unknown })?.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== "string")
    throw new ConfigError(`${where}: no 'architectures' list, so no zoo model can be picked; pass a model file or a zoo name (${ZOO_NAMES.join(", ")})`);
  const zoo = await loadZoo();
  const hit = zoo.find((z) => archs.some((a) => z.def.architectures.includes(a as string)));
  if (hit) return hit;
  const supported = zoo.flatMap((z) => z.def.architectures.map((a) => `${a} (${z.name})`));
  throw new ModelFileError(`${where}: architecture ${archs.join(", ")} is not in the zoo; supported: ${supported.join(", ")}; or pass a model file`);
}

export interface ModelChoice {
  readonly def: ModelDefinition;
  /** What to call the model in messages: the file given, or models/<name>.ts. */
  readonly file: string;
  readonly zoo?: ZooName;
}

/** Where the HF config comes from for picking: --config FILE or --hf DIR. */
export interface ConfigSource {
  readonly hf?: string | undefined;
  readonly config?: string | undefined;
}

function readConfigFor(src: ConfigSource): { json: unknown; where: string } {
  if (src.config) {
    let text: string;
    try {
      text = readFileSync(src.config, "utf8");
    } catch {
      throw new ConfigError(`${src.config}: cannot read the Hugging Face config`);
    }
    try {
      return { json: JSON.parse(text), where: src.config };
    } catch (e) {
      throw new ConfigError(`${src.config}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (src.hf) return { json: readHFConfigJson(src.hf), where: `${src.hf.replace(/\/$/, "")}/config.json` };
  throw new ModelFileError("no model given: pass a model file, a zoo name (see 'kiln models'), or --hf DIR to pick from its config.json");
}

/** Resolves a command's model argument: a file, a zoo name, or (none) the zoo entry config.json asks for. */
export async function chooseModel(spec: string | undefined, src: ConfigSource, opts: { typecheck?: boolean } = {}): Promise<ModelChoice> {
  if (spec !== undefined && (existsSync(spec) || !isZooName(spec))) return { def: await loadModelFile(spec, opts), file: spec };
  if (spec !== undefined && isZooName(spec)) return { def: await importModelFile(zooFile(spec)), file: `models/${spec}.ts`, zoo: spec };
  const { json, where } = readConfigFor(src);
  const hit = await pickFromConfig(json, where);
  return { def: hit.def, file: `models/${hit.name}.ts`, zoo: hit.name };
}
