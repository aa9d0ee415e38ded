// The seeded fuzz and fault harness (issue 17; the red-team report ../shared/research/redteam-2026-12-07.md is the
// model): hostile inputs as a new user would give them, through the real CLI entry point (`main`, in process) or
// the real binary where a process must die. Each case is classed like the report: clean (exit 1, one `kiln:` line,
// no stack), accepted (exit 0, output checked), crash (internal error, stack), hang, silent-wrong (exit 0 but the
// output is wrong), data lost (a file that existed is gone or changed), injected (a printed command ran a path).
// The table is printed at the end; the tests assert zero crashes, hangs, silent-wrong outputs, data losses and
// injections. Seeded (KILN_FUZZ_SEED, default 17) and bounded (KILN_FUZZ_CASES mutations, default 24).

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { llamaTensors } from "../../bench/synthetic-llama.ts";
import { SafetensorsWriter } from "../../src/weights/safetensors.ts";
import { SafetensorsFile } from "../../src/weights/safetensors.ts";
import { FIXTURES } from "../golden.ts";
import { kiln } from "../cli/kiln.ts";
import { commandLines, HOSTILE_NAMES, makePaster } from "./shell-paste.ts";
import { copyFixture, patchConfig } from "./checkpoints.ts";

const SEED = Number(process.env.KILN_FUZZ_SEED ?? 17);
const CASES = Number(process.env.KILN_FUZZ_CASES ?? 24);
const root = mkdtempSync(join(tmpdir(), "kiln-harness-"));
const MODEL = resolve("models/llama.ts");
const BIN = resolve("bin/kiln.js");

type Outcome = "clean" | "accepted" | "crash" | "hang" | "silent-wrong" | "data lost" | "injected" | "skipped";
const OUTCOMES: readonly Outcome[] = ["clean", "accepted", "crash", "hang", "silent-wrong", "data lost", "injected", "skipped"];
const table = new Map<string, Map<Outcome, number>>();
const examples: string[] = [];
function record(category: string, outcome: Outcome, what: string, detail = ""): Outcome {
  const row = table.get(category) ?? new Map<Outcome, number>();
  row.set(outcome, (row.get(outcome) ?? 0) + 1);
  table.set(category, row);
  if (!["clean", "accepted", "skipped"].includes(outcome)) examples.push(`${category}: ${outcome}: ${what}: ${detail.slice(0, 300)}`);
  return outcome;
}
const bad = (category: string) =>
  OUTCOMES.filter((o) => !["clean", "accepted", "skipped"].includes(o)).reduce((a, o) => a + (table.get(category)?.get(o) ?? 0), 0);

afterAll(() => {
  const rows = [...table].map(([c, m]) => [c, ...OUTCOMES.map((o) => String(m.get(o) ?? 0))]);
  const head = ["category", ...OUTCOMES];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((x, i) => x.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(
    [
      `reliability harness (seed ${SEED}, ${CASES} mutations per kind)`,
      line(head),
      line(widths.map((w) => "-".repeat(w))),
      ...rows.map(line),
      ...examples,
    ].join("\n"),
  );
  rmSync(root, { recursive: true, force: true });
});

/** mulberry32: a small seeded PRNG, so any case can be replayed from the seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) };
}

interface Ran {
  code: number;
  out: string;
  err: string;
  timedOut: boolean;
}

/** The CLI in process, with a time limit (a hang is recorded, not waited for forever). */
async function cli(args: string[], limitMs = 30_000): Promise<Ran> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Ran>((res) => (timer = setTimeout(() => res({ code: -1, out: "", err: "", timedOut: true }), limitMs)));
  const r = await Promise.race([kiln(args).then((x) => ({ ...x, timedOut: false })), timeout]);
  clearTimeout(timer);
  return r;
}

/** clean: exit 1 with `kiln:` lines and no internal error or stack; accepted: exit 0; else crash or hang. */
function classify(r: Ran): Outcome {
  if (r.timedOut) return "hang";
  if (r.code === 0) return "accepted";
  const userError = r.err.startsWith("kiln: ") && !/internal error|\n\s+at |node:internal|FATAL ERROR/.test(r.err) && r.err.length < 8000;
  return userError ? "clean" : "crash";
}

/** Non-finite logits in an accepted run's --logits-out mean it went through with bad numbers. */
async function finiteLogits(file: string): Promise<boolean> {
  const f = await SafetensorsFile.open(file);
  try {
    return (await f.readF32("logits")).every(Number.isFinite);
  } finally {
    await f.close();
  }
}

let counter = 0;
const fresh = (name: string) => {
  const d = join(root, `${name}-${counter++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

// ------------------------------------------------------------------------------------------------ safetensors

function mutate(bytes: Buffer, r: ReturnType<typeof rng>): { bytes: Buffer; what: string } {
  const b = Buffer.from(bytes);
  const headerLen = Number(b.readBigUInt64LE(0));
  switch (r.int(0, 5)) {
    case 0: {
      const at = r.int(8, 8 + headerLen - 1);
      b[at] = r.int(0, 255);
      return { bytes: b, what: `header byte ${at} = ${b[at]}` };
    }
    case 1: {
      const at = r.int(8 + headerLen, b.length - 1);
      b[at] = r.int(0, 255);
      return { bytes: b, what: `data byte ${at} = ${b[at]}` };
    }
    case 2: {
      const n = r.int(0, b.length - 1);
      return { bytes: b.subarray(0, n), what: `truncated to ${n} bytes` };
    }
    case 3: {
      const v = [0n, 1n, BigInt(headerLen - 1), BigInt(headerLen + 1), 2n ** 31n, 2n ** 62n, 2n ** 64n - 1n][r.int(0, 6)]!;
      b.writeBigUInt64LE(v, 0);
      return { bytes: b, what: `header length ${v}` };
    }
    case 4: {
      const header = JSON.parse(b.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, { dtype?: string; shape?: unknown; data_offsets?: unknown }>;
      const names = Object.keys(header).filter((k) => k !== "__metadata__");
      const name = names[r.int(0, names.length - 1)]!;
      const t = header[name]!;
      const edits = [
        () => (t.dtype = ["I32", "U8", "F64", "F4", "__proto__", "BOOL", "F16"][r.int(0, 6)]),
        () => (t.shape = [[-1], [2 ** 53], [0], "x", [1, 2, 3, 4, 5]][r.int(0, 4)]),
        () => (t.data_offsets = [[0, 0], [5, 3], [0, 1e300], [-4, 4], "a"][r.int(0, 4)]),
        () => delete header[name],
      ];
      edits[r.int(0, edits.length - 1)]!();
      let text = JSON.stringify(header);
      text += " ".repeat(Math.max(0, headerLen - text.length));
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
      return {
        bytes: Buffer.concat([head, Buffer.from(text), b.subarray(8 + headerLen)]),
        what: `header edit of "${name}": ${JSON.stringify(t).slice(0, 80)}`,
      };
    }
    default: {
      const extra = r.int(1, 4096);
      return { bytes: Buffer.concat([b, Buffer.alloc(extra, 0xff)]), what: `${extra} trailing bytes` };
    }
  }
}

describe("reliability harness", () => {
  it("0. the classifier catches planted failures (the checks can fail)", () => {
    expect(classify({ code: 1, out: "", err: "kiln: internal error: Error: boom\n    at f (x.ts:1:1)\n", timedOut: false })).toBe("crash");
    expect(classify({ code: 1, out: "", err: "Error: Cannot find module 'kiln'\nnode:internal/modules/cjs/loader:1207\n", timedOut: false })).toBe("crash");
    expect(classify({ code: 1, out: "", err: `kiln: ${"x".repeat(9000)}\n`, timedOut: false })).toBe("crash");
    expect(classify({ code: -1, out: "", err: "", timedOut: true })).toBe("hang");
    expect(classify({ code: 1, out: "", err: "kiln: --out .: refusing to write over the current directory\n", timedOut: false })).toBe("clean");
  });

  it("1. safetensors mutations through run and compile", async () => {
    const r = rng(SEED);
    const original = readFileSync(`${FIXTURES}llama/model.safetensors`);
    for (let i = 0; i < CASES; i++) {
      const { bytes, what } = mutate(original, r);
      const ckpt = copyFixture("llama", fresh("mut"));
      writeFileSync(join(ckpt, "model.safetensors"), bytes);
      const logits = join(root, `logits-${counter++}.safetensors`);
      const run = await cli(["run", MODEL, "--hf", ckpt, "--ids", "1,2,3", "--max-new-tokens", "1", "--logits-out", logits, "--no-typecheck"]);
      let o = classify(run);
      if (o === "accepted" && !(await finiteLogits(logits))) o = "silent-wrong";
      record("safetensors mutations", o, `run: ${what}`, run.err);
      const out = join(root, `out-${counter++}`);
      const comp = await cli(["compile", MODEL, "--hf", ckpt, "--out", out, "--no-typecheck", "--json"]);
      o = classify(comp);
      if (o === "clean" && existsSync(out)) o = "crash"; // a failed compile must leave no output
      record("safetensors mutations", o, `compile: ${what}`, comp.err);
    }
    expect(bad("safetensors mutations")).toBe(0);
  }, 120_000);

  it("2. special files and layouts as checkpoints", async () => {
    const cases: [string, (dir: string) => void][] = [
      ["model.safetensors is a FIFO", (d) => spawnSync("mkfifo", [join(d, "model.safetensors")])],
      ["model.safetensors is a directory", (d) => mkdirSync(join(d, "model.safetensors"))],
      ["model.safetensors links to /dev/zero", (d) => spawnSync("ln", ["-s", "/dev/zero", join(d, "model.safetensors")])],
      ["--hf names a file", () => {}],
    ];
    for (const [what, make] of cases) {
      const dir = fresh("special");
      cpSync(`${FIXTURES}llama/config.json`, join(dir, "config.json"));
      make(dir);
      const hf = what.startsWith("--hf") ? join(dir, "config.json") : dir;
      // A child process with a time limit: a FIFO that blocks an open would block this process too.
      const p = spawnSync(process.execPath, [BIN, "run", MODEL, "--hf", hf, "--ids", "1", "--no-typecheck"], { encoding: "utf8", timeout: 30_000 });
      const o = classify({ code: p.status ?? -1, out: p.stdout, err: p.stderr, timedOut: p.signal === "SIGTERM" });
      record("special files", o, what, p.stderr);
    }
    expect(bad("special files")).toBe(0);
  }, 120_000);

  it("3. config.json matrix through run, compile, plan and inspect", async () => {
    const configs: [string, Record<string, unknown>][] = [
      ["heads 5 (not dividing hidden 64)", { num_attention_heads: 5 }],
      ["kv heads 3", { num_key_value_heads: 3 }],
      ["layers 1,000,000", { num_hidden_layers: 1_000_000 }],
      ["layers 1e12", { num_hidden_layers: 1e12 }],
      ["heads 2^31", { num_attention_heads: 2 ** 31 }],
      ["hidden 1e9", { hidden_size: 1e9 }],
      ["vocab 0", { vocab_size: 0 }],
      ["negative layers", { num_hidden_layers: -2 }],
      ["string hidden", { hidden_size: "64" }],
      ["dtype junk", { torch_dtype: "float8; rm -rf /", dtype: undefined }],
      ["dtype number", { torch_dtype: 16, dtype: undefined }],
      ["max positions 1", { max_position_embeddings: 1 }],
      ["eps 0", { rms_norm_eps: 0 }],
      ["architectures wrong", { architectures: ["GPT2LMHeadModel"] }],
      ["unknown rope type", { rope_parameters: { rope_type: "yarn", rope_theta: 10000 } }],
      ["1e400 (Infinity)", { hidden_size: "1e400" }],
    ];
    for (const [what, fields] of configs) {
      const ckpt = copyFixture("llama", fresh("cfg"));
      patchConfig(ckpt, fields);
      const commands: [string, string[]][] = [
        ["run", ["run", MODEL, "--hf", ckpt, "--ids", "1,2,3", "--max-new-tokens", "1"]],
        ["compile", ["compile", MODEL, "--hf", ckpt, "--out", join(root, `out-${counter++}`), "--json"]],
        ["plan", ["plan", MODEL, "--config", join(ckpt, "config.json")]],
        ["inspect", ["inspect", MODEL, "--hf", ckpt, "--json"]],
      ];
      for (const [name, args] of commands) {
        const t0 = performance.now();
        const res = await cli([...args, "--no-typecheck"], 20_000);
        let o = classify(res);
        if (o !== "hang" && performance.now() - t0 > 15_000) o = "hang"; // bounded work: a config may not take minutes
        record("config.json matrix", o, `${name}: ${what}`, res.err);
      }
    }
    expect(bad("config.json matrix")).toBe(0);
  }, 120_000);

  it("4. flags: huge and malformed counts and ids", async () => {
    const ckpt = `${FIXTURES}llama`;
    const cases: string[][] = [
      ["compile", MODEL, "--hf", ckpt, "--out", join(root, `o-${counter++}`), "--tp", "99999999999999999999"],
      ["compile", MODEL, "--hf", ckpt, "--out", join(root, `o-${counter++}`), "--pp", "3"],
      ["compile", MODEL, "--hf", ckpt, "--out", join(root, `o-${counter++}`), "--tp", "3"],
      ["compile", MODEL, "--hf", ckpt, "--out", join(root, `o-${counter++}`), "--dtype", "float64"],
      ["plan", MODEL, "--hf", ckpt, "--tp", "65537"],
      ["run", MODEL, "--hf", ckpt, "--ids", "1,,2,99999999999999999999"],
      ["run", MODEL, "--hf", ckpt, "--ids", "1", "--max-new-tokens", "-1"],
    ];
    for (const args of cases) record("flags", classify(await cli([...args, "--no-typecheck"])), args.slice(4).join(" "));
    expect(bad("flags")).toBe(0);
  }, 60_000);

  it("5. output paths: nothing that existed is lost", async () => {
    const sandbox = fresh("paths");
    const ckpt = copyFixture("llama", join(sandbox, "ckpt"));
    writeFileSync(join(sandbox, "notes.txt"), "my precious notes");
    mkdirSync(join(sandbox, "src"));
    writeFileSync(join(sandbox, "src", "main.py"), "code");
    const digest = () =>
      (readdirSync(sandbox, { recursive: true }) as string[])
        .map(String)
        .sort()
        .map((f) => {
          const p = join(sandbox, f);
          return statSync(p).isFile() ? `${f}:${createHash("sha256").update(readFileSync(p)).digest("hex")}` : `${f}/`;
        })
        .join("\n");
    const before = digest();
    const cwd = process.cwd();
    process.chdir(sandbox);
    try {
      const outs = [".", "", "..", "/", "ckpt", sandbox, "notes.txt", "src", join("ckpt", "model.safetensors"), process.env.HOME ?? "/root"];
      for (const out of outs) {
        // --force may replace "src" (a folder the user names, authorised): that case is in test/cli/output-safety.test.ts.
        for (const extra of out === "src" ? [[]] : [[], ["--force"]]) {
          const res = await cli(["compile", MODEL, "--hf", "ckpt", "--out", out, "--no-typecheck", ...extra]);
          const lost = digest() !== before;
          record("output paths", lost ? "data lost" : classify(res), `compile --out ${JSON.stringify(out)} ${extra.join(" ")}`, res.err);
        }
      }
      const files: string[][] = [
        ["run", MODEL, "--hf", "ckpt", "--ids", "1", "--logits-out", "ckpt/model.safetensors"],
        ["run", MODEL, "--hf", "ckpt", "--ids", "1", "--logits-out", "notes.txt/x"],
        ["graph", MODEL, "--hf", "ckpt", "--format", "text", "--out", "ckpt/config.json"],
        ["graph", MODEL, "--hf", "ckpt", "--format", "text", "--out", "src"],
        ["calibrate", MODEL, "--hf", "ckpt", "--out", MODEL],
      ];
      for (const args of files) {
        const res = await cli([...args, "--no-typecheck"]);
        record("output paths", digest() !== before ? "data lost" : classify(res), args.slice(0, 1).concat(args.slice(-2)).join(" "), res.err);
      }
    } finally {
      process.chdir(cwd);
    }
    expect(bad("output paths")).toBe(0);
    expect(readFileSync(join(ckpt, "model.safetensors")).equals(readFileSync(`${FIXTURES}llama/model.safetensors`))).toBe(true);
  }, 120_000);

  it("6. hostile paths: printed commands and generated Python run nothing", async () => {
    const paster = makePaster(fresh("inject"));
    for (const [i, name] of HOSTILE_NAMES.entries())
      for (const target of ["trtllm-engine", "trtllm-torch"]) {
        const work = fresh("hp");
        const out = join(work, name);
        const res = await cli(["compile", MODEL, "--hf", `${FIXTURES}llama`, "--out", out, "--target", target, "--no-typecheck"]);
        if (res.code !== 0) {
          record("hostile paths", classify(res), `${target} ${i}`, res.err);
          continue;
        }
        const before = paster.pwned().length;
        for (const line of commandLines(res.out)) paster.paste(line, work);
        const py = (readdirSync(out, { recursive: true }) as string[]).map(String).filter((f) => f.endsWith(".py"));
        const parsed = py.every(
          (f) => spawnSync(resolve(".venv/bin/python"), ["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", join(out, f)]).status === 0,
        );
        record(
          "hostile paths",
          paster.pwned().length > before || !parsed ? "injected" : "accepted",
          `${target} --out ${JSON.stringify(name)}`,
          paster.pwned().join(","),
        );
      }
    expect(bad("hostile paths")).toBe(0);
  }, 120_000);

  it("7. ENOSPC on a small tmpfs: one line, no partial files, the previous output intact", async () => {
    const mnt = fresh("enospc");
    if (spawnSync("mount", ["-t", "tmpfs", "-o", "size=400k", "tmpfs", mnt]).status !== 0) {
      record("ENOSPC (tmpfs)", "skipped", "cannot mount a tmpfs here (not root?)");
      console.log("reliability harness: ENOSPC cases skipped: cannot mount a tmpfs (needs root)");
      return;
    }
    try {
      const prev = join(mnt, "out");
      mkdirSync(prev);
      writeFileSync(join(prev, ".kiln-output"), "{}");
      writeFileSync(join(prev, "config.json"), "previous");
      const comp = await cli(["compile", MODEL, "--hf", `${FIXTURES}llama`, "--out", prev, "--no-typecheck"]);
      const intact = readFileSync(join(prev, "config.json"), "utf8") === "previous";
      record("ENOSPC (tmpfs)", !intact ? "data lost" : classify(comp) === "clean" && readdirSync(mnt).length === 1 ? "clean" : "crash", "compile", comp.err);
      writeFileSync(join(mnt, "filler"), Buffer.alloc(400 * 1024 - 8192 - statSync(join(prev, "config.json")).size).fill(1), { flag: "w" });
      const files: [string, string[]][] = [
        ["graph html", ["graph", MODEL, "--hf", `${FIXTURES}llama`, "--format", "html", "--out", join(mnt, "g.html")]],
        [
          "run --logits-out",
          [
            "run",
            MODEL,
            "--hf",
            `${FIXTURES}llama`,
            "--ids",
            Array.from({ length: 64 }, (_, k) => k).join(","),
            "--max-new-tokens",
            "1",
            "--logits-out",
            join(mnt, "l.safetensors"),
          ],
        ],
        ["calibrate", ["calibrate", MODEL, "--hf", `${FIXTURES}llama`, "--out", join(mnt, "calib.json")]],
      ];
      for (const [what, args] of files) {
        const res = await cli([...args, "--no-typecheck"]);
        const target = args[args.length - 1]!;
        const leftovers = readdirSync(mnt).filter((f) => f.includes("kiln-tmp") || f.includes(".tmp-"));
        let o = classify(res);
        if (o === "clean" && (existsSync(target) || leftovers.length)) o = "crash";
        record("ENOSPC (tmpfs)", o, what, `${res.err} ${leftovers.join(",")}`);
      }
    } finally {
      spawnSync("umount", [mnt]);
    }
    expect(bad("ENOSPC (tmpfs)")).toBe(0);
  }, 120_000);

  it("8. kill -9 mid-compile, then a rerun cleans up and the previous output survives", async () => {
    const ckpt = fresh("big");
    writeFileSync(join(ckpt, "config.json"), JSON.stringify(BIG));
    await writeBigCheckpoint(join(ckpt, "model.safetensors"));
    for (const previous of [false, true]) {
      const parent = fresh("kill");
      const out = join(parent, "out");
      let prevDigest = "";
      if (previous) {
        expect((await cli(["compile", MODEL, "--hf", ckpt, "--out", out, "--no-typecheck", "--json"])).code).toBe(0);
        prevDigest =
          createHash("sha256")
            .update(readFileSync(join(out, "config.json")))
            .digest("hex") + readdirSync(out).sort().join(",");
      }
      const child = spawn(process.execPath, [BIN, "compile", MODEL, "--hf", ckpt, "--out", out, "--dtype", "float32", "--no-typecheck"], { stdio: "ignore" });
      const sawTemp = await waitFor(() => readdirSync(parent).some((f) => f.includes("kiln-tmp")), 60_000);
      child.kill("SIGKILL");
      await new Promise((res) => child.on("exit", res));
      const leaked = readdirSync(parent).filter((f) => f.includes("kiln-tmp"));
      const intact =
        !previous ||
        createHash("sha256")
          .update(readFileSync(join(out, "config.json")))
          .digest("hex") +
          readdirSync(out).sort().join(",") ===
          prevDigest;
      const looksComplete = !previous && existsSync(out);
      const rerun = await cli(["compile", MODEL, "--hf", ckpt, "--out", out, "--no-typecheck", "--json"]);
      const left = readdirSync(parent).filter((f) => f.includes("kiln-tmp") || f.includes("kiln-old"));
      const o: Outcome = !intact || looksComplete ? "data lost" : rerun.code !== 0 || left.length ? "crash" : "clean";
      record(
        "kill -9 mid-compile",
        sawTemp ? o : "skipped",
        `previous output: ${previous}; temp left by the kill: ${leaked.length}; after rerun: ${left.length}`,
        rerun.err,
      );
    }
    expect(bad("kill -9 mid-compile")).toBe(0);
  }, 120_000);
});

/** A LLaMA big enough (about 100 MB of BF16) that a compile is still running when the test kills it. */
const BIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 512,
  intermediate_size: 1376,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  num_hidden_layers: 8,
  vocab_size: 32000,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
};

async function writeBigCheckpoint(path: string): Promise<void> {
  const tensors = llamaTensors(BIG as never);
  const w = await SafetensorsWriter.create(path, tensors, { format: "pt" });
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const words = new Uint16Array(n).fill(0x3c00); // 0.0078125 in BF16: finite everywhere
    await w.write(t.name, new Uint8Array(words.buffer));
  }
  await w.finish();
}

async function waitFor(cond: () => boolean, limitMs: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (cond()) return true;
    await new Promise((res) => setTimeout(res, 2));
  }
  return false;
}
