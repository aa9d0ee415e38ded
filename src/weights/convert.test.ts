// convert.ts: streamed conversion equals in-memory evalExpr + cast for random checkpoints and random expression
// trees of every transform (offset included: its sum is rounded once, to the output dtype) (tiny blocks force many blocks and odd boundaries); rounding ties of every cast;
// plan validation; and failures that must leave nothing in the output directory.

import { fc, test as fcTest } from "@fast-check/vitest";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openCheckpoint, type Checkpoint } from "./checkpoint.ts";
import { ConvertError, writeCheckpointFiles, type RankFilePlan } from "./convert.ts";
import { rangeCopier } from "./copy-ranges.ts";
import type { FloatDtype } from "./float-cast.ts";
import { f32ToBf16, f32ToF16 } from "./half.ts";
import { SafetensorsFile, writeSafetensors, type TensorWithData } from "./safetensors.ts";
import { concat, evalExpr, offset, pad, reshape, repeatInterleave, slice, src, transpose, type WeightExpr, zeros } from "./weight-map.ts";

let root: string;
let counter = 0;
const newDir = async () => {
  const dir = join(root, `case-${counter++}`);
  await mkdir(dir);
  return dir;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "kiln-convert-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- random checkpoints and expressions

/** mulberry32: a small seeded PRNG so a failing case is reproducible from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const DTYPES: readonly FloatDtype[] = ["F32", "F16", "BF16"];
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Random finite values as raw bits: any exponent but the all-ones one (no Inf, no NaN). */
function randomData(r: Rng, dtype: FloatDtype, n: number): Uint8Array {
  if (dtype === "F32") {
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = ((r.int(0, 1) << 31) | (r.int(0, 254) << 23) | r.int(0, 0x7fffff)) >>> 0;
    return new Uint8Array(a.buffer);
  }
  const a = new Uint16Array(n);
  const [expBits, mantBits] = dtype === "F16" ? [5, 10] : [8, 7];
  for (let i = 0; i < n; i++) a[i] = (r.int(0, 1) << 15) | (r.int(0, (1 << expBits) - 2) << mantBits) | r.int(0, (1 << mantBits) - 1);
  return new Uint8Array(a.buffer);
}

interface Shaped {
  e: WeightExpr;
  shape: number[];
}

/** A random shape with the given element count and 1..3 dims. */
function factorShape(r: Rng, n: number): number[] {
  const dims = r.int(1, 3);
  const shape: number[] = [];
  let left = n;
  for (let d = 0; d < dims - 1; d++) {
    const divisors = Array.from({ length: left }, (_, i) => i + 1).filter((k) => left % k === 0);
    const k = r.pick(divisors);
    shape.push(k);
    left /= k;
  }
  return [...shape, left];
}

const MAX_ELEMENTS = 400;

/** A random expression over `sources`, built so every node is valid; every transform appears at some depth. */
function randomExpr(r: Rng, sources: readonly Shaped[], depth: number): Shaped {
  const leaf = (): Shaped => (r.next() < 0.85 ? r.pick(sources) : (({ shape }) => ({ e: zeros(shape), shape }))({ shape: factorShape(r, r.int(1, 12)) }));
  if (depth === 0) return leaf();
  const x = randomExpr(r, sources, depth - 1);
  const dim = r.int(0, x.shape.length - 1);
  const size = x.shape[dim]!;
  const withDim = (v: number) => x.shape.map((d, i) => (i === dim ? v : d));
  const ops: (() => Shaped | undefined)[] = [
    () => leaf(),
    () => {
      if (x.shape.length === 2) return { e: transpose(x.e), shape: [x.shape[1]!, x.shape[0]!] };
      const n = numel(x.shape);
      const rows = r.pick(Array.from({ length: n }, (_, i) => i + 1).filter((k) => n % k === 0));
      const two = [rows, n / rows];
      return { e: transpose(reshape(x.e, two)), shape: [two[1]!, two[0]!] };
    },
    () => {
      const start = r.int(0, size - 1);
      const end = r.int(start + 1, size);
      return { e: slice(x.e, dim, start, end), shape: withDim(end - start) };
    },
    () => {
      const to = size + r.int(0, 3);
      return numel(withDim(to)) <= MAX_ELEMENTS ? { e: pad(x.e, dim, to), shape: withDim(to) } : undefined;
    },
    () => {
      const k = r.int(1, 3);
      return numel(withDim(size * k)) <= MAX_ELEMENTS ? { e: repeatInterleave(x.e, dim, k), shape: withDim(size * k) } : undefined;
    },
    () => {
      const shape = factorShape(r, numel(x.shape));
      return { e: reshape(x.e, shape), shape };
    },
    () => ({ e: offset(x.e, r.pick([1, -0.5, 3.25])), shape: x.shape }),
    () => {
      // Parts that fit x on every dim but `dim`: slices of x, x itself, zeros, a sibling expression reshaped.
      const parts: Shaped[] = [];
      for (let i = r.int(1, 3); i > 0; i--) {
        const kind = r.int(0, 2);
        if (kind === 0) parts.push(x);
        else if (kind === 1) {
          const w = r.int(1, 3);
          parts.push({ e: zeros(withDim(w)), shape: withDim(w) });
        } else {
          const start = r.int(0, size - 1);
          const end = r.int(start + 1, size);
          parts.push({ e: slice(x.e, dim, start, end), shape: withDim(end - start) });
        }
      }
      const total = parts.reduce((a, p) => a + p.shape[dim]!, 0);
      return numel(withDim(total)) <= MAX_ELEMENTS ? { e: concat(dim, ...parts.map((p) => p.e)), shape: withDim(total) } : undefined;
    },
  ];
  return r.pick(ops)() ?? x;
}

interface Fixture {
  dir: string;
  tensors: (TensorWithData & { dtype: FloatDtype })[];
}

/** A checkpoint of random tensors in random dtypes, split over two shards with an index. */
async function randomCheckpoint(r: Rng): Promise<Fixture> {
  const dir = await newDir();
  const tensors = Array.from({ length: r.int(2, 5) }, (_, i) => {
    const dtype = r.pick(DTYPES);
    const shape = factorShape(r, r.int(1, 60));
    return { name: `t${i}`, dtype, shape, data: randomData(r, dtype, numel(shape)) };
  });
  const cut = r.int(1, tensors.length - 1);
  await writeSafetensors(join(dir, "a.safetensors"), tensors.slice(0, cut));
  await writeSafetensors(join(dir, "b.safetensors"), tensors.slice(cut));
  const weightMap = Object.fromEntries(tensors.map((t, i) => [t.name, i < cut ? "a.safetensors" : "b.safetensors"]));
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
  return { dir, tensors };
}

/** The oracle: evalExpr in float32, then one cast to the output dtype. */
function expectedBytes(ckpt: Checkpoint, e: WeightExpr, dtype: FloatDtype): Uint8Array {
  const { data } = evalExpr(e, (name) => ({ shape: ckpt.info(name)!.shape, data: ckpt.readF32Sync(name) }));
  const out = dtype === "F32" ? data : dtype === "F16" ? f32ToF16(data) : f32ToBf16(data);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

async function readOutput(path: string): Promise<Map<string, { shape: number[]; dtype: string; bytes: Uint8Array }>> {
  const f = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, { shape: number[]; dtype: string; bytes: Uint8Array }>();
    for (const t of f.tensors()) out.set(t.name, { shape: t.shape, dtype: t.dtype, bytes: await f.readBytes(t.name) });
    return out;
  } finally {
    await f.close();
  }
}

describe("streamed conversion equals evalExpr + cast", () => {
  fcTest.prop([fc.integer(), fc.boolean()], { numRuns: 60 })(
    "random checkpoints, expressions and block sizes, with and without kernel copies",
    async (seed, viaHelper) => {
      const r = rng(seed);
      const fixture = await randomCheckpoint(r);
      const ckpt = await openCheckpoint(fixture.dir);
      try {
        const sources = fixture.tensors.map((t): Shaped => ({ e: src(t.name), shape: t.shape }));
        const plans: RankFilePlan[] = Array.from({ length: r.int(1, 2) }, (_, f) => ({
          file: `rank${f}.safetensors`,
          tensors: Array.from({ length: r.int(1, 4) }, (_, i) => ({ name: `out${i}`, dtype: r.pick(DTYPES), expr: randomExpr(r, sources, r.int(0, 4)).e })),
          metadata: { rank: String(f) },
        }));
        const out = await newDir();
        const blockBytes = r.pick([4, 6, 8, 12, 36, 64, 100, 4096]);
        const progress: number[] = [];
        const result = await writeCheckpointFiles(ckpt, plans, out, {
          allowNonFinite: true,
          blockBytes,
          copyBlockBytes: blockBytes,
          nativeHelper: viaHelper,
          onProgress: (done) => progress.push(done),
        });
        expect((await readdir(out)).sort()).toEqual(plans.map((p) => p.file).sort());
        let bytes = 0;
        for (const plan of plans) {
          const written = await readOutput(join(out, plan.file));
          expect([...written.keys()]).toEqual(plan.tensors.map((t) => t.name));
          for (const t of plan.tensors) {
            const want = expectedBytes(ckpt, t.expr, t.dtype);
            const got = written.get(t.name)!;
            expect(got.dtype).toBe(t.dtype);
            expect(Buffer.from(got.bytes).equals(Buffer.from(want)), `seed ${seed} ${plan.file}:${t.name} blockBytes ${blockBytes}`).toBe(true);
            bytes += want.length;
          }
        }
        expect(result).toMatchObject({ bytesWritten: bytes, tensors: plans.reduce((a, p) => a + p.tensors.length, 0) });
        expect(result.nativeCopiedBytes + result.nativeCastBytes).toBeLessThanOrEqual(viaHelper && rangeCopier() ? bytes : 0);
        expect(progress.at(-1)).toBe(bytes);
        expect(progress.every((v, i) => i === 0 || v > progress[i - 1]!)).toBe(true);
      } finally {
        await ckpt.close();
      }
    },
  );

  test("a tensor bigger than a block streams in ceil(bytes / blockBytes) blocks and round-trips", async () => {
    const dir = await newDir();
    const n = 50_000;
    const data = new Float32Array(n).map((_, i) => i * 0.25 - 1000);
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "w", dtype: "F32", shape: [500, 100], data }]);
    const ckpt = await openCheckpoint(dir);
    const out = await newDir();
    const calls: [number, number, string][] = [];
    const plan: RankFilePlan = { file: "rank0.safetensors", tensors: [{ name: "w.t", dtype: "F32", expr: transpose(src("w")) }] };
    await writeCheckpointFiles(ckpt, [plan], out, { blockBytes: 4096, onProgress: (d, t, name) => calls.push([d, t, name]) });
    await ckpt.close();
    expect(calls).toHaveLength(Math.ceil((n * 4) / 4096));
    expect(calls.at(-1)).toEqual([n * 4, n * 4, "w.t"]);
    const got = new Float32Array((await readOutput(join(out, "rank0.safetensors"))).get("w.t")!.bytes.slice().buffer);
    // Output [100, 500]: element (j, i) is input (i, j).
    expect(got[0]).toBe(data[0]);
    expect(got[1]).toBe(data[100]);
    expect(got[500 * 37 + 211]).toBe(data[211 * 100 + 37]);
  });

  test("large same-dtype pieces (plain copy, dim-0 concat, wide dim-1 slice) are read straight into blocks", async () => {
    const dir = await newDir();
    const a = new Uint16Array(4 * 65536).map((_, i) => (i * 7) & 0x7bff);
    const b = new Uint16Array(3 * 65536).map((_, i) => (i * 13) & 0x7bff);
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "a", dtype: "F16", shape: [4, 65536], data: a },
      { name: "b", dtype: "F16", shape: [3, 65536], data: b },
    ]);
    const ckpt = await openCheckpoint(dir);
    const out = await newDir();
    const tensors: RankFilePlan["tensors"] = [
      { name: "copy", dtype: "F16", expr: src("a") },
      { name: "cat", dtype: "F16", expr: concat(0, src("b"), src("a")) },
      { name: "cols", dtype: "F16", expr: slice(src("a"), 1, 1000, 41000) }, // 80 000-byte row runs
    ];
    await writeCheckpointFiles(ckpt, [{ file: "r.safetensors", tensors }], out);
    const written = await readOutput(join(out, "r.safetensors"));
    for (const t of tensors) expect(Buffer.from(written.get(t.name)!.bytes).equals(Buffer.from(expectedBytes(ckpt, t.expr, "F16"))), t.name).toBe(true);
    await ckpt.close();
  });

  test("a block that needs more pieces than a plan may hold is split, and still exact", async () => {
    const dir = await newDir();
    const n = 70_000; // repeat on the last dim makes one piece per 2 output elements: 70 000 > the 65 536 cap
    const data = new Uint16Array(n).map((_, i) => i & 0x7bff);
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "v", dtype: "F16", shape: [n], data }]);
    const ckpt = await openCheckpoint(dir);
    const out = await newDir();
    const expr = reshape(repeatInterleave(reshape(src("v"), [n, 1]), 1, 2), [2 * n]);
    await writeCheckpointFiles(ckpt, [{ file: "r.safetensors", tensors: [{ name: "x", dtype: "F16", expr }] }], out);
    await ckpt.close();
    const got = new Uint16Array((await readOutput(join(out, "r.safetensors"))).get("x")!.bytes.slice().buffer);
    expect(got).toEqual(new Uint16Array(2 * n).map((_, i) => data[i >> 1]!));
  });

  test("mixed source dtypes read in one span, with a BF16 tensor at an odd file offset", async () => {
    const dir = await newDir();
    // The 1-byte U8 tensor puts b's data at an odd offset, so its bits need realigning before they can be widened.
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "a", dtype: "F32", shape: [2], data: Float32Array.of(0.5, -1 - 2 ** -9) },
      { name: "flag", dtype: "U8", shape: [1], data: Uint8Array.of(7) },
      { name: "b", dtype: "BF16", shape: [3], data: Uint16Array.of(0x3f80, 0x4000, 0xc040) },
    ]);
    const ckpt = await openCheckpoint(dir);
    expect(ckpt.info("b")!.byteOffset % 2).toBe(1);
    const out = await newDir();
    const plan: RankFilePlan = { file: "r.safetensors", tensors: [{ name: "ab", dtype: "BF16", expr: concat(0, src("a"), src("b")) }] };
    await writeCheckpointFiles(ckpt, [plan], out);
    await ckpt.close();
    const got = new Uint16Array((await readOutput(join(out, "r.safetensors"))).get("ab")!.bytes.slice().buffer);
    // -1 - 2^-9 rounds to bf16 -1 (0xbf80): it is below the halfway point -1 - 2^-8.
    expect([...got]).toEqual([0x3f00, 0xbf80, 0x3f80, 0x4000, 0xc040]);
  });

  test("scalars and empty tensors", async () => {
    const dir = await newDir();
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "s", dtype: "BF16", shape: [], data: new Uint16Array([0x3fc0]) }]);
    const ckpt = await openCheckpoint(dir);
    const out = await newDir();
    const plan: RankFilePlan = {
      file: "r.safetensors",
      tensors: [
        { name: "scalar", dtype: "F32", expr: src("s") },
        { name: "vec", dtype: "F16", expr: repeatInterleave(reshape(src("s"), [1]), 0, 3) },
        { name: "empty", dtype: "BF16", expr: zeros([0, 4]) },
      ],
    };
    await writeCheckpointFiles(ckpt, [plan], out, { blockBytes: 4 });
    await ckpt.close();
    const got = await readOutput(join(out, "r.safetensors"));
    expect([...new Float32Array(got.get("scalar")!.bytes.slice().buffer)]).toEqual([1.5]);
    expect([...new Uint16Array(got.get("vec")!.bytes.slice().buffer)]).toEqual([0x3e00, 0x3e00, 0x3e00]);
    expect(got.get("empty")).toMatchObject({ shape: [0, 4], bytes: new Uint8Array(0) });
  });
});

// ---------------------------------------------------------------- kernel copies

describe.skipIf(!rangeCopier())("native copies and casts (native/ helper)", () => {
  /** Shapes like a tp=2 LLaMA layer: q/k/v, o (row-parallel), an lm_head padded to tp, a transposed Conv1D. */
  async function layerCheckpoint(): Promise<string> {
    const dir = await newDir();
    const r = rng(11);
    const t = (name: string, dtype: FloatDtype, shape: number[]) => ({ name, dtype, shape, data: randomData(r, dtype, numel(shape)) });
    await writeSafetensors(join(dir, "a.safetensors"), [t("k", "BF16", [32, 4096]), t("o", "BF16", [16, 32768]), t("q", "BF16", [128, 4096])]);
    await writeSafetensors(join(dir, "b.safetensors"), [
      t("v", "BF16", [32, 4096]),
      t("head", "BF16", [999, 64]),
      t("small", "BF16", [64, 2048]),
      t("f", "F32", [300, 40]),
    ]);
    await writeFile(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({
        weight_map: {
          k: "a.safetensors",
          o: "a.safetensors",
          q: "a.safetensors",
          v: "b.safetensors",
          head: "b.safetensors",
          small: "b.safetensors",
          f: "b.safetensors",
        },
      }),
    );
    return dir;
  }

  /** Per rank: which tensors are plain copies (kernel), native casts, and which must go through memory. */
  const plans = (): { plan: RankFilePlan; kernel: string[]; cast: string[] }[] =>
    [0, 1].map((r) => ({
      kernel: [`qkv${r}`, `o${r}`, `head${r}`, `kv_rep${r}`],
      cast: [`cast${r}`, `cast_cols${r}`],
      plan: {
        file: `rank${r}.safetensors`,
        tensors: [
          // [q_r; k_r; v_r] from two source files, each a dim-0 slice: three contiguous runs.
          {
            name: `qkv${r}`,
            dtype: "BF16",
            expr: concat(0, slice(src("q"), 0, 64 * r, 64 * (r + 1)), slice(src("k"), 0, 16 * r, 16 * (r + 1)), slice(src("v"), 0, 16 * r, 16 * (r + 1))),
          },
          // Row-parallel: dim-1 slice, 32 KiB rows.
          { name: `o${r}`, dtype: "BF16", expr: slice(src("o"), 1, 16384 * r, 16384 * (r + 1)) },
          // Vocabulary padded to a multiple of tp, then split: the last rank ends in zeros.
          { name: `head${r}`, dtype: "BF16", expr: slice(pad(src("head"), 0, 1000), 0, 500 * r, 500 * (r + 1)) },
          // KV heads replicated: repeat_interleave of whole heads (4 rows of 8 KiB each).
          {
            name: `kv_rep${r}`,
            dtype: "BF16",
            expr: reshape(repeatInterleave(reshape(slice(src("k"), 0, 8 * r, 8 * (r + 1)), [2, 4 * 4096]), 0, 2), [16, 4096]),
          },
          // 2 KiB strided rows: cheaper through memory, so not a kernel copy (nor are 8 KiB ones, see copy-plan.ts).
          { name: `small${r}`, dtype: "BF16", expr: slice(src("small"), 1, 1024 * r, 1024 * (r + 1)) },
          // A transpose is not a copy; nor is a cast, but BF16 -> F16 of a plain copy is cast by the helper.
          { name: `ft${r}`, dtype: "F32", expr: transpose(src("f")) },
          { name: `cast${r}`, dtype: "F16", expr: slice(src("q"), 0, 8 * r, 8 * (r + 1)) },
          { name: `cast_cols${r}`, dtype: "F16", expr: slice(src("o"), 1, 16384 * r, 16384 * (r + 1)) },
          { name: `widen${r}`, dtype: "F32", expr: slice(src("k"), 0, 8 * r, 8 * (r + 1)) },
        ],
      },
    }));

  test.each([undefined, 12_346])("rank files are byte-identical with and without the native helper (block bytes %s), and exact", async (blockBytes) => {
    const ckpt = await openCheckpoint(await layerCheckpoint());
    try {
      const cases = plans();
      const [viaKernel, viaMemory] = [await newDir(), await newDir()];
      const opts = { allowNonFinite: true, ...(blockBytes && { blockBytes, copyBlockBytes: blockBytes }) };
      const k = await writeCheckpointFiles(
        ckpt,
        cases.map((c) => c.plan),
        viaKernel,
        opts,
      );
      const m = await writeCheckpointFiles(
        ckpt,
        cases.map((c) => c.plan),
        viaMemory,
        { ...opts, nativeHelper: false },
      );
      const bytesOf = (kind: "kernel" | "cast") =>
        cases
          .flatMap((c) => c.plan.tensors.filter((t) => c[kind].includes(t.name)).map((t) => expectedBytes(ckpt, t.expr, t.dtype).length))
          .reduce((a, b) => a + b, 0);
      expect([k.nativeCopiedBytes, k.nativeCastBytes]).toEqual([bytesOf("kernel"), bytesOf("cast")]);
      expect([m.nativeCopiedBytes, m.nativeCastBytes]).toEqual([0, 0]);
      expect(k.bytesWritten).toBe(m.bytesWritten);
      for (const { plan } of cases) {
        const [a, b] = [readFileSync(join(viaKernel, plan.file)), readFileSync(join(viaMemory, plan.file))];
        expect(a.equals(b), plan.file).toBe(true);
        const written = await readOutput(join(viaKernel, plan.file));
        for (const t of plan.tensors)
          expect(Buffer.from(written.get(t.name)!.bytes).equals(Buffer.from(expectedBytes(ckpt, t.expr, t.dtype))), `${plan.file}:${t.name}`).toBe(true);
      }
    } finally {
      await ckpt.close();
    }
  });

  test("a source truncated under native copies fails naming the source file and tensor, leaving nothing", async () => {
    const dir = await layerCheckpoint();
    const ckpt = await openCheckpoint(dir);
    const out = await newDir();
    const info = ckpt.info("o")!;
    await truncate(join(dir, "a.safetensors"), info.byteOffset + 100_000); // inside "o"; "q" is gone
    const err = await writeCheckpointFiles(
      ckpt,
      plans().map((c) => c.plan),
      out,
    ).catch((e: unknown) => e);
    await ckpt.close();
    expect((err as Error).message).toMatch(/a\.safetensors: tensor "(q|o)": unexpected end of file at byte \d+/);
    expect(await readdir(out)).toEqual([]);
  });
});

// ---------------------------------------------------------------- many blocks in flight

describe("blocks in flight across files", () => {
  /** Two ~MiB sources, big enough that reads go through the thread pool and many blocks overlap. */
  async function bigCheckpoint(): Promise<string> {
    const dir = await newDir();
    const r = rng(7);
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "w", dtype: "BF16", shape: [512, 2048], data: randomData(r, "BF16", 512 * 2048) },
      { name: "f", dtype: "F32", shape: [64, 2048], data: randomData(r, "F32", 64 * 2048) },
    ]);
    return dir;
  }

  /** Like tp=2 rank files: dim-0 shards (direct reads), dim-1 shards (spans), casts, and a mixed-dtype concat. */
  const rankPlans = (): RankFilePlan[] =>
    [0, 1].map((r) => ({
      file: `rank${r}.safetensors`,
      tensors: [
        { name: `col${r}`, dtype: "BF16", expr: slice(src("w"), 0, 256 * r, 256 * (r + 1)) },
        { name: `row${r}`, dtype: "BF16", expr: slice(src("w"), 1, 1024 * r, 1024 * (r + 1)) },
        { name: `half${r}`, dtype: "F16", expr: slice(src("w"), 1, 1000 * r, 1000 * r + 1048) },
        { name: `mixed${r}`, dtype: "F32", expr: concat(0, src("f"), slice(src("w"), 0, 100 * r, 100 * r + 3)) },
      ],
    }));

  for (const blockBytes of [undefined, 96 << 10]) {
    test(`two rank files with ${blockBytes ?? "default (512 KiB)"} byte blocks are byte-exact, and blocks alternate between files`, async () => {
      const ckpt = await openCheckpoint(await bigCheckpoint());
      const out = await newDir();
      const plans = rankPlans();
      const order: string[] = [];
      const onProgress = (_d: number, _t: number, tensor: string) => order.push(tensor);
      await writeCheckpointFiles(ckpt, plans, out, { allowNonFinite: true, ...(blockBytes && { blockBytes }), onProgress });
      for (const plan of plans) {
        const written = await readOutput(join(out, plan.file));
        for (const t of plan.tensors) {
          const want = expectedBytes(ckpt, t.expr, t.dtype);
          expect(Buffer.from(written.get(t.name)!.bytes).equals(Buffer.from(want)), `${plan.file}:${t.name}`).toBe(true);
        }
      }
      await ckpt.close();
      // Both files have the same block sequence, so round-robin over files alternates rank 0 and rank 1 blocks.
      expect(order.length).toBeGreaterThanOrEqual(12);
      expect(order.every((n, i) => n.endsWith(String(i % 2)))).toBe(true);
    });
  }

  test("a source truncated under blocks in flight fails naming file and tensor, leaving nothing", async () => {
    const dir = await bigCheckpoint();
    const ckpt = await openCheckpoint(dir);
    await truncate(join(dir, "model.safetensors"), 1 << 20); // half of "w"; "f" is gone
    const out = await newDir();
    const err = await writeCheckpointFiles(ckpt, rankPlans(), out, { blockBytes: 128 << 10 }).catch((e: unknown) => e);
    await ckpt.close();
    expect((err as Error).message).toMatch(/model\.safetensors: tensor "w": unexpected end of file at byte \d+/);
    expect(await readdir(out)).toEqual([]);
  });

  test("an error thrown while reads and writes of both files are in flight leaves nothing", async () => {
    const ckpt = await openCheckpoint(await bigCheckpoint());
    const out = await newDir();
    let calls = 0;
    const onProgress = () => {
      if (++calls === 9) throw new Error("interrupted");
    };
    await expect(writeCheckpointFiles(ckpt, rankPlans(), out, { blockBytes: 128 << 10, onProgress })).rejects.toThrow("interrupted");
    await ckpt.close();
    expect(calls).toBe(9);
    expect(await readdir(out)).toEqual([]);
  });
});

// ---------------------------------------------------------------- casts: round to nearest, ties to even

describe("dtype casts", () => {
  // Expected bit patterns worked out by hand from the IEEE 754 formats, not computed by Kiln.
  const CASES: { name: string; from: FloatDtype; to: FloatDtype; in: number[]; out: number[] }[] = [
    // 1 + 2^-8 is halfway between bf16 1.0 (0x3f80) and 0x3f81: ties go to the even 0x3f80; 1 + 3*2^-8 to 0x3f82.
    {
      name: "F32 -> BF16 ties",
      from: "F32",
      to: "BF16",
      in: [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20],
      out: [0x3f80, 0x3f82, 0xbf80, 0x3f81],
    },
    // f16 has 10 mantissa bits: 1 + 2^-11 ties to 0x3c00, 1 + 3*2^-11 to 0x3c02; 65520 ties up to Inf; 65519 -> max.
    {
      name: "F32 -> F16 ties and overflow",
      from: "F32",
      to: "F16",
      in: [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519, 2 ** -25, 3 * 2 ** -25],
      out: [0x3c00, 0x3c02, 0x7c00, 0x7bff, 0x0000, 0x0002],
    },
    // bf16 2^-25 (0x3300) and 1.5 * 2^-24 (0x33c0) are ties between f16 subnormals: 0 and 2 units.
    { name: "BF16 -> F16 subnormal ties", from: "BF16", to: "F16", in: [0x3300, 0x33c0, 0x3f80, 0x4780], out: [0x0000, 0x0002, 0x3c00, 0x7c00] },
    // f16 0x3c04 = 1 + 2^-8 ties to bf16 1.0; 0x3c0c = 1 + 3*2^-8 ties to 0x3f82.
    { name: "F16 -> BF16 ties", from: "F16", to: "BF16", in: [0x3c04, 0x3c0c, 0x7c00], out: [0x3f80, 0x3f82, 0x7f80] },
    { name: "BF16 -> F32 exact", from: "BF16", to: "F32", in: [0x3f81, 0xc0a0], out: [1 + 2 ** -7, -5] },
  ];

  for (const c of CASES) {
    test(c.name, async () => {
      const dir = await newDir();
      const data = c.from === "F32" ? new Float32Array(c.in) : new Uint16Array(c.in);
      await writeSafetensors(join(dir, "model.safetensors"), [{ name: "x", dtype: c.from, shape: [c.in.length], data }]);
      const ckpt = await openCheckpoint(dir);
      const out = await newDir();
      // Concat with itself so the cast also runs on a block that straddles two pieces.
      await writeCheckpointFiles(ckpt, [{ file: "r.safetensors", tensors: [{ name: "y", dtype: c.to, expr: concat(0, src("x"), src("x")) }] }], out, {
        blockBytes: 12,
        allowNonFinite: true,
      });
      await ckpt.close();
      const bytes = (await readOutput(join(out, "r.safetensors"))).get("y")!.bytes.slice().buffer;
      const got = c.to === "F32" ? [...new Float32Array(bytes)] : [...new Uint16Array(bytes)];
      expect(got).toEqual([...c.out, ...c.out]);
    });
  }
});

// ---------------------------------------------------------------- validation and failures

describe("plan validation", () => {
  test("every problem is reported at once, naming file and tensor, and nothing is written", async () => {
    const dir = await newDir();
    await writeSafetensors(join(dir, "model.safetensors"), [
      { name: "a", dtype: "F32", shape: [4, 6], data: new Float32Array(24) },
      { name: "ids", dtype: "I32", shape: [3], data: new Int32Array(3) },
    ]);
    const ckpt = await openCheckpoint(dir);
    const out = join(await newDir(), "out");
    const plans = [
      {
        file: "rank0.safetensors",
        tensors: [
          { name: "ok", dtype: "F16", expr: src("a") },
          { name: "missing", dtype: "F16", expr: src("nope") },
          { name: "bad-slice", dtype: "F16", expr: slice(src("a"), 1, 2, 9) },
          { name: "bad-concat", dtype: "F16", expr: concat(0, src("a"), transpose(src("a"))) },
          { name: "ok", dtype: "F16", expr: src("a") },
          { name: "ints", dtype: "F32", expr: src("ids") },
          { name: "i8", dtype: "I8", expr: src("a") },
        ],
      },
      { file: "rank0.safetensors", tensors: [] },
      { file: "../escape.safetensors", tensors: [] },
    ] as unknown as RankFilePlan[];
    const err = await writeCheckpointFiles(ckpt, plans, out).catch((e: unknown) => e);
    await ckpt.close();
    expect(err).toBeInstanceOf(ConvertError);
    expect((err as ConvertError).problems).toEqual([
      `rank0.safetensors: tensor "missing": source tensor 'nope' is not in the checkpoint`,
      `rank0.safetensors: tensor "bad-slice": slice [2, 9) out of range for dim 1 of [4,6]`,
      `rank0.safetensors: tensor "bad-concat": concat on dim 0: [6,4] does not fit [4,6]`,
      `rank0.safetensors: tensor "ok": tensor name appears twice in this file`,
      `rank0.safetensors: tensor "ints": source tensor "ids" is I32; only F32, F16 and BF16 sources can be converted`,
      `rank0.safetensors: tensor "i8": dtype "I8" is not F32, F16 or BF16`,
      `rank0.safetensors: file name appears in more than one plan`,
      `../escape.safetensors: file name "../escape.safetensors" must be a plain file name inside the output directory`,
    ]);
    expect((err as Error).message).toMatch(/^8 problems in the conversion plan: rank0\.safetensors: tensor "missing"/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/); // validation failed before the directory was made
  });

  test("blockBytes must be a usable size", async () => {
    const dir = await newDir();
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "a", dtype: "F32", shape: [1], data: new Float32Array(1) }]);
    const ckpt = await openCheckpoint(dir);
    await expect(writeCheckpointFiles(ckpt, [], dir, { blockBytes: 2 })).rejects.toThrow(/blockBytes must be an integer >= 4, got 2/);
    await ckpt.close();
  });
});

describe("failures leave nothing behind", () => {
  async function twoFileSetup() {
    const dir = await newDir();
    const data = new Uint16Array(4096).map((_, i) => 0x3c00 + (i % 512));
    await writeSafetensors(join(dir, "model.safetensors"), [{ name: "w", dtype: "F16", shape: [64, 64], data }]);
    const plans: RankFilePlan[] = [0, 1].map((r) => ({
      file: `rank${r}.safetensors`,
      tensors: [{ name: "w", dtype: "BF16", expr: slice(src("w"), 1, 32 * r, 32 * (r + 1)) }],
    }));
    return { dir, plans, out: await newDir() };
  }

  test("an error thrown mid-way (here by onProgress, in the second file) removes every output and temp file", async () => {
    const { dir, plans, out } = await twoFileSetup();
    const ckpt = await openCheckpoint(dir);
    let calls = 0;
    const onProgress = () => {
      if (++calls === 5) throw new Error("interrupted");
    };
    await expect(writeCheckpointFiles(ckpt, plans, out, { blockBytes: 1024, onProgress })).rejects.toThrow("interrupted");
    await ckpt.close();
    expect(calls).toBe(5); // 4 blocks per file: the first file was complete when the error came
    expect(await readdir(out)).toEqual([]);
  });

  test("a source file truncated after opening fails with the file and tensor named, leaving nothing", async () => {
    const { dir, plans, out } = await twoFileSetup();
    const ckpt = await openCheckpoint(dir);
    await truncate(join(dir, "model.safetensors"), 4000);
    const err = await writeCheckpointFiles(ckpt, plans, out, { blockBytes: 1024 }).catch((e: unknown) => e);
    await ckpt.close();
    expect((err as Error).message).toMatch(/model\.safetensors: tensor "w": unexpected end of file at byte \d+/);
    expect(await readdir(out)).toEqual([]);
  });
});
