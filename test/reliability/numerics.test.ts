// The numerics guard end to end (red-team D7, D8, D14, D16): Inf/NaN weights are an error naming the tensor in
// `kiln run` and `kiln compile` (--allow-nonfinite overrides), F32 -> F16 overflow is counted per tensor, integer
// tensors are never read as weights, unknown config dtypes are errors, and prompts past the model's positions
// error (learned table) or warn (RoPE).

import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kiln } from "../cli/kiln.ts";
import { copyFixture, patchConfig, plantF32, retag } from "./checkpoints.ts";

const root = mkdtempSync(join(tmpdir(), "kiln-numerics-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (fixture: Parameters<typeof copyFixture>[0] = "llama") => copyFixture(fixture, join(root, `ckpt-${n++}`));
const Q = "model.layers.0.self_attn.q_proj.weight";
const oneLine = (err: string) => expect(err.trim().split("\n"), err).toHaveLength(1);

describe("non-finite weights", () => {
  for (const [what, value] of [
    ["NaN", Number.NaN],
    ["+Inf", Number.POSITIVE_INFINITY],
  ] as const) {
    it(`kiln run refuses ${what} in q_proj, naming the tensor; --allow-nonfinite runs it`, async () => {
      const ckpt = fresh();
      plantF32(ckpt, Q, 5, value);
      const r = await kiln(["run", "models/llama.ts", "--hf", ckpt, "--ids", "1,2,3", "--no-typecheck"]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`tensor "${Q.replaceAll(".", "\\.")}": 1 non-finite value .*--allow-nonfinite`));
      oneLine(r.err);
      const allowed = await kiln(["run", "models/llama.ts", "--hf", ckpt, "--ids", "1,2,3", "--no-typecheck", "--allow-nonfinite", "--max-new-tokens", "1"]);
      expect(allowed.code).toBe(0);
    });

    it(`kiln compile refuses ${what} in q_proj (native and in-memory paths), leaving no output`, async () => {
      const ckpt = fresh();
      plantF32(ckpt, Q, 5, value);
      for (const dtype of ["float32", "float16", "bfloat16"]) {
        const out = join(root, `out-${n++}`);
        const r = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", out, "--dtype", dtype, "--no-typecheck", "--json"]);
        expect(r.code, dtype).toBe(1);
        expect(r.err).toMatch(/tensor "transformer\.layers\.0\.attention\.qkv\.weight": 1 non-finite value \(Inf\/NaN\) in the source/);
        oneLine(r.err);
        expect(existsSync(out)).toBe(false);
        expect(readdirSync(root).filter((f) => f.includes("kiln-tmp"))).toEqual([]);
      }
      const out = join(root, `out-${n++}`);
      const ok = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", out, "--no-typecheck", "--json", "--allow-nonfinite"]);
      expect(ok.code).toBe(0);
      expect(ok.err).toMatch(/warning: written as asked \(--allow-nonfinite\): tensor "transformer\.layers\.0\.attention\.qkv\.weight"/);
    });
  }

  it("kiln compile --dtype float16 counts overflow per tensor; --dtype bfloat16 holds the value", async () => {
    const ckpt = fresh();
    plantF32(ckpt, Q, 0, 70000);
    plantF32(ckpt, Q, 1, -1e6);
    const r = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", join(root, `out-${n++}`), "--dtype", "float16", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/tensor "transformer\.layers\.0\.attention\.qkv\.weight": 2 values overflow to Inf in the cast from F32 to F16/);
    expect(
      (await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", join(root, `out-${n++}`), "--dtype", "bfloat16", "--no-typecheck", "--json"])).code,
    ).toBe(0);
  });

  it("kiln compile --dtype float16 reports underflow to zero as a warning with its count", async () => {
    const ckpt = fresh();
    plantF32(ckpt, Q, 0, 1e-9);
    const r = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", join(root, `out-${n++}`), "--dtype", "float16", "--no-typecheck", "--json"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/warning: tensor "transformer\.layers\.0\.attention\.qkv\.weight": 1 non-zero value underflows to zero in the cast from F32 to F16/);
  });

  it("kiln run refuses all-NaN logits from finite weights (an absurd rope_theta)", async () => {
    const ckpt = fresh();
    patchConfig(ckpt, { rope_parameters: { rope_theta: 1e-300, rope_type: "default" } });
    const r = await kiln(["run", "models/llama.ts", "--hf", ckpt, "--ids", "1,2", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/logits are non-finite/);
  });
});

describe("dtypes", () => {
  for (const dtype of ["I32", "U32"])
    it(`kiln run and compile refuse a weight retagged ${dtype}`, async () => {
      const ckpt = fresh();
      retag(ckpt, Q, dtype);
      const r = await kiln(["run", "models/llama.ts", "--hf", ckpt, "--ids", "1,2,3", "--no-typecheck"]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(new RegExp(`'${Q.replaceAll(".", "\\.")}' is ${dtype}; weights must be floating point`));
      const c = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", join(root, `out-${n++}`), "--no-typecheck"]);
      expect(c.code).toBe(1);
      expect(c.err).toMatch(new RegExp(`is ${dtype}`));
    });

  for (const bad of ["float8; rm -rf /", 16, "float64"])
    it(`an unknown config dtype ${JSON.stringify(bad)} is an error in compile and plan`, async () => {
      const ckpt = fresh();
      patchConfig(ckpt, { torch_dtype: bad, dtype: undefined });
      const c = await kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", join(root, `out-${n++}`), "--no-typecheck"]);
      expect(c.code).toBe(1);
      expect(c.err).toMatch(/config\.json: torch_dtype .* is not a dtype Kiln knows/);
      oneLine(c.err);
      const p = await kiln(["plan", "models/llama.ts", "--hf", ckpt, "--no-typecheck"]);
      expect(p.code).toBe(1);
      expect(p.err).toMatch(/is not a dtype Kiln knows/);
    });
});

describe("prompt length against positions", () => {
  it("gpt2 (learned positions): past n_positions is an error naming the limit, not a token id", async () => {
    const ids = Array.from({ length: 128 }, (_, i) => i % 100).join(",");
    const r = await kiln(["run", "models/gpt2.ts", "--hf", `${fresh("gpt2")}`, "--ids", ids, "--max-new-tokens", "2", "--no-typecheck"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/needs 129 positions, but the model's learned position table has 128 rows/);
    const fits = await kiln(["run", "models/gpt2.ts", "--hf", `${fresh("gpt2")}`, "--ids", ids, "--max-new-tokens", "1", "--no-typecheck"]);
    expect(fits.code).toBe(0);
  });

  it("llama (RoPE): past max_position_embeddings warns and still runs", async () => {
    const ids = Array.from({ length: 130 }, (_, i) => i % 100).join(",");
    const r = await kiln(["run", "models/llama.ts", "--hf", `${fresh()}`, "--ids", ids, "--max-new-tokens", "1", "--no-typecheck"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^kiln: warning: the prompt \(130 tokens\) .* needs 130 positions, past the 128 the model was trained for/);
  });
});
