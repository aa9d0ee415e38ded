// `kiln run|eval --lora DIR` end to end: run reproduces PEFT's logits and greedy tokens for an adapter on two
// architectures, eval measures what the adapter changes, and a bad adapter is one `kiln:` line with exit code 1.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { relL2 } from "../../src/interp/tensor.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { adapterDir, baseDir, readLoraGolden } from "../lora-fixtures.ts";
import { kiln } from "./kiln.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-cli-lora-"));

describe("kiln run --lora", () => {
  for (const [fixture, adapter, model] of [
    ["llama", "all_rslora", "llama"],
    ["gpt2", "attn_qkv", "gpt2"],
  ] as const)
    it(`${fixture}/${adapter} gives PEFT's logits and greedy tokens`, async () => {
      const [g] = await readLoraGolden(fixture, adapter);
      const file = join(tmp, `${fixture}-${adapter}.safetensors`);
      const r = await kiln([
        "run",
        `models/${model}.ts`,
        "--hf",
        baseDir(fixture),
        "--lora",
        adapterDir(fixture, adapter),
        "--ids",
        g!.ids.join(","),
        "--max-new-tokens",
        "8",
        "--logits-out",
        file,
        "--json",
        "--no-typecheck",
      ]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const json = JSON.parse(r.out);
      expect(json.tokens).toEqual(g!.greedy);
      expect(json.lora.modules).toBeGreaterThan(0);
      const f = await SafetensorsFile.open(file);
      expect(relL2(await f.readF32("logits"), g!.logits)).toBeLessThanOrEqual(1e-5);
      await f.close();
    });

  it("a bad adapter directory is one line and exit code 1", async () => {
    const r = await kiln(["run", "models/llama.ts", "--hf", baseDir("llama"), "--lora", baseDir("llama"), "--ids", "1,2", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^kiln: .*llama\/adapter_config\.json: not found \(is --lora a PEFT adapter directory\?\)\n$/);
  });

  it("an adapter for another architecture names the module the model lacks", async () => {
    const r = await kiln(["run", "models/llama.ts", "--hf", baseDir("llama"), "--lora", adapterDir("gptj", "all"), "--ids", "1,2", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^kiln: .*adapter_model\.safetensors: 'base_model\.model\.transformer\.h\.0\.attn\.k_proj\.lora_A\.weight' adapts module 'transformer\.h\.0\.attn\.k_proj', but the model reads no weight 'transformer\.h\.0\.attn\.k_proj\.weight' \(no such Linear in its weight map\)\n$/,
    );
  });
});

describe("kiln eval --lora", () => {
  it("without --quant: the adapter against the base model", async () => {
    const r = await kiln(["eval", "models/llama.ts", "--hf", baseDir("llama"), "--lora", adapterDir("llama", "attn_qv"), "--json", "--no-typecheck"]);
    expect(r.err).toBe("");
    const json = JSON.parse(r.out);
    expect(json.loraModules).toBe(4);
    expect(json.relLogitError).toBeGreaterThan(0.05);
    expect(json.top1Agreement).toBeLessThan(1);
  });

  it("with --quant: the quantized adapted model against the unquantized adapted model", async () => {
    const r = await kiln([
      "eval",
      "models/llama.ts",
      "--hf",
      baseDir("llama"),
      "--lora",
      adapterDir("llama", "attn_qv"),
      "--quant",
      "w8a16",
      "--json",
      "--no-typecheck",
    ]);
    expect(r.err).toBe("");
    const json = JSON.parse(r.out);
    expect(json.relLogitError).toBeGreaterThan(0);
    expect(json.relLogitError).toBeLessThan(0.05);
  });
});
