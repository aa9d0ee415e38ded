// kiln calibrate / eval / run --quant end to end: the CLI reports exactly what the library computes, calibration
// files round-trip through --calibration, prompt files are used, and bad input gives one line and exit code 1.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import { parseCalibration } from "../../src/quant/calibration.ts";
import { DEFAULT_PROMPTS } from "../../src/quant/prompts.ts";
import { evaluateQuant, generateGreedy, loadQuantizableModel, logitsOf, simulateEngine } from "../../src/driver/quantized-model.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURES } from "../golden.ts";
import { kiln } from "./kiln.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-quant-cli-"));
const LLAMA = `${FIXTURES}llama`;

describe("kiln calibrate + eval", () => {
  it("eval --json reports the library's metrics; a calibration file gives the same numbers as calibrating in place", async () => {
    const calib = join(tmp, "calib.json");
    const c = await kiln(["calibrate", "models/llama.ts", "--hf", LLAMA, "--out", calib, "--no-typecheck"]);
    expect(c.err).toBe("");
    expect(c.out).toBe(`kiln: calibrated model llama on 4 prompts (30 tokens, built-in prompts): 10 Linear inputs, 2 KV caches -> ${calib}\n`);
    expect(Object.keys(parseCalibration(readFileSync(calib, "utf8"), calib).inputs)).toHaveLength(10);

    const runs = await Promise.all(
      [[], ["--calibration", calib]].map((extra) =>
        kiln(["eval", "models/llama.ts", "--hf", LLAMA, "--quant", "fp8", "--kv-cache", "int8", "--json", "--no-typecheck", ...extra]),
      ),
    );
    const [a, b] = runs.map((r) => JSON.parse(r.out));
    expect(b).toEqual(a);
    const lib = evaluateQuant(await loadQuantizableModel(llama, LLAMA), { weight: "fp8", kv: "int8" }, "float16", DEFAULT_PROMPTS).accuracy;
    expect(a).toMatchObject({ model: "llama", quant: "fp8", kvCache: "int8", dtype: "float16", prompts: 4, quantizedLinears: 10, ...lib });
    expect(a.positions).toBe(30);
  });

  it("prints a readable summary and evaluates on --prompts files", async () => {
    const prompts = join(tmp, "prompts.txt");
    writeFileSync(prompts, "# two prompts\n5 6 7 8\n9,10\n");
    const r = await kiln(["eval", "models/llama.ts", "--hf", LLAMA, "--quant", "w8a16", "--prompts", prompts, "--no-typecheck"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^model llama, --quant w8a16 \(float16\) against the unquantized model, 2 prompts \(6 positions\):\n {2}relative logit error {2}\d\.\d{3}e-\d\n {2}top-1 agreement {7}\d+\.\d% \(\d\/6\)\n {2}KL divergence {9}.* nats\/token\n {2}10 Linears quantized; lm_head and embeddings stay unquantized\n$/,
    );
  });

  const bad: [string, string[], RegExp][] = [
    ["no scheme", ["eval", "--hf", LLAMA], /^kiln: give --quant w8a16\|w4a16\|fp8 and\/or --kv-cache int8\|fp8 \(or --lora DIR\) to evaluate$/],
    ["an unknown scheme", ["eval", "--hf", LLAMA, "--quant", "int3"], /^kiln: --quant "int3" is not one of w8a16, w4a16, fp8$/],
    ["FP8 in float32", ["eval", "--hf", LLAMA, "--quant", "fp8", "--dtype", "float32"], /^kiln: --quant fp8 needs --dtype float16 or bfloat16/],
    [
      "a calibration of another model",
      ["eval", "--hf", `${FIXTURES}llama3_gqa`, "--kv-cache", "fp8", "--calibration", "CALIB"],
      /^kiln: calibration of model 'llama' has no statistics for transformer\.layers\.2\.attention$/,
    ],
    ["a missing prompt file", ["run", "--hf", LLAMA, "--ids", "1", "--quant", "fp8", "--prompts", "/nonexistent/p.txt"], /^kiln: .*\/nonexistent\/p\.txt/],
  ];
  for (const [what, args, msg] of bad)
    it(`rejects ${what} with one line`, async () => {
      const r = await kiln([args[0]!, "models/llama.ts", ...args.slice(1).map((a) => (a === "CALIB" ? join(tmp, "calib.json") : a)), "--no-typecheck"]);
      expect(r.code).toBe(1);
      expect(r.err.trim()).toMatch(msg);
      expect(r.err.trim().split("\n")).toHaveLength(1);
    });
});

describe("kiln compile --quant", () => {
  it("writes an FP8 checkpoint calibrated on prompt files and says it is quantized", async () => {
    const prompts = join(tmp, "calib.txt");
    writeFileSync(prompts, "1 2 3 4 5\n");
    const out = join(tmp, "fp8");
    const r = await kiln([
      "compile",
      "models/llama.ts",
      "--hf",
      LLAMA,
      "--out",
      out,
      "--quant",
      "fp8",
      "--kv-cache",
      "fp8",
      "--prompts",
      prompts,
      "--no-typecheck",
    ]);
    expect(r.err).toBe("");
    expect(r.out).toMatch(/\n {2}quantized: --quant fp8 --kv-cache fp8 \(config\.json "quantization"; kiln eval shows the accuracy cost\)\n/);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config.quantization).toMatchObject({ quant_algo: "FP8", kv_cache_quant_algo: "FP8" });
    // Calibrated on the one prompt given, not the built-in ones.
    const m = await loadQuantizableModel(llama, LLAMA);
    const engine = simulateEngine(m, { weight: "fp8", kv: "fp8" }, "float16", [[1, 2, 3, 4, 5]]);
    const map = JSON.parse(readFileSync(join(out, "weights.map.json"), "utf8")).files["rank0.safetensors"];
    expect(map["transformer.layers.0.attention.kv_cache_scaling_factor"]).toEqual({
      dtype: "F32",
      from: "calibration",
      values: [
        Math.fround(
          Math.max(
            engine.spec.calibration!.kvCache["transformer.layers.0.attention"]!.k,
            engine.spec.calibration!.kvCache["transformer.layers.0.attention"]!.v,
          ) / 448,
        ),
      ],
    });
    expect(map["transformer.layers.0.mlp.gate.weight"].from).toMatch(/^e4m3\(.* \/ scale\(transformer\.layers\.0\.mlp\.fc\)\)$/);
    expect(map["transformer.layers.0.mlp.gate.weights_scaling_factor"]).toEqual({ dtype: "F32", from: "amax(transformer.layers.0.mlp.fc on this rank) / 448" });
  });

  it("rejects --quant for other targets with one line", async () => {
    const r = await kiln(["compile", "models/llama.ts", "--hf", LLAMA, "--out", join(tmp, "hf"), "--target", "hf", "--quant", "w8a16", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("kiln: --quant and --kv-cache apply to the trtllm-engine target only\n");
  });
});

describe("kiln run --quant", () => {
  it("writes the simulated engine's logits and greedy tokens", async () => {
    const file = join(tmp, "q.safetensors");
    const ids = [7, 300, 12, 45];
    const r = await kiln([
      "run",
      "models/llama.ts",
      "--hf",
      LLAMA,
      "--ids",
      ids.join(","),
      "--max-new-tokens",
      "4",
      "--quant",
      "w4a16",
      "--kv-cache",
      "fp8",
      "--logits-out",
      file,
      "--json",
      "--no-typecheck",
    ]);
    expect(r.err).toBe("");
    const m = await loadQuantizableModel(llama, LLAMA);
    const engine = simulateEngine(m, { weight: "w4a16", kv: "fp8" }, "float16", DEFAULT_PROMPTS);
    const j = JSON.parse(r.out);
    expect(j.quantized).toBe("--quant w4a16 --kv-cache fp8 (float16)");
    expect(j.tokens).toEqual(generateGreedy(m, ids, 4, engine));
    const f = await SafetensorsFile.open(file);
    expect(await f.readF32("logits")).toEqual(logitsOf(m, ids, engine));
    await f.close();
    // Quantization changes the numbers: the unquantized logits differ.
    expect(logitsOf(m, ids)).not.toEqual(logitsOf(m, ids, engine));
  });
});
