// `kiln compile --target trtllm-torch --lora A,B`: what TensorRT-LLM 1.2.1's PyTorch backend needs to serve the
// adapters per request. Sources read (path @ commit):
//   - tensorrt_llm/lora_manager.py @ 30e6fb55 (LoraManager.load_from_hf, the loader behind LoRARequest): keys match
//     `<prefix>.<layer>.<parent>.<module>.lora_{A,B}.weight` (HF_LORA_PATTERN), the module name maps to a TensorRT-LLM
//     module through the inverse of LoraConfig.trtllm_modules_to_hf_modules; every module's B is multiplied by
//     lora_alpha / rank (or / sqrt(rank) with use_rslora), with the adapter's ONE global lora_alpha (rank_pattern /
//     alpha_pattern are not read). Older versions take the rank from adapter_config "r", newer ones from A's rows.
//   - tensorrt_llm/_torch/pyexecutor/_util.py (create_py_executor, as stored): with one lora_dir the target modules
//     may be inferred from it; with several, lora_target_modules must be given, and trtllm_modules_to_hf_modules
//     defaults to LLaMA's names (mlp_h_to_4h = gate_proj, mlp_gate = up_proj), which a plain MLP's up_proj breaks.
//   - tensorrt_llm/lora_helper.py @ 585c7565: LoraConfig(lora_dir, max_lora_rank, lora_target_modules,
//     trtllm_modules_to_hf_modules, max_loras, max_cpu_loras); tensorrt_llm/executor/request.py @ 4ce835a5:
//     LoRARequest(lora_name, lora_int_id, lora_path); examples/llm-api/llm_multilora.py @ f00d21a3: one LLM with
//     lora_config, generate(prompts, lora_request=[None | LoRARequest, ...]) chooses the adapter per request.
// So each adapter is rewritten as a PEFT directory for the generated model's own module names
// (model.layers.N.self_attn.q_proj, ..., mlp.gate_proj / up_proj / down_proj), from the same rows as the engine's
// runtime LoRA (codegen/common/lora-runtime.ts: A [r, in], B [out, r] with the adapter's per-module scale folded in;
// GPT-2's fused c_attn becomes q/k/v modules sharing A). Every module is zero-padded to the adapter's largest rank R
// and the config says r = lora_alpha = R, so both loader versions scale by exactly 1 and PEFT would too.
// LoraLayer hands lora_grouped_gemm its whole output-size list [q, kv, kv] positionally for the modules present
// (_torch/peft/lora/layer.py @ 98277545), so k / v LoRA without q would get q's size: where q and kv sizes differ
// (grouped-query attention), a layer with k or v rows and no q row gets an all-zero q row.
// Invariants: output is deterministic; names and paths from user input reach Python only through pyString.

import { basename } from "node:path";
import { LoraError } from "../../src/lora/adapter.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import {
  LAYER_MODULES,
  LORA_MODULE_IDS,
  type LoraModuleName,
  loraTargetModules,
  type RuntimeLoraAdapter,
  type RuntimeLoraRow,
  runtimeLoraRows,
} from "../common/lora-runtime.ts";
import { pyInt, pyString } from "../python/identifiers.ts";
import { PyWriter } from "../python/writer.ts";
import { ATTENTION_NAMES, MLP_ROLES, torchPath } from "./checkpoint-names.ts";

export interface TorchLoraTensor {
  readonly name: string;
  readonly shape: number[];
  readonly data: Float32Array;
}

export interface TorchLoraEmission {
  /** Text files: lora/<n>/adapter_config.json, lora/adapters.json, lora_example.py. */
  readonly files: Readonly<Record<string, string>>;
  /** lora/<n>/adapter_model.safetensors -> its float32 tensors. */
  readonly tensors: Readonly<Record<string, readonly TorchLoraTensor[]>>;
  readonly adapters: readonly { readonly name: string; readonly id: number; readonly path: string; readonly source: string }[];
  readonly loraConfig: TorchLoraConfig;
}

export interface TorchLoraConfig {
  readonly max_lora_rank: number;
  readonly lora_target_modules: readonly LoraModuleName[];
  readonly trtllm_modules_to_hf_modules: Readonly<Record<string, string>>;
  readonly max_loras: number;
  readonly max_cpu_loras: number;
}

/** TensorRT-LLM module -> the generated model's module name, for this model's MLP kind. */
export function trtllmToHfModules(mlpOp: string | undefined): Record<string, string> {
  const map: Record<string, string> = {
    attn_q: ATTENTION_NAMES.qkv[0],
    attn_k: ATTENTION_NAMES.qkv[1],
    attn_v: ATTENTION_NAMES.qkv[2],
    attn_dense: ATTENTION_NAMES.dense,
  };
  for (const [role, name] of (mlpOp && MLP_ROLES[mlpOp]) || []) {
    const module = LAYER_MODULES[`mlp.${role}`]?.[0];
    if (module) map[module] = name;
  }
  return map;
}

/** The generated model's module path (without `.weight`) a row adds to. */
function modulePath(row: RuntimeLoraRow, hfNames: Readonly<Record<string, string>>): string {
  const kind = Object.keys(LAYER_MODULES).find((k) => LAYER_MODULES[k]!.includes(row.module))!;
  const parent = kind.split(".")[0]!;
  return `${torchPath(`transformer.layers.${row.layer}.${parent}`)}.${hfNames[row.module]}`;
}

/** A [r, in] and B [out, r] zero-padded to rank R. */
function padRank(row: RuntimeLoraRow, R: number): { A: TorchLoraTensor["data"]; B: TorchLoraTensor["data"]; inDim: number; outDim: number } {
  const [r, inDim] = row.A.shape as [number, number];
  const outDim = row.B.shape[0]!;
  const A = new Float32Array(R * inDim);
  A.set(row.A.data.subarray(0, r * inDim));
  const B = new Float32Array(outDim * R);
  for (let o = 0; o < outDim; o++) for (let k = 0; k < r; k++) B[o * R + k] = row.B.data[o * r + k]!;
  return { A, B, inDim, outDim };
}

/** Distinct request names from the adapter directories' base names (a name already taken gets -2, -3, ...). */
export function adapterNames(dirs: readonly string[]): string[] {
  const taken = new Set<string>();
  return dirs.map((d) => {
    const base = basename(d.replace(/[\\/]+$/, "")) || "adapter";
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    return name;
  });
}

export interface TorchLoraModel {
  readonly lowered: LoweredModel;
  readonly tp: number;
  readonly kvHeads: number;
  /** The importable package (kiln_<name>). */
  readonly pkg: string;
  /** LLM(...) keyword arguments for the mapping, e.g. `tensor_parallel_size=2`. */
  readonly mapArgs: readonly string[];
}

export function emitTorchLora(adapters: readonly RuntimeLoraAdapter[], m: TorchLoraModel): TorchLoraEmission {
  const rowsPer = adapters.map((a) => runtimeLoraRows(a.adapter, a.bound, m.lowered.weights));
  // The PEFT cache splits attn_k / attn_v rows across ranks as it does for the engine (same C++ LoraCache), so k/v
  // LoRA cannot serve ranks that hold copies of one KV head.
  rowsPer.forEach((rows, i) => {
    const kv = rows.find((r) => r.module === "attn_k" || r.module === "attn_v");
    if (kv && m.kvHeads < m.tp)
      throw new LoraError(
        `${adapters[i]!.adapter.dir}: LoRA on '${kv.hfModule}' with ${m.kvHeads} KV heads at tp ${m.tp}: TensorRT-LLM's runtime LoRA splits k/v across ranks and cannot take replicated KV heads (use --lora-merge, or tp <= ${m.kvHeads})`,
      );
  });
  const attn = m.lowered.graph.nodes.find((n) => n.op === "trtllm.attention")?.attrs;
  if (attn && attn.heads !== attn.kvHeads) rowsPer.forEach((rows, i) => (rowsPer[i] = withZeroQ(rows, (attn.heads as number) * (attn.headDim as number))));
  const mlpOp = m.lowered.graph.nodes.find((n) => n.op === "trtllm.gated_mlp" || n.op === "trtllm.mlp")?.op;
  const hfNames = trtllmToHfModules(mlpOp);
  const modules = loraTargetModules(rowsPer);
  const names = adapterNames(adapters.map((a) => a.adapter.dir));
  const files: Record<string, string> = {};
  const tensors: Record<string, TorchLoraTensor[]> = {};
  const ranks = rowsPer.map((rows) => Math.max(...rows.map((r) => r.A.shape[0]!)));
  rowsPer.forEach((rows, i) => {
    const R = ranks[i]!;
    const dir = `lora/${i + 1}`;
    const list: TorchLoraTensor[] = [];
    for (const row of rows) {
      const path = modulePath(row, hfNames);
      const { A, B, inDim, outDim } = padRank(row, R);
      list.push({ name: `base_model.model.${path}.lora_A.weight`, shape: [R, inDim], data: A });
      list.push({ name: `base_model.model.${path}.lora_B.weight`, shape: [outDim, R], data: B });
    }
    tensors[`${dir}/adapter_model.safetensors`] = list;
    const config = {
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      base_model_name_or_path: null,
      r: R,
      lora_alpha: R,
      use_rslora: false,
      target_modules: [...new Set(rows.map((r) => hfNames[r.module]!))].sort(),
      fan_in_fan_out: false,
      bias: "none",
      lora_dropout: 0,
      inference_mode: true,
    };
    files[`${dir}/adapter_config.json`] = `${JSON.stringify(config, null, 2)}\n`;
  });
  const loraConfig: TorchLoraConfig = {
    max_lora_rank: Math.max(...ranks),
    lora_target_modules: modules,
    trtllm_modules_to_hf_modules: Object.fromEntries(modules.map((mod) => [mod, hfNames[mod] ?? fail(`no module of the generated model takes ${mod}`)])),
    max_loras: adapters.length,
    max_cpu_loras: adapters.length,
  };
  const list = adapters.map((a, i) => ({ name: names[i]!, id: i + 1, path: `lora/${i + 1}`, source: a.adapter.dir }));
  files["lora/adapters.json"] = `${JSON.stringify(
    {
      format: "kiln.lora-torch/1",
      lora_config: loraConfig,
      adapters: list.map((a, i) => ({ lora_name: a.name, lora_int_id: a.id, lora_path: a.path, source: a.source, rank: ranks[i] })),
    },
    null,
    2,
  )}\n`;
  files["lora_example.py"] = emitExample(m, loraConfig, list);
  return { files, tensors, adapters: list, loraConfig };
}

/** Rows plus an all-zero attn_q row for each layer that has attn_k / attn_v rows but none for attn_q. */
function withZeroQ(rows: RuntimeLoraRow[], qSize: number): RuntimeLoraRow[] {
  const out = [...rows];
  for (const layer of new Set(rows.map((r) => r.layer))) {
    const here = rows.filter((r) => r.layer === layer);
    const kv = here.find((r) => r.module === "attn_k" || r.module === "attn_v");
    if (!kv || here.some((r) => r.module === "attn_q")) continue;
    const [r, inDim] = kv.A.shape as [number, number];
    out.push({
      module: "attn_q",
      layer,
      hfModule: kv.hfModule,
      A: { shape: [r, inDim], data: new Float32Array(r * inDim) },
      B: { shape: [qSize, r], data: new Float32Array(qSize * r) },
    });
  }
  return out.sort((x, y) => x.layer - y.layer || LORA_MODULE_IDS[x.module] - LORA_MODULE_IDS[y.module]);
}

function fail(message: string): never {
  throw new LoraError(message);
}

/** lora_example.py: one LLM with the LoraConfig, one request per adapter plus one without, in one generate call. */
function emitExample(m: TorchLoraModel, c: TorchLoraConfig, adapters: TorchLoraEmission["adapters"]): string {
  const w = new PyWriter();
  w.docstring([
    "Serve this checkpoint with its LoRA adapters on TensorRT-LLM 1.2.1's",
    "PyTorch backend (generated by Kiln). Run from anywhere, on a GPU machine:",
    "",
    `    PYTHONPATH=<this directory> python3 <this directory>/lora_example.py`,
    "",
    "The package must be importable in every rank (hence PYTHONPATH). Each",
    "request names its adapter with a LoRARequest; None runs the base model.",
  ]);
  w.line("import os");
  w.line();
  w.line(`import ${m.pkg}  # noqa: F401  (registers the model class)`);
  w.line("from tensorrt_llm import LLM");
  w.line("from tensorrt_llm.executor.request import LoRARequest");
  w.line("from tensorrt_llm.lora_helper import LoraConfig");
  w.blank(2);
  w.line("HERE = os.path.dirname(os.path.abspath(__file__))");
  w.comment("(lora_name, lora_int_id, adapter directory), in the order kiln compile --lora got them");
  w.line("ADAPTERS = [");
  for (const a of adapters) w.line(`    (${pyString(a.name)}, ${pyInt(a.id)}, os.path.join(HERE, "lora", ${pyString(String(a.id))})),`);
  w.line("]");
  w.comment("The TensorRT-LLM modules the adapters touch, and the generated model's names for them");
  w.line("LORA_TARGET_MODULES = [");
  for (const mod of c.lora_target_modules) w.line(`    ${pyString(mod)},`);
  w.line("]");
  w.line("TRTLLM_MODULES_TO_HF_MODULES = {");
  for (const [k, v] of Object.entries(c.trtllm_modules_to_hf_modules)) w.line(`    ${pyString(k)}: ${pyString(v)},`);
  w.line("}");
  w.blank(2);
  w.block("def main():", () => {
    w.comment(
      "One lora_dir lets the backend check the adapter format at start-up (as upstream's llm_multilora.py does); the others are loaded on their first request.",
    );
    w.call("lora_config = LoraConfig", [
      "lora_dir=[ADAPTERS[0][2]]",
      `max_lora_rank=${pyInt(c.max_lora_rank)}`,
      "lora_target_modules=LORA_TARGET_MODULES",
      "trtllm_modules_to_hf_modules=TRTLLM_MODULES_TO_HF_MODULES",
      `max_loras=${pyInt(c.max_loras)}`,
      `max_cpu_loras=${pyInt(c.max_cpu_loras)}`,
    ]);
    w.comment("No tokenizer files in this directory? Add tokenizer=<the HF model directory>.");
    w.call("llm = LLM", ["model=HERE", "lora_config=lora_config", ...m.mapArgs]);
    w.line("requests = [None] + [LoRARequest(n, i, p) for n, i, p in ADAPTERS]");
    w.line('prompts = ["Hello"] * len(requests)');
    w.call("outputs = llm.generate", ["prompts", "lora_request=requests"]);
    w.block("for request, output in zip(requests, outputs):", () => {
      w.line('name = request.lora_name if request else "(base model)"');
      w.line("print(name, repr(output.outputs[0].text))");
    });
  });
  w.blank(2);
  w.block('if __name__ == "__main__":', () => w.line("main()"));
  return w.toString();
}
