// `kiln graph`, `kiln plan` and `kiln inspect` end to end on every model in models/ (through its HF fixture), plus
// LLaMA-3 8B/70B from config.json alone; bad flags give one line and exit code 1.

import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kiln } from "./kiln.ts";
import { decodeOnnxModel } from "../../src/views/onnx-proto.ts";
import { ZOO_TRTLLM_CLASS, type ZooName } from "../../src/driver/zoo.ts";
import { ENGINE_REFUSED, FIXTURE_MODELS, FIXTURES, ZOO, ZOO_FIXTURES, ZOO_MOE_FIXTURES } from "../golden.ts";

/** Every model file with a fixture: the original HF fixtures and the zoo's. */
const ALL_FIXTURES = [...FIXTURE_MODELS.map((m) => ({ ...m, dir: FIXTURES })), ...[...ZOO_FIXTURES, ...ZOO_MOE_FIXTURES].map((m) => ({ ...m, dir: ZOO }))];

const tmp = mkdtempSync(join(tmpdir(), "kiln-views-"));
const CONFIGS = new URL("../fixtures/configs/", import.meta.url).pathname;

describe("graph, plan and inspect on every model in models/", () => {
  it("the fixtures cover every model file", () => {
    const files = readdirSync("models")
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .map((f) => f.replace(/\.ts$/, ""));
    expect(new Set(ALL_FIXTURES.map((m) => m.model))).toEqual(new Set(files));
  });

  for (const { fixture, model, dir } of ALL_FIXTURES)
    it(`${fixture} (models/${model}.ts)`, async () => {
      const common = [`models/${model}.ts`, "--hf", `${dir}${fixture}`, "--no-typecheck"];
      for (const stage of ["traced", "fused", "trtllm"])
        for (const format of ["onnx", "dot", "html", "text"]) {
          const out = join(tmp, `${fixture}-${stage}.${format}`);
          const r = await kiln(["graph", ...common, "--stage", stage, "--format", format, "--out", out]);
          expect(r.err).toBe("");
          expect(r.code).toBe(0);
          expect(r.out).toMatch(new RegExp(`^kiln: wrote .*${format}, ${stage} graph of '${model}': \\d+ nodes`));
          const bytes = readFileSync(out);
          const check: Record<string, () => void> = {
            onnx: () => expect(decodeOnnxModel(bytes).graph.output.map((o) => o.name)).toEqual(["logits"]),
            dot: () => expect(bytes.toString()).toMatch(/^digraph "[^"]+" \{\n[\s\S]*subgraph "cluster_/),
            html: () => expect(bytes.toString()).toMatch(/^<!doctype html>[\s\S]*<svg id="canvas"/),
            text: () => expect(bytes.toString()).toMatch(/^graph \w+ \{\n[\s\S]*output logits = %\d+\n\}\n?$/),
          };
          check[format]!();
        }
      const plan = await kiln(["plan", ...common, "--json"]);
      expect(plan.code).toBe(0);
      const p = JSON.parse(plan.out);
      expect(p.fits).toBe(true);
      expect(p.options.dtype).toBe("float32");
      expect(p.kvBytesPerTokenPerLayer).toBe(2 * p.dims.kvHeads * p.dims.headDim * 4);
      const inspect = await kiln(["inspect", ...common, "--json"]);
      expect(inspect.code).toBe(0);
      const r = JSON.parse(inspect.out);
      const builtin = ZOO_TRTLLM_CLASS[model as ZooName].class !== "custom model.py" && !ENGINE_REFUSED[fixture];
      expect(r.target.builtin).toBe(builtin);
      expect(r.ops.trtllm["trtllm.attention"]).toBe(r.ops.traced.attention);
      const text = await kiln(["inspect", ...common]);
      expect(text.out).toMatch(/^model \w+ \(\w+\): [\d,]+ parameters\nparameters per module:\n/);
      expect(text.out).toMatch(builtin ? /\ntarget: built-in \w+ForCausalLM\n {2}why: / : /\ntarget: custom /);
    });

  it("prints dot and text to stdout and folds repeated layers unless --expand", async () => {
    const args = ["graph", "models/llama.ts", "--hf", `${FIXTURES}llama3_gqa`, "--stage", "trtllm", "--no-typecheck"];
    const folded = await kiln([...args, "--format", "text"]);
    expect(folded.out).toContain("... transformer.layers.1 … transformer.layers.2: × 2 identical layers");
    const full = await kiln([...args, "--format", "text", "--expand"]);
    expect(full.out).not.toContain("...");
    expect(full.out.split("\n").length).toBeGreaterThan(folded.out.split("\n").length + 20);
    const dot = await kiln([...args, "--format", "dot"]);
    expect(dot.out).toContain('"block:transformer.layers.1"');
  });

  it("--with-weights embeds initializers", async () => {
    const out = join(tmp, "w.onnx");
    const r = await kiln(["graph", "models/gpt2.ts", "--hf", `${FIXTURES}gpt2`, "--format", "onnx", "--with-weights", "--out", out, "--no-typecheck"]);
    expect(r.code).toBe(0);
    const m = decodeOnnxModel(readFileSync(out));
    expect(m.graph.input.map((i) => i.name)).toEqual(["input_ids", "position_ids"]);
    expect(m.graph.initializer.some((t) => t.name === "layers.1.mlp.fc.weight")).toBe(true);
  });
});

describe("plan and inspect from config.json alone", () => {
  it("plans LLaMA-3 70B: does not fit one H100, suggests tp=2", async () => {
    const r = await kiln(["plan", "models/llama.ts", "--config", `${CONFIGS}llama3-70b.json`, "--no-typecheck"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("fits                    NO");
    expect(r.out).toContain("hint: the smallest tensor-parallel size that fits is --tp 2");
    const j = JSON.parse(
      (
        await kiln([
          "plan",
          "models/llama.ts",
          "--config",
          `${CONFIGS}llama3-70b.json`,
          "--tp",
          "4",
          "--gpu",
          "h200-141gb",
          "--quant",
          "fp8",
          "--kv-cache",
          "fp8",
          "--max-seq",
          "4096",
          "--max-batch",
          "64",
          "--json",
          "--no-typecheck",
        ])
      ).out,
    );
    expect(j.options).toMatchObject({ tp: 4, quant: "fp8", kvCache: "fp8", maxSeq: 4096, maxBatch: 64, dtype: "bfloat16" });
    expect(j.kvBytesPerTokenPerLayer).toBe(2 * 2 * 128);
    expect(j.fits).toBe(true);
  });

  it("inspects LLaMA-3 8B: 8,030,261,248 parameters, built-in LlamaForCausalLM", async () => {
    const r = await kiln(["inspect", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--no-typecheck"]);
    expect(r.out).toMatch(/^model llama \(LlamaForCausalLM\): 8,030,261,248 parameters\n/);
    expect(r.out).toContain("(layers: 32 identical layers; layers.0 shown, the other 31 folded)");
    expect(r.out).toMatch(/\n {2}trtllm\.attention\s+· +· +32\n/);
    expect(r.out).toContain("target: built-in LlamaForCausalLM");
  });

  const bad: [string, string[], RegExp][] = [
    ["no size source", ["plan", "models/llama.ts"], /^kiln: give --hf DIR \(a Hugging Face checkpoint\) or --config FILE/],
    ["both size sources", ["inspect", "models/llama.ts", "--hf", "a", "--config", "b"], /^kiln: give either --hf DIR or --config FILE, not both$/],
    [
      "an unknown GPU",
      ["plan", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--gpu", "tpu-v5"],
      /^kiln: --gpu: expected one of h100-80gb, h200-141gb, a100-80gb, l40s-48gb or a memory size/,
    ],
    [
      "an unknown quant",
      ["plan", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--quant", "int3"],
      /^kiln: --quant "int3" is not one of w8a16, w4a16, fp8$/,
    ],
    [
      "a tp that does not divide the heads",
      ["plan", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--tp", "3"],
      /^kiln: tp=3 does not divide the 32 query heads$/,
    ],
    [
      "an unknown stage",
      ["graph", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--stage", "engine", "--format", "text"],
      /^kiln: --stage: expected one of traced, fused, trtllm, got 'engine'$/,
    ],
    [
      "html without --out",
      ["graph", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--format", "html"],
      /^kiln: --format html writes a file: give --out FILE$/,
    ],
    [
      "weights without a checkpoint",
      ["graph", "models/llama.ts", "--config", `${CONFIGS}llama3-8b.json`, "--format", "onnx", "--with-weights", "--out", "x.onnx"],
      /^kiln: --with-weights needs the checkpoint/,
    ],
    [
      "a missing config file",
      ["inspect", "models/llama.ts", "--config", "/nonexistent.json"],
      /^kiln: \/nonexistent\.json: cannot read the config \(ENOENT\)$/,
    ],
  ];
  for (const [what, args, msg] of bad)
    it(`rejects ${what} with one line`, async () => {
      const r = await kiln([...args, "--no-typecheck"]);
      expect(r.code).toBe(1);
      expect(r.err.trim()).toMatch(msg);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    });
});
