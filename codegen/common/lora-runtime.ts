// Runtime LoRA for the TensorRT-LLM 1.2.1 engine: a PEFT adapter in the format TensorRT-LLM's runtime loads per
// request (Triton's lora_weights / lora_config inputs, the executor's LoraConfig), plus what the engine must be
// built with. Sources read (cite path @ commit):
//   - examples/hf_lora_convert.py @ 05316d33: one row per (module, layer); lora_weights row = A [r, in] flattened,
//     then B [out, r] flattened and multiplied by the scale, zero-padded to the longest row; lora_config row =
//     [module_id, layer_idx, adapter_size] int32; both saved with a leading batch dim of 1 as
//     model.lora_weights.npy / model.lora_config.npy. The weights are NOT split per tensor-parallel rank: the
//     runtime does that (cpp/tensorrt_llm/runtime/loraCache.cpp copyToPages @ c85e8726).
//   - tensorrt_llm/lora_manager.py @ 007e181b: LoraManager.LORA_MODULE_IDS; scale alpha/r or alpha/sqrt(r)
//     (use_rslora); attn_q/k/v must be all on or all off (get_missing_qkv_modules; lora_helper.py @ 037d4ba1).
//   - tensorrt_llm/builder.py: build() passes build_config.lora_config.lora_target_modules to prepare_inputs and
//     plugin_config.lora_plugin into the engine config; tensorrt_llm/commands/build.py @ 008b2b8d: trtllm-build
//     replaces build_config.lora_config with its own --lora_* flags when lora_plugin is set, so the printed command
//     repeats them.
// Kiln derives each row from the adapter bound through the model's weight map and the lowered model's weights:
// a LoRA module maps to the TensorRT-LLM Linear whose rank-file tensor reads its source, and the low-rank pair is
// pushed through that tensor's transforms (transpose swaps A and B, a row slice cuts B, a column slice cuts A), so a
// fused source (GPT-2's Conv1D c_attn) becomes the attn_q / attn_k / attn_v rows sharing one A. The scale is the
// adapter's own per module (rank_pattern / alpha_pattern honoured), folded into B as the converter does.

import { type LoraAdapter, LoraError } from "../../src/lora/adapter.ts";
import type { BoundModule } from "../../src/lora/bind.ts";
import { encodeNpy, type NpyDtype } from "../../src/weights/npy.ts";
import { type Dense, evalExpr, exprChildren, exprSources, src, transpose, type WeightExpr, type WeightMap } from "../../src/weights/weight-map.ts";

/** LoraManager.LORA_MODULE_IDS (tensorrt_llm/lora_manager.py @ 007e181b), the modules Kiln emits. */
export const LORA_MODULE_IDS = { attn_qkv: 0, attn_q: 1, attn_k: 2, attn_v: 3, attn_dense: 4, mlp_h_to_4h: 5, mlp_4h_to_h: 6, mlp_gate: 7 } as const;
export type LoraModuleName = keyof typeof LORA_MODULE_IDS;

/** The rank-file Linear (TensorRT-LLM module path suffix) each LoRA module adds to; qkv's are its concat parts. */
export const LAYER_MODULES: Readonly<Record<string, readonly LoraModuleName[]>> = {
  "attention.qkv": ["attn_q", "attn_k", "attn_v"],
  "attention.dense": ["attn_dense"],
  "mlp.fc": ["mlp_h_to_4h"],
  "mlp.gate": ["mlp_gate"],
  "mlp.proj": ["mlp_4h_to_h"],
};

/** Which side the runtime splits per tp rank (cpp/tensorrt_llm/runtime/loraModule.cpp createLoraModules @ 2a9abd95):
 * column-parallel layers split B's rows (out), row-parallel layers split A's columns (in). */
export const TP_SPLIT: Readonly<Record<LoraModuleName, "in" | "out">> = {
  attn_qkv: "out",
  attn_q: "out",
  attn_k: "out",
  attn_v: "out",
  attn_dense: "in",
  mlp_h_to_4h: "out",
  mlp_gate: "out",
  mlp_4h_to_h: "in",
};

export interface RuntimeLoraRow {
  readonly module: LoraModuleName;
  readonly layer: number;
  /** The HF module it came from, for messages. */
  readonly hfModule: string;
  /** [r, in] */
  readonly A: Dense;
  /** [out, r], scale folded in. */
  readonly B: Dense;
}

const LAYER_PARAM = /^transformer\.layers\.(\d+)\.(attention\.qkv|attention\.dense|mlp\.fc|mlp\.gate|mlp\.proj)\.weight$/;

/** The low-rank pair (B [out, r], A [r, in]) of the delta an expression over one adapted source receives. */
function pushPair(e: WeightExpr, m: BoundModule, where: string): { B: Dense; A: Dense } {
  if ("source" in e) {
    const B = { shape: m.B.shape, data: m.B.data.map((v) => v * m.scale) };
    // Conv1D keeps [in, out]: its delta (s B A)^T = A^T (s B)^T.
    return m.fanInFanOut ? { B: evalExpr(transpose(src("a")), () => m.A), A: evalExpr(transpose(src("b")), () => B) } : { B, A: m.A };
  }
  const kids = exprChildren(e);
  if (kids.length !== 1 || !(e.op === "transpose" || e.op === "slice"))
    throw new LoraError(`${where}: runtime LoRA cannot follow a '${e.op}' of '${m.source}' (use --lora-merge)`);
  const inner = pushPair(kids[0]!, m, where);
  if (e.op === "transpose") return { B: evalExpr(transpose(src("a")), () => inner.A), A: evalExpr(transpose(src("b")), () => inner.B) };
  if (e.op === "slice" && e.dim === 0) return { B: evalExpr({ ...e, x: src("b") }, () => inner.B), A: inner.A };
  if (e.op === "slice" && e.dim === 1) return { B: inner.B, A: evalExpr({ ...e, x: src("a") }, () => inner.A) };
  throw new LoraError(`${where}: runtime LoRA cannot follow ${JSON.stringify(e)} (use --lora-merge)`);
}

/** One row per (LoRA module, layer) the adapter touches, in layer then module order. */
export function runtimeLoraRows(adapter: LoraAdapter, bound: readonly BoundModule[], lowered: WeightMap): RuntimeLoraRow[] {
  const bySource = new Map(bound.map((m) => [m.source, m]));
  const used = new Set<string>();
  const rows: RuntimeLoraRow[] = [];
  for (const [param, expr] of Object.entries(lowered)) {
    const hit = exprSources(expr).filter((s) => bySource.has(s));
    if (!hit.length) continue;
    const m = LAYER_PARAM.exec(param);
    if (!m)
      throw new LoraError(
        `${adapter.dir}: '${bySource.get(hit[0]!)!.tensorA}' changes '${param}', which TensorRT-LLM's LoRA plugin does not cover (use --lora-merge)`,
      );
    const modules = LAYER_MODULES[m[2]!]!;
    const parts = modules.length > 1 ? ("op" in expr && expr.op === "concat" && expr.xs.length === modules.length ? expr.xs : undefined) : [expr];
    if (!parts) throw new LoraError(`${adapter.dir}: '${param}' is not a concat of q, k and v, so its LoRA rows cannot be told apart (use --lora-merge)`);
    parts.forEach((part, i) => {
      const reads = [...new Set(exprSources(part).filter((s) => bySource.has(s)))];
      if (!reads.length) return;
      if (reads.length > 1 || exprSources(part).some((s) => !bySource.has(s) && s !== reads[0]))
        throw new LoraError(`${adapter.dir}: '${param}' mixes several sources in one LoRA module (use --lora-merge)`);
      const b = bySource.get(reads[0]!)!;
      used.add(b.source);
      rows.push({ module: modules[i]!, layer: Number(m[1]), hfModule: b.module, ...pushPair(part, b, `${adapter.dir}: '${param}'`) });
    });
  }
  for (const b of bound)
    if (!used.has(b.source)) throw new LoraError(`${adapter.dir}: '${b.tensorA}' adapts '${b.module}', which no LoRA-capable TensorRT-LLM Linear reads`);
  return rows.sort((x, y) => x.layer - y.layer || LORA_MODULE_IDS[x.module] - LORA_MODULE_IDS[y.module]);
}

/** lora_target_modules for the build: the modules present, with attn_q/k/v completed as LoraManager requires. */
export function loraTargetModules(rowsPerAdapter: readonly (readonly RuntimeLoraRow[])[]): LoraModuleName[] {
  const set = new Set(rowsPerAdapter.flatMap((rows) => rows.map((r) => r.module)));
  if (["attn_q", "attn_k", "attn_v"].some((q) => set.has(q as LoraModuleName))) for (const q of ["attn_q", "attn_k", "attn_v"] as const) set.add(q);
  return [...set].sort((a, b) => LORA_MODULE_IDS[a] - LORA_MODULE_IDS[b]);
}

/** model.lora_weights.npy and model.lora_config.npy of one adapter, as hf_lora_convert.py lays them out. */
export function runtimeLoraFiles(rows: readonly RuntimeLoraRow[], dtype: string): { weights: Uint8Array; config: Uint8Array } {
  const npyDtype: NpyDtype | undefined = dtype === "float32" || dtype === "float16" ? dtype : undefined;
  if (!npyDtype) throw new LoraError(`runtime LoRA tensors in ${dtype}: .npy has no such type here; compile with --dtype float16 or use --lora-merge`);
  const flat = rows.map((r) => [...r.A.data, ...r.B.data]);
  const width = Math.max(...flat.map((f) => f.length));
  const data = new Float32Array(rows.length * width);
  flat.forEach((f, i) => data.set(f, i * width));
  const config = Int32Array.from(rows.flatMap((r) => [LORA_MODULE_IDS[r.module], r.layer, r.A.shape[0]!]));
  return {
    weights: encodeNpy({ dtype: npyDtype, shape: [1, rows.length, width], data }),
    config: encodeNpy({ dtype: "int32", shape: [1, rows.length, 3], data: config }),
  };
}

/** build_config.json with the LoRA plugin and lora_config (BuildConfig.from_dict reads LoraConfig's fields). */
export function withLoraBuildConfig(buildConfigJson: string, modules: readonly LoraModuleName[], maxRank: number, dtype: string): string {
  const b = JSON.parse(buildConfigJson);
  b.plugin_config = { ...b.plugin_config, lora_plugin: dtype };
  b.lora_config = { lora_ckpt_source: "hf", lora_dir: [], max_lora_rank: maxRank, lora_target_modules: [...modules] };
  return `${JSON.stringify(b, null, 2)}\n`;
}

/** The trtllm-build flags that carry the same settings (trtllm-build rebuilds lora_config from them). */
export const loraBuildFlags = (modules: readonly LoraModuleName[], maxRank: number, dtype: string): string =>
  `--lora_plugin ${dtype} --lora_target_modules ${modules.join(" ")} --max_lora_rank ${maxRank}`;

export interface RuntimeLoraAdapter {
  readonly adapter: LoraAdapter;
  readonly bound: readonly BoundModule[];
}

/** What `kiln compile --lora DIR[,DIR...]` adds to an engine emission: binary files, text files, patched usage. */
export interface RuntimeLoraEmission {
  /** Relative path -> bytes: lora/<task id>/model.lora_weights.npy and model.lora_config.npy. */
  readonly binaries: Readonly<Record<string, Uint8Array>>;
  /** Relative path -> text: the patched build_config.json and lora/adapters.json. */
  readonly files: Readonly<Record<string, string>>;
  readonly modules: readonly LoraModuleName[];
  readonly maxRank: number;
  /** Task id (1, 2, ...) per adapter, in --lora order. */
  readonly tasks: readonly { readonly taskId: number; readonly dir: string; readonly rows: number; readonly maxRank: number }[];
  /** The trtllm-build command line with the LoRA flags added. */
  readonly patchCommand: (command: string) => string;
}

/** The engine config fields that decide whether the runtime can size and split the rows (config.json). */
export interface RuntimeLoraModel {
  readonly dtype: string;
  readonly tp: number;
  readonly kvHeads: number;
}

export function emitRuntimeLora(
  adapters: readonly RuntimeLoraAdapter[],
  lowered: WeightMap,
  buildConfigJson: string,
  model: RuntimeLoraModel,
): RuntimeLoraEmission {
  const { dtype } = model;
  const rowsPer = adapters.map((a) => runtimeLoraRows(a.adapter, a.bound, lowered));
  // With fewer KV heads than ranks each rank holds a copy of a head, but the runtime sizes attn_k / attn_v as
  // local heads × tp and splits B's rows across ranks (loraModule.cpp, loraCache.cpp): the rows would not fit.
  const kv = rowsPer.flatMap((rows, i) => rows.filter((r) => r.module === "attn_k" || r.module === "attn_v").map((r) => [adapters[i]!, r] as const));
  if (kv.length && model.kvHeads < model.tp)
    throw new LoraError(
      `${kv[0]![0].adapter.dir}: LoRA on '${kv[0]![1].hfModule}' with ${model.kvHeads} KV heads at tp ${model.tp}: TensorRT-LLM's runtime LoRA splits k/v across ranks and cannot take replicated KV heads (use --lora-merge, or tp <= ${model.kvHeads})`,
    );
  const modules = loraTargetModules(rowsPer);
  const ranks = rowsPer.map((rows) => Math.max(...rows.map((r) => r.A.shape[0]!)));
  const maxRank = Math.max(...ranks);
  const binaries: Record<string, Uint8Array> = {};
  const tasks = adapters.map((a, i) => {
    const { weights, config } = runtimeLoraFiles(rowsPer[i]!, dtype);
    binaries[`lora/${i + 1}/model.lora_weights.npy`] = weights;
    binaries[`lora/${i + 1}/model.lora_config.npy`] = config;
    return { taskId: i + 1, dir: a.adapter.dir, rows: rowsPer[i]!.length, maxRank: ranks[i]! };
  });
  const manifest = {
    format: "kiln.lora-runtime/1",
    dtype,
    lora_target_modules: modules,
    max_lora_rank: maxRank,
    adapters: tasks.map((t) => ({
      task_id: t.taskId,
      source: t.dir,
      weights: `lora/${t.taskId}/model.lora_weights.npy`,
      config: `lora/${t.taskId}/model.lora_config.npy`,
      rows: t.rows,
      max_rank: t.maxRank,
    })),
  };
  const flags = loraBuildFlags(modules, maxRank, dtype);
  return {
    binaries,
    files: {
      "build_config.json": withLoraBuildConfig(buildConfigJson, modules, maxRank, dtype),
      "lora/adapters.json": `${JSON.stringify(manifest, null, 2)}\n`,
    },
    modules,
    maxRank,
    tasks,
    patchCommand: (command) => command.replace(/(^|\s)trtllm-build(?=\s)/, `$1trtllm-build ${flags}`),
  };
}
