// The target registry and `kiln compile --target`: the three targets by name, trtllm-engine by default (its output
// is unchanged by the refactor: rank files + config.json, no Python package), unknown names refused with the list,
// and each target's files, side files and next steps reaching the command line.

import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileCommand, type CompileFlags } from "../cli/commands/compile.ts";
import { FIXTURES } from "../../test/golden.ts";
import { DEFAULT_TARGET, isTargetName, TARGET_NAMES, TARGETS } from "./targets.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-targets-"));
const flags = (out: string, extra: Partial<CompileFlags> = {}): CompileFlags => ({
  hf: `${FIXTURES}llama`,
  out,
  tp: "1",
  pp: "1",
  typecheck: false,
  json: true,
  ...extra,
});

async function run(out: string, extra: Partial<CompileFlags> = {}): Promise<any> {
  let text = "";
  await compileCommand("models/llama.ts", flags(out, extra), (s) => (text += s));
  return JSON.parse(text);
}

describe("target registry", () => {
  it("names three targets, each under its own name, trtllm-engine by default", () => {
    expect(TARGET_NAMES).toEqual(["trtllm-engine", "trtllm-torch", "hf"]);
    for (const name of TARGET_NAMES) expect(TARGETS[name].name).toBe(name);
    expect(DEFAULT_TARGET).toBe("trtllm-engine");
    expect(isTargetName("hf")).toBe(true);
    expect(isTargetName("toString")).toBe(false);
  });
});

describe("kiln compile --target", () => {
  it("defaults to the engine checkpoint", async () => {
    const out = join(tmp, "engine");
    const r = await run(out, { target: undefined });
    expect(r).toMatchObject({ target: "trtllm-engine", architecture: "LlamaForCausalLM", builtin: "llama" });
    expect(r.files).toEqual(["build_config.json", "config.json", "rank0.safetensors", "weights.map.json"]);
    expect(r.usage.join("\n")).toContain(`trtllm-build --checkpoint_dir ${out}`);
  });

  it("hf: remote-code files, model.safetensors and the fixture's generation_config.json", async () => {
    const out = join(tmp, "hf");
    const r = await run(out, { target: "hf" });
    expect(r).toMatchObject({ target: "hf", architecture: "KilnLlamaForCausalLM", model_type: "kiln_llama" });
    expect(readdirSync(out).sort()).toEqual([
      ".kiln-output",
      "config.json",
      "configuration_kiln_llama.py",
      "generation_config.json",
      "kiln.lowered.pb",
      "model.safetensors",
      "modeling_kiln_llama.py",
    ]);
  });

  it("trtllm-torch: checkpoint at the top, importable package below, run and serve commands", async () => {
    const out = join(tmp, "torch");
    const r = await run(out, { target: "trtllm-torch", tp: "2" });
    expect(r.files).toContain("kiln_llama/modeling_kiln_llama.py");
    expect(existsSync(join(out, "kiln_llama", "__init__.py"))).toBe(true);
    const usage = r.usage.join("\n");
    expect(usage).toContain(`import kiln_llama; from tensorrt_llm import LLM; print(LLM(model="${out}", tensor_parallel_size=2)`);
    expect(usage).toContain(`trtllm-serve ${out} --custom_module_dirs ${out}/kiln_llama --tp_size 2`);
  });

  it("refuses an unknown target with the list of known ones", async () => {
    await expect(run(join(tmp, "bad"), { target: "onnx" })).rejects.toThrow("--target: expected one of trtllm-engine, trtllm-torch, hf, got 'onnx'");
    expect(existsSync(join(tmp, "bad"))).toBe(false);
  });
});
