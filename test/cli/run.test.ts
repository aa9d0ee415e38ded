// The CLI end to end: `kiln run` reproduces the HF fixtures' logits and greedy tokens through --logits-out and
// --json, and bad input gives one clear line and exit code 1 (never a stack trace).

import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kiln } from "./kiln.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURE_MODELS, FIXTURES, readGolden } from "../golden.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-cli-"));

describe("kiln run", () => {
  for (const { fixture, model } of FIXTURE_MODELS)
    it(`matches ${fixture} through --logits-out and --json`, async () => {
      const dir = `${FIXTURES}${fixture}`;
      for (const [i, g] of (await readGolden(dir)).entries()) {
        const file = join(tmp, `${fixture}-${i}.safetensors`);
        const r = await kiln([
          "run",
          `models/${model}.ts`,
          "--hf",
          dir,
          "--ids",
          g.ids.join(","),
          "--max-new-tokens",
          String(g.greedy.length),
          "--logits-out",
          file,
          "--json",
          "--no-typecheck",
        ]);
        expect(r.err).toBe("");
        expect(r.code).toBe(0);
        expect(JSON.parse(r.out).tokens).toEqual(g.greedy);
        const f = await SafetensorsFile.open(file);
        expect(f.info("logits")?.shape).toEqual([g.ids.length, 512]);
        expect(relL2(await f.readF32("logits"), g.logits)).toBeLessThanOrEqual(1e-5);
        await f.close();
      }
    });

  const bad: [string, string[], RegExp][] = [
    ["missing HF dir", ["--hf", "/nonexistent", "--ids", "1"], /^kiln: \/nonexistent\/config\.json: cannot read the Hugging Face config/],
    ["non-numeric ids", ["--hf", `${FIXTURES}llama`, "--ids", "1,x"], /^kiln: --ids: 'x' is not a non-negative integer token id$/],
    [
      "ids past the vocabulary",
      ["--hf", `${FIXTURES}llama`, "--ids", "1,512"],
      /^kiln: --ids: token id 512 is out of range for model 'llama' \(vocabulary of 512\)$/,
    ],
    [
      "wrong architecture",
      ["--hf", `${FIXTURES}gpt2`, "--ids", "1"],
      /^kiln: .*gpt2\/config\.json: architecture 'GPT2LMHeadModel' is not one model 'llama' reads \(it reads LlamaForCausalLM\)$/,
    ],
  ];
  for (const [what, args, msg] of bad)
    it(`rejects ${what} with one line`, async () => {
      const r = await kiln(["run", "models/llama.ts", ...args, "--no-typecheck"]);
      expect(r.code).toBe(1);
      expect(r.err.trim()).toMatch(msg);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    });

  it("rejects a malformed safetensors file naming it", async () => {
    const dir = join(tmp, "broken");
    mkdirSync(dir);
    copyFileSync(`${FIXTURES}llama/config.json`, join(dir, "config.json"));
    writeFileSync(join(dir, "model.safetensors"), Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")]));
    const r = await kiln(["run", "models/llama.ts", "--hf", dir, "--ids", "1", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^kiln: .*broken\/model\.safetensors.*header/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("lists every weight problem at once", async () => {
    const dir = join(tmp, "wrongweights");
    mkdirSync(dir);
    copyFileSync(`${FIXTURES}llama/config.json`, join(dir, "config.json"));
    copyFileSync(`${FIXTURES}llama3_gqa/model.safetensors`, join(dir, "model.safetensors"));
    const r = await kiln(["run", "models/llama.ts", "--hf", dir, "--ids", "1", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/weights do not fit the model \(\d+ problems\)/);
    expect(r.err).toMatch(/parameter 'layers\.0\.attn\.k\.weight' is \[64, 64\] but model\.layers\.0\.self_attn\.k_proj\.weight gives \[16, 64\]/);
    expect(r.err).toMatch(/parameter 'layers\.0\.mlp\.gate\.weight' is \[172, 64\] but .* gives \[160, 64\]/);
    expect(r.err).toMatch(/checkpoint tensor 'model\.layers\.2\.input_layernorm\.weight' \[64\] is not used by the model/);
  });
});

describe("kiln check and model files outside the repo", () => {
  it("type-checks a user model file and reports errors as file:line:col", async () => {
    const file = join(tmp, "bad_model.ts");
    writeFileSync(
      file,
      `import { defineModel, Linear, Module, z, type Tensor } from "kiln";
class M extends Module {
  readonly l = new Linear(4, 4);
  forward(x: Tensor, p: Tensor): Tensor { return this.l.forward(x).add("two"); }
}
export default defineModel({ name: "bad", architectures: [], config: z.object({}), create: () => new M(), weights: () => ({ map: {} }) });
`,
    );
    const r = await kiln(["check", file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad_model\.ts:4:\d+ Argument of type 'string' is not assignable to parameter of type 'Operand'/);
    const ok = await kiln(["check", "models/gpt2.ts"]);
    expect(ok).toMatchObject({ code: 0, out: "models/gpt2.ts: ok (model 'gpt2')\n" });
  });

  it("the real `kiln` binary runs a model file that lives outside the repository", () => {
    const file = join(tmp, "my_llama.ts");
    copyFileSync("models/llama.ts", file);
    const r = spawnSync(process.execPath, ["bin/kiln.js", "run", file, "--hf", `${FIXTURES}llama`, "--ids", "1,2,3", "--max-new-tokens", "4", "--json"], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ model: "llama", prompt: [1, 2, 3], tokens: expect.any(Array) });
    expect(JSON.parse(r.stdout).tokens).toHaveLength(4);
  });

  it("the real `kiln` binary runs a zoo model by name (zoo files are .ts: the compiled CLI loads tsx for them too)", () => {
    const r = spawnSync(process.execPath, ["bin/kiln.js", "run", "llama", "--hf", `${FIXTURES}llama`, "--ids", "1,2,3", "--max-new-tokens", "2", "--json"], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).tokens).toHaveLength(2);
  });
});

describe("kiln passes", () => {
  it("prints one JSON object with op counts before and after each pass", async () => {
    const r = await kiln(["passes", "models/llama.ts", "--hf", `${FIXTURES}llama`, "--json", "--no-typecheck"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.passes.map((p: { pass: string }) => p.pass)).toEqual([
      "dce",
      "cse",
      "fold-shapes",
      "recognize-linear",
      "fold-bias",
      "recognize-norms",
      "recognize-attention",
      "recognize-moe",
      "fuse-qkv",
      "fuse-gated-mlp",
      "cse",
      "dce",
    ]);
    const qkv = j.passes.find((p: { pass: string }) => p.pass === "fuse-qkv");
    expect(qkv).toMatchObject({ rewrites: 2, before: { linear: 15 }, after: { linear: 11, split: 2 } });
    const last = j.passes.at(-1);
    expect(last.after).toMatchObject({ attention: 2, rms_norm: 5, gated_activation: 2, linear: 9 });
  });

  it("--explain says why attention without a causal mask was not fused, with the model's source line", async () => {
    // Inside the repository (tmp/ is git-ignored) so the in-process module loader resolves "kiln" by self-reference.
    mkdirSync("tmp", { recursive: true });
    const file = join("tmp", "no_mask_llama.ts");
    writeFileSync(file, readFileSync("examples/llama_from_primitives.ts", "utf8").replace(".causalMask()", ""));
    const r = await kiln(["passes", file, "--hf", `${FIXTURES}llama`, "--explain", "--no-typecheck"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/hints: none/);
    expect(r.out).toMatch(/recognize-attention\s+0 rewrites\s+no change/);
    expect(r.out).toMatch(
      /near miss causal-attention\(scale=mul\) at transpose in layers\.0 at .*no_mask_llama\.ts:\d+:\d+: matched \d+ of \d+ pattern nodes, then: expected causal_mask, found mul/,
    );
  });
});
