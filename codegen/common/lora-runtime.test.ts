// Runtime LoRA for the engine target: `kiln compile --lora A,B` writes each adapter in the runtime format
// (hf_lora_convert.py's lora_weights / lora_config .npy), and those tensors, split per tp rank as the LoRA cache
// does and applied per request as the LoRA plugin does (lora-plugin-sim.ts), reproduce PEFT's logits at tp 1 and 2
// on the base rank files. Two different adapters (and no adapter) in one batch each give their own logits. The
// build config carries the plugin and lora_config; planted bugs (scale dropped, B rows not split) are caught.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import llama from "../../models/llama.ts";
import { adapterDir, baseDir, readLoraGolden } from "../../test/lora-fixtures.ts";
import { readGolden } from "../../test/golden.ts";
import { kiln } from "../../test/cli/kiln.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { i32, relL2 } from "../../src/interp/tensor.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { simulateTensorParallel } from "../../src/lower/simulate.ts";
import { compileModel } from "../../src/driver/compile.ts";
import { loadRankWeights, simulateCheckpoint } from "../../src/driver/simulate-checkpoint.ts";
import { decodeNpy } from "../../src/weights/npy.ts";
import { loraModelDims, loraPluginHooks, type PluginRow, readRuntimeLora } from "../trtllm-engine/lora-plugin-sim.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-lora-runtime-"));
const MODELS: Record<string, ModelDefinition<any>> = { gpt2, llama };

/** Compiles the base model with runtime adapters; returns what the simulator needs. */
async function compileWithAdapters(model: string, fixture: string, adapters: readonly string[], tp: number) {
  const out = join(tmp, `${fixture}-${adapters.join("+")}-tp${tp}`);
  const loraRuntime = await Promise.all(adapters.map((a) => readAdapter(adapterDir(fixture, a))));
  const r = await compileModel(MODELS[model]!, { hfDir: baseDir(fixture), outDir: out, mapping: { tp, pp: 1 }, loraRuntime });
  const dims = loraModelDims(JSON.parse(readFileSync(join(out, "config.json"), "utf8")));
  const tasks = new Map<number, PluginRow[]>();
  for (let t = 1; t <= adapters.length; t++) tasks.set(t, await readRuntimeLora(join(out, "lora", String(t)), dims));
  const { weights } = await loadRankWeights(out, r.lowered.graph);
  return { out, r, dims, tasks, weights };
}

/** Logits [b][T*vocab] of one batch of equal-length prompts, request b using LoRA task requestTasks[b]. */
function batchLogits(
  c: Awaited<ReturnType<typeof compileWithAdapters>>,
  ids: readonly number[],
  requestTasks: number[],
  tp: number,
  tasks = c.tasks,
): Float32Array[] {
  const B = requestTasks.length;
  const T = ids.length;
  const inputs = new Map([
    [
      "input_ids",
      i32(
        [B, T],
        Int32Array.from({ length: B * T }, (_, i) => ids[i % T]!),
      ),
    ],
    [
      "position_ids",
      i32(
        [B, T],
        Int32Array.from({ length: B * T }, (_, i) => i % T),
      ),
    ],
  ]);
  const logits = simulateTensorParallel(c.r.lowered.graph, inputs, c.weights, tp, loraPluginHooks(tasks, requestTasks, c.dims, tp)).get("logits")!;
  const V = logits.shape.at(-1)!;
  return requestTasks.map((_, b) => (logits.data as Float32Array).slice(b * T * V, (b + 1) * T * V));
}

describe("runtime LoRA: converted tensors applied as the LoRA plugin does reproduce PEFT", () => {
  for (const [model, fixture, adapters] of [
    ["llama", "llama", ["attn_qv", "all_rslora"]],
    ["llama", "llama3_gqa", ["all_rslora"]],
    ["gpt2", "gpt2", ["attn_qkv", "all_rslora"]],
  ] as const)
    for (const tp of [1, 2])
      it(`${fixture} [${adapters.join(", ")}] tp=${tp}: each request in one batch gets its own adapter's logits`, async () => {
        const c = await compileWithAdapters(model, fixture, adapters, tp);
        const goldens = await Promise.all(adapters.map((a) => readLoraGolden(fixture, a)));
        const base = await readGolden(baseDir(fixture));
        for (let p = 0; p < base.length; p++) {
          const tasks = [...adapters.map((_, i) => i + 1), -1];
          const got = batchLogits(c, base[p]!.ids, tasks, tp);
          adapters.forEach((_, i) => expect(relL2(got[i]!, goldens[i]![p]!.logits)).toBeLessThanOrEqual(1e-5));
          expect(relL2(got.at(-1)!, base[p]!.logits)).toBeLessThanOrEqual(1e-5);
        }
      });

  it("writes hf_lora_convert.py's layout and the build settings", async () => {
    const c = await compileWithAdapters("llama", "llama", ["attn_qv", "all_rslora"], 2);
    const cfg = decodeNpy(readFileSync(join(c.out, "lora/1/model.lora_config.npy")));
    expect(cfg.shape).toEqual([1, 4, 3]);
    // layer 0 attn_q (id 1) and attn_v (id 3), then layer 1, rank 4
    expect([...cfg.data]).toEqual([1, 0, 4, 3, 0, 4, 1, 1, 4, 3, 1, 4]);
    const w = decodeNpy(readFileSync(join(c.out, "lora/1/model.lora_weights.npy")));
    expect(w.shape).toEqual([1, 4, 4 * (64 + 64)]);
    const a = await readAdapter(adapterDir("llama", "attn_qv"));
    const q0 = a.modules.find((m) => m.module === "model.layers.0.self_attn.q_proj")!;
    expect([...w.data.slice(0, 256)]).toEqual([...q0.A.data]);
    expect(w.data[256]).toBeCloseTo(q0.B.data[0]! * 2, 6); // B scaled by alpha / r = 8 / 4
    const build = JSON.parse(readFileSync(join(c.out, "build_config.json"), "utf8"));
    expect(build.plugin_config.lora_plugin).toBe("float32");
    expect(build.lora_config).toEqual({
      lora_ckpt_source: "hf",
      lora_dir: [],
      max_lora_rank: 8,
      lora_target_modules: ["attn_q", "attn_k", "attn_v", "attn_dense", "mlp_h_to_4h", "mlp_4h_to_h", "mlp_gate"],
    });
    const manifest = JSON.parse(readFileSync(join(c.out, "lora/adapters.json"), "utf8"));
    expect(manifest.adapters.map((t: { task_id: number }) => t.task_id)).toEqual([1, 2]);
    const rank2 = decodeNpy(readFileSync(join(c.out, "lora/2/model.lora_config.npy")));
    expect(rank2.shape).toEqual([1, 14, 3]);
  });

  it("catches planted bugs: the scale left out of B, and B's rows not split across tp ranks", async () => {
    const c = await compileWithAdapters("llama", "llama", ["all_rslora"], 2);
    const [g] = await readLoraGolden("llama", "all_rslora");
    const ids = g!.ids;
    const unscaled = new Map([[1, c.tasks.get(1)!.map((r) => ({ ...r, B: r.B.map((v) => v / 2) }))]]);
    expect(relL2(batchLogits(c, ids, [1], 2, unscaled)[0]!, g!.logits)).toBeGreaterThan(1e-3);
    // Every rank using rank 0's rows of B (as if the runtime did not split): wrong numbers.
    const hooks = loraPluginHooks(c.tasks, [1], c.dims, 2);
    const broken = { linearOutput: (m: string, x: any, y: any, _rank: number) => hooks.linearOutput!(m, x, y, 0) };
    const inputs = new Map([
      ["input_ids", i32([1, ids.length], Int32Array.from(ids))],
      ["position_ids", i32([1, ids.length], Int32Array.from(ids.map((_, i) => i)))],
    ]);
    const wrong = simulateTensorParallel(c.r.lowered.graph, inputs, c.weights, 2, broken).get("logits")!.data as Float32Array;
    expect(relL2(wrong, g!.logits)).toBeGreaterThan(1e-3);
  });

  it("refuses k/v LoRA when KV heads are replicated across ranks (tp > num_key_value_heads), naming the module", async () => {
    const a = await readAdapter(adapterDir("llama3_gqa", "all_rslora"));
    await expect(
      compileModel(llama, { hfDir: baseDir("llama3_gqa"), outDir: join(tmp, "gqa-tp4"), mapping: { tp: 4, pp: 1 }, loraRuntime: [a] }),
    ).rejects.toThrow(
      /all_rslora: LoRA on 'model\.layers\.0\.self_attn\.k_proj' with 2 KV heads at tp 4: TensorRT-LLM's runtime LoRA splits k\/v across ranks and cannot take replicated KV heads \(use --lora-merge, or tp <= 2\)$/,
    );
    const merged = await compileModel(llama, { hfDir: baseDir("llama3_gqa"), outDir: join(tmp, "gqa-tp4-merged"), mapping: { tp: 4, pp: 1 }, loraMerge: a });
    const [g] = await readLoraGolden("llama3_gqa", "all_rslora");
    const [logits] = await simulateCheckpoint(join(tmp, "gqa-tp4-merged"), merged.lowered.graph, [g!.ids]);
    expect(relL2(logits!, g!.logits)).toBeLessThanOrEqual(1e-5);
  });

  it("the CLI prints trtllm-build with the LoRA flags; bad combinations are one-line errors", async () => {
    const out = join(tmp, "cli");
    const r = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      out,
      "--lora",
      `${adapterDir("llama", "attn_qv")},${adapterDir("llama", "all_rslora")}`,
      "--json",
      "--no-typecheck",
    ]);
    expect(r.err).toBe("");
    const json = JSON.parse(r.out);
    expect(json.command).toMatch(
      /^trtllm-build --lora_plugin float32 --lora_target_modules attn_q attn_k attn_v attn_dense mlp_h_to_4h mlp_4h_to_h mlp_gate --max_lora_rank 8 --checkpoint_dir /,
    );
    expect(json.lora.tasks.map((t: { taskId: number }) => t.taskId)).toEqual([1, 2]);
    // trtllm-torch takes runtime adapters too (codegen/trtllm-torch/lora.test.ts has the details).
    const torch = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      join(tmp, "cli-torch"),
      "--target",
      "trtllm-torch",
      "--lora",
      adapterDir("llama", "attn_qv"),
      "--no-typecheck",
    ]);
    expect(torch.code).toBe(0);
    expect(torch.out).toContain(`python3 ${join(tmp, "cli-torch")}/lora_example.py`);
    const two = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      join(tmp, "cli-merge-two"),
      "--lora",
      `${adapterDir("llama", "attn_qv")},${adapterDir("llama", "all_rslora")}`,
      "--lora-merge",
      "--no-typecheck",
    ]);
    expect(two.code).not.toBe(0);
    expect(two.err).toMatch(/^kiln: --lora-merge folds one adapter into the weights, got 2 \(.*\)\n$/);
  });
});
