// Picking a model from the zoo: `kiln models` lists every file in models/ with the architectures its definition
// reads; commands without a model file pick by config.json's `architectures`; a zoo name works in place of a file;
// an unknown architecture is a one-line error that lists the zoo; a model file still wins.

import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ZOO_NAMES, ZOO_TRTLLM_CLASS } from "../../src/driver/zoo.ts";
import { ENGINE_PENDING_MODELS, FIXTURES, ZOO } from "../golden.ts";
import { kiln } from "./kiln.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-zoo-cli-"));

describe("the model zoo on the command line", () => {
  it("kiln models lists every model file with its architectures and TensorRT-LLM class", async () => {
    const r = await kiln(["models", "--json"]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out).models as { name: string; architectures: string[]; trtllm: { class: string } }[];
    expect(rows.map((m) => m.name).sort()).toEqual(
      readdirSync("models")
        .filter((f) => f.endsWith(".ts"))
        .map((f) => f.replace(/\.ts$/, ""))
        .sort(),
    );
    expect(rows.find((m) => m.name === "qwen2")).toMatchObject({ architectures: ["Qwen2ForCausalLM"], trtllm: { class: "QWenForCausalLM" } });
    const text = await kiln(["models"]);
    expect(text.out).toMatch(/^name +HF architectures +TensorRT-LLM 1\.2\.1 class +file\n/);
    expect(text.out).toMatch(/\nmistral +MistralForCausalLM +LLaMAForCausalLM \(LlamaForCausalLM\) +models\/mistral\.ts\n/);
  });

  it("run without a model file picks the definition from config.json (same tokens as naming it)", async () => {
    const picked = await kiln(["run", "--hf", `${ZOO}qwen2`, "--ids", "7,300,12", "--max-new-tokens", "3", "--json"]);
    const named = await kiln(["run", "qwen2", "--hf", `${ZOO}qwen2`, "--ids", "7,300,12", "--max-new-tokens", "3", "--json"]);
    const file = await kiln(["run", "models/qwen2.ts", "--hf", `${ZOO}qwen2`, "--ids", "7,300,12", "--max-new-tokens", "3", "--json", "--no-typecheck"]);
    expect(picked.code).toBe(0);
    expect(JSON.parse(picked.out).model).toBe("qwen2");
    expect(JSON.parse(picked.out).tokens).toEqual(JSON.parse(named.out).tokens);
    expect(JSON.parse(picked.out).tokens).toEqual(JSON.parse(file.out).tokens);
  });

  it("config.json picks the mixture-of-experts models (Mixtral, Qwen2-MoE)", async () => {
    for (const [fixture, name] of [
      ["mixtral", "mixtral"],
      ["qwen2_moe_norm", "qwen2_moe"],
    ]) {
      const r = await kiln(["run", "--hf", `${ZOO}${fixture}`, "--ids", "7,300,12", "--max-new-tokens", "2", "--json"]);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out).model).toBe(name);
    }
  });

  it("compile, inspect, plan and graph pick from config.json too", async () => {
    const out = join(tmp, "gpt2");
    expect((await kiln(["compile", "--hf", `${FIXTURES}gpt2`, "--out", out, "--json"])).code).toBe(0);
    const inspect = await kiln(["inspect", "--hf", `${ZOO}mistral`, "--json"]);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.out).target.builtin).toBe(true);
    expect((await kiln(["plan", "--config", `${ZOO}mistral/config.json`, "--json"])).code).toBe(0);
    const graph = await kiln(["graph", "--hf", `${ZOO}qwen2`, "--format", "text", "--stage", "trtllm"]);
    expect(graph.code).toBe(0);
    expect(graph.out).toContain("window=5");
  });

  it("an architecture the zoo lacks is one line naming config.json and listing the zoo", async () => {
    const dir = join(tmp, "foo");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["FooForCausalLM"] }));
    const r = await kiln(["compile", "--hf", dir, "--out", join(tmp, "foo-out")]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain(`${dir}/config.json: architecture FooForCausalLM is not in the zoo; supported: `);
    for (const name of ZOO_NAMES) expect(r.err).toContain(`(${name})`);
  });

  it("no model and no config is one line saying what to give", async () => {
    const r = await kiln(["inspect"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("kiln: give --hf DIR (a Hugging Face checkpoint) or --config FILE (its config.json) to size the model\n");
  });

  it("the zoo's TensorRT-LLM classes are what compiling gives", async () => {
    const fixtures: Record<string, string> = {
      llama: `${FIXTURES}llama`,
      mistral: `${ZOO}mistral`,
      qwen2: `${ZOO}qwen2`,
      qwen3: `${ZOO}qwen3`,
      gemma: `${ZOO}gemma`,
      gemma2: `${ZOO}gemma2`,
      gpt_neox: `${ZOO}gpt_neox`,
      starcoder2: `${ZOO}starcoder2`,
      phi3: `${ZOO}phi3`,
      falcon: `${ZOO}falcon`,
      gpt2: `${FIXTURES}gpt2`,
      gptj: `${FIXTURES}gptj`,
      mixtral: `${ZOO}mixtral`,
      qwen2_moe: `${ZOO}qwen2_moe`,
      qwen3_moe: `${ZOO}qwen3_moe`,
    };
    for (const name of ZOO_NAMES) {
      const r = await kiln(["compile", name, "--hf", fixtures[name]!, "--out", join(tmp, `class-${name}`), "--json"]);
      if (ENGINE_PENDING_MODELS.includes(name)) {
        expect([r.code, r.err.trim().split("\n").length]).toEqual([1, 1]);
        expect(r.err).toMatch(/^kiln: moe in transformer\.layers\.0 at .*lowers to TensorRT-LLM's own MoE layer \(tensorrt_llm\.layers\.MOE\)/);
        continue;
      }
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out).architecture, name).toBe(ZOO_TRTLLM_CLASS[name].architecture);
    }
  });
});
