// The torch engine (`kiln calibrate|eval --engine torch`, python-bridge/kiln_bridge/torch_engine.py) agrees with the
// CPU interpreter on every fixture that calibrates: the HF fixtures, the real TinyStories model and the zoo. Per
// fixture: every calibration maximum within 1e-5 relative, and every scheme's metrics (FP8 weights + FP8 KV cache,
// W8A16, W4A16, INT8 KV cache, float16 engine) within 1e-4 (pooled, as kiln eval reports them). All torch cases run in one Python process
// (python-bridge/tests/torch_engine_batch.py). Planted bugs show the comparison catches swapped weights and a model
// not run in the checkpoint's dtype.
// Skipped with the reason when no Python with torch and transformers is found.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error -- a plain .mjs helper without type declarations
import { findPython } from "../../scripts/python.mjs";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { writeTorchJob } from "../../src/driver/torch-job.ts";
import { evaluateQuant, loadQuantizableModel, calibrateModel } from "../../src/driver/quantized-model.ts";
import type { Calibration } from "../../src/quant/calibration.ts";
import type { QuantAccuracy } from "../../src/quant/metrics.ts";
import { DEFAULT_PROMPTS } from "../../src/quant/prompts.ts";
import type { QuantOptions } from "../../src/quant/spec.ts";
import { FIXTURE_MODELS, FIXTURES, hasRealModel, REAL_TINYSTORIES, ZOO, ZOO_FIXTURES } from "../golden.ts";
import { zooModel } from "../zoo/models.ts";

const py: string | undefined = findPython(["torch", "transformers"]);
const skip = py ? undefined : "no Python with torch and transformers";
const BRIDGE = join(process.cwd(), "python-bridge");

const BUILT_IN: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama };
const SCHEMES: readonly QuantOptions[] = [{ weight: "fp8", kv: "fp8" }, { weight: "w8a16" }, { weight: "w4a16" }, { kv: "int8" }];

interface Case {
  readonly name: string;
  readonly def: ModelDefinition<any>;
  readonly hf: string;
  readonly prompts: number[][];
}

// The zoo's vocabularies hold 509 tokens: the built-in prompts folded into them.
const zooPrompts = DEFAULT_PROMPTS.map((p) => p.map((id) => id % 509));
const CASES: Case[] = [
  ...FIXTURE_MODELS.map(({ fixture, model }) => ({
    name: fixture,
    def: BUILT_IN[model]!,
    hf: `${FIXTURES}${fixture}`,
    prompts: DEFAULT_PROMPTS.map((p) => [...p]),
  })),
  ...(hasRealModel ? [{ name: "tinystories260k", def: llama, hf: REAL_TINYSTORIES, prompts: DEFAULT_PROMPTS.map((p) => [...p]) }] : []),
  ...ZOO_FIXTURES.map(({ fixture, model }) => ({ name: fixture, def: zooModel(model), hf: `${ZOO}${fixture}`, prompts: zooPrompts })),
];

interface TorchResult {
  readonly calibration: Calibration;
  readonly evals: (QuantAccuracy & { perPrompt: QuantAccuracy[]; quantizedLinears: number })[];
}

const tmp = mkdtempSync(join(tmpdir(), "kiln-torch-engine-"));

/** Writes each case's job and runs them all in one bridge process; `plant` may edit a job.json first. */
async function runTorch(cases: readonly Case[], tag: string, plant?: (job: Record<string, any>) => void): Promise<TorchResult[]> {
  const manifest = [];
  for (const c of cases) {
    const dir = join(tmp, `${tag}-${c.name}`);
    await mkdir(dir, { recursive: true });
    await writeTorchJob(c.def, c.hf, dir);
    if (plant) {
      const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8"));
      plant(job);
      writeFileSync(join(dir, "job.json"), JSON.stringify(job));
    }
    manifest.push({ job: dir, hf: c.hf, prompts: c.prompts, evals: SCHEMES.map((s) => ({ quant: s.weight, kv: s.kv, dtype: "float16" })) });
  }
  const file = join(tmp, `${tag}-manifest.json`);
  writeFileSync(file, JSON.stringify(manifest));
  const out = join(tmp, `${tag}-out.json`);
  execFileSync(py!, ["python-bridge/tests/torch_engine_batch.py", file, out], {
    env: { ...process.env, PYTHONPATH: BRIDGE },
    stdio: "pipe",
    timeout: 600_000,
  });
  return JSON.parse(readFileSync(out, "utf8"));
}

/** Worst relative difference of the torch maxima from the interpreter's, over every key of the interpreter's file. */
function worstMaxima(t: Calibration, i: Calibration): number {
  let worst = 0;
  const rel = (a: number | undefined, b: number) => (a === undefined ? Infinity : Math.abs(a - b) / Math.max(Math.abs(b), 1e-30));
  for (const [m, v] of Object.entries(i.inputs)) worst = Math.max(worst, rel(t.inputs[m], v));
  for (const [a, kv] of Object.entries(i.kvCache)) worst = Math.max(worst, rel(t.kvCache[a]?.k, kv.k), rel(t.kvCache[a]?.v, kv.v));
  return worst;
}

const METRICS = ["relLogitError", "top1Agreement", "klDivergence"] as const;
const worstMetric = (t: QuantAccuracy, i: QuantAccuracy) => Math.max(...METRICS.map((k) => Math.abs(t[k] - i[k])));

describe.skipIf(skip !== undefined)(`torch engine against the interpreter${skip ? ` (SKIPPED: ${skip})` : ""}`, () => {
  let torch: TorchResult[];
  let interp: { calibration: Calibration; evals: { accuracy: QuantAccuracy; perPrompt: readonly QuantAccuracy[] }[] }[];
  beforeAll(async () => {
    torch = await runTorch(CASES, "ok");
    interp = [];
    for (const c of CASES) {
      const m = await loadQuantizableModel(c.def, c.hf);
      interp.push({ calibration: calibrateModel(m, c.prompts), evals: SCHEMES.map((s) => evaluateQuant(m, s, "float16", c.prompts)) });
    }
  }, 900_000);

  it("covers the HF fixtures, the zoo and (where present) TinyStories", () => {
    expect(CASES.length).toBe(4 + ZOO_FIXTURES.length + (hasRealModel ? 1 : 0));
  });

  for (const [k, c] of CASES.entries()) {
    it(`${c.name}: the same calibration keys, every maximum within 1e-5 relative`, () => {
      const [t, i] = [torch[k]!.calibration, interp[k]!.calibration];
      expect(Object.keys(t.inputs)).toEqual(Object.keys(i.inputs));
      expect(Object.keys(t.kvCache)).toEqual(Object.keys(i.kvCache));
      expect([t.prompts, t.tokens]).toEqual([i.prompts, i.tokens]);
      expect(Object.values(i.inputs).every((v) => v > 0)).toBe(true);
      expect(worstMaxima(t, i)).toBeLessThanOrEqual(1e-5);
    });

    // Pooled over the prompts, as kiln eval reports them. Single short prompts can differ by a little more: an
    // activation within a float32 rounding of an E4M3 tie rounds to neighbouring codes in the two engines (seen once:
    // gpt_neox, FP8 weights + FP8 KV cache, a 6-token prompt, 1.1e-4; each scheme alone agrees to 1e-7).
    it(`${c.name}: every scheme's metrics within 1e-4`, () => {
      SCHEMES.forEach((s, j) => {
        const [t, i] = [torch[k]!.evals[j]!, interp[k]!.evals[j]!];
        const what = `${c.name} ${JSON.stringify(s)}`;
        expect(t.positions, what).toBe(i.accuracy.positions);
        expect(t.relLogitError, what).toBeGreaterThan(0);
        expect(worstMetric(t, i.accuracy), what).toBeLessThanOrEqual(1e-4);
        expect(
          t.perPrompt.map((p) => p.positions),
          what,
        ).toEqual(i.perPrompt.map((p) => p.positions));
      });
    });
  }

  it("catches planted bugs: fc and gate weights swapped in the weight plan, and a model run in bfloat16 instead of the checkpoint's float32", async () => {
    const c = CASES.find((x) => x.name === "llama3_gqa")!;
    const k = CASES.indexOf(c);
    const [swapped] = await runTorch([c], "planted-swap", (job) => {
      const at = (m: string) => job.tensors.findIndex((t: { name: string }) => t.name === m);
      const [fc, gate] = [at("transformer.layers.1.mlp.fc.weight"), at("transformer.layers.1.mlp.gate.weight")];
      [job.tensors[fc].expr, job.tensors[gate].expr] = [job.tensors[gate].expr, job.tensors[fc].expr];
    });
    expect(worstMaxima(swapped!.calibration, interp[k]!.calibration)).toBeGreaterThan(1e-2);
    const [bf16] = await runTorch([c], "planted-bf16", (job) => {
      job.dtype = "bfloat16";
    });
    expect(worstMaxima(bf16!.calibration, interp[k]!.calibration)).toBeGreaterThan(1e-5);
    expect(Math.max(...SCHEMES.map((_, j) => worstMetric(bf16!.evals[j]!, interp[k]!.evals[j]!.accuracy)))).toBeGreaterThan(1e-4);
  }, 600_000);
});
