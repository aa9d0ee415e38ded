// Triton repository with runtime LoRA: the tensorrt_llm model takes lora_task_id / lora_weights / lora_config as
// tensorrt_llm/config.pbtxt @ 2a9abd95 declares them (lora_weights in the engine's dtype), the ensemble exposes and
// maps them, the repository still passes its checks, repositories without LoRA are unchanged, and
// `kiln triton` on a checkpoint compiled with --lora writes lora_request.py, whose request body (run by Python) holds
// the adapter's .npy tensors.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { adapterDir, baseDir } from "../../test/lora-fixtures.ts";
import { kiln } from "../../test/cli/kiln.ts";
import { tritonConfigs } from "./configs.ts";
import { tritonRepoFiles } from "./repo.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-triton-lora-"));
const base = { repo: join(tmp, "r"), engineDir: "/srv/engines", tokenizerDir: "/srv/tok" };
const lora = { weightsDatatype: "TYPE_FP16" as const, adaptersDir: "/srv/ckpt/lora", taskIds: [1, 2] };

describe("Triton repository with runtime LoRA", () => {
  it("declares the LoRA inputs on tensorrt_llm and maps them through the ensemble", () => {
    const c = tritonConfigs({ ...base, lora });
    const inputs = Object.fromEntries(c.tensorrt_llm.input!.map((i) => [i.name, i]));
    expect(inputs.lora_task_id).toEqual({ name: "lora_task_id", data_type: "TYPE_UINT64", dims: [1], reshape: { shape: [] }, optional: true });
    expect(inputs.lora_weights).toEqual({ name: "lora_weights", data_type: "TYPE_FP16", dims: [-1, -1], allow_ragged_batch: true, optional: true });
    expect(inputs.lora_config).toEqual({ name: "lora_config", data_type: "TYPE_INT32", dims: [-1, 3], allow_ragged_batch: true, optional: true });
    const step = c.ensemble.ensemble_scheduling!.step!.find((s) => s.model_name === "tensorrt_llm")!;
    expect(step.input_map).toMatchObject({ lora_task_id: "lora_task_id", lora_weights: "lora_weights", lora_config: "lora_config" });
    expect(c.ensemble.input!.filter((i) => i.name.startsWith("lora_")).map((i) => [i.name, i.data_type, i.optional])).toEqual([
      ["lora_task_id", "TYPE_UINT64", true],
      ["lora_weights", "TYPE_FP16", true],
      ["lora_config", "TYPE_INT32", true],
    ]);
    const files = tritonRepoFiles({ ...base, lora });
    expect(files.get("lora_request.py")).toContain('LORA_DIR = "/srv/ckpt/lora"');
  });

  it("leaves a repository without LoRA as it was", () => {
    const c = tritonConfigs(base);
    expect(c.tensorrt_llm.input!.some((i) => i.name.startsWith("lora_"))).toBe(false);
    expect(tritonRepoFiles(base).has("lora_request.py")).toBe(false);
  });

  it("rejects a bad LoRA option with one line", () => {
    expect(() => tritonConfigs({ ...base, lora: { ...lora, taskIds: [0] } })).toThrow(/^triton option lora\.taskIds=\[0\]: must be positive integers$/);
  });

  it("kiln triton on a --lora checkpoint writes the LoRA inputs and an example request that carries the adapter", async () => {
    const ckpt = join(tmp, "ckpt");
    const c = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--out",
      ckpt,
      "--lora",
      `${adapterDir("llama", "attn_qv")},${adapterDir("llama", "all_rslora")}`,
      "--json",
      "--no-typecheck",
    ]);
    expect(c.err).toBe("");
    const repo = join(tmp, "repo");
    const t = await kiln(["triton", ckpt, "--engine-dir", "/srv/engines", "--tokenizer", "/srv/tok", "--repo", repo]);
    expect(t.err).toBe("");
    expect(t.out).toContain(`runtime LoRA: tasks 1, 2 from ${join(ckpt, "lora")}`);
    expect(readFileSync(join(repo, "tensorrt_llm/config.pbtxt"), "utf8")).toMatch(/name: "lora_weights"\n\s+data_type: TYPE_FP32/);
    const py = existsSync(".venv/bin/python") ? ".venv/bin/python" : "python3";
    const probe = `import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("r", sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
head, raw = m.request_body("hi", 4, 2, m.LORA_DIR)
h = json.loads(head)
print(json.dumps({"names": [i["name"] for i in h["inputs"]], "shape": h["inputs"][3]["shape"], "bytes": len(raw), "declared": h["inputs"][3]["parameters"]["binary_data_size"], "config": h["inputs"][4]["shape"]}))`;
    const r = spawnSync(py, ["-c", probe, join(repo, "lora_request.py")], { encoding: "utf8" });
    if (r.status !== 0 && /No module named 'numpy'/.test(r.stderr)) return; // the script needs numpy; CI's Python has it
    expect(r.stderr).toBe("");
    const got = JSON.parse(r.stdout);
    expect(got.names).toEqual(["text_input", "max_tokens", "lora_task_id", "lora_weights", "lora_config"]);
    expect(got.shape).toEqual([1, 14, 8 * (64 + 172)]);
    expect(got.bytes).toBe(14 * 8 * (64 + 172) * 4);
    expect(got.declared).toBe(got.bytes);
    expect(got.config).toEqual([1, 14, 3]);
  });
});
