// Printed commands run nothing a path contains. `kiln compile` (all three targets, and custom code with a Python
// plugin), `kiln triton` and the `kiln build` instructions are run with hostile output paths; each printed shell
// line is pasted into bash with stub programs on PATH that record their arguments. Nothing may be created by the
// paths ($(), backticks, quotes, ;, newlines), every stub must receive each path as one exact argument, and every
// Python snippet must parse (ast) with the path as one string constant.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planBuild } from "../../src/cli/commands/build.ts";
import { FIXTURES } from "../golden.ts";
import { kiln } from "../cli/kiln.ts";
import { commandLines, HOSTILE_NAMES, makePaster } from "./shell-paste.ts";

const root = mkdtempSync(join(tmpdir(), "kiln-inject-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const paster = makePaster(root);
const PY = resolve(".venv/bin/python");

function paste(line: string, cwd: string): string[][] {
  const r = paster.paste(line, cwd);
  expect(r.status, `${line}\n${r.stderr}`).toBe(0);
  return r.calls;
}

const pwned = () => paster.pwned();

/** The Python expression of the single argument passed to `call` in `source`, checked with the ast module. */
function pythonStringArgs(source: string): string[] {
  const check =
    "import ast, json, sys\ntree = ast.parse(sys.stdin.read())\nconsts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]\ncalls = sorted({(n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id) for n in ast.walk(tree) if isinstance(n, ast.Call)})\nprint(json.dumps({'consts': consts, 'calls': calls}))";
  const r = spawnSync(PY, ["-c", check], { input: source, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const { consts, calls } = JSON.parse(r.stdout) as { consts: string[]; calls: string[] };
  expect(
    calls.every((c) => ["LLM", "print", "generate", "from_pretrained"].includes(c)),
    `calls ${calls}`,
  ).toBe(true);
  return consts;
}

describe("printed commands with hostile paths", () => {
  const cases = HOSTILE_NAMES.map((n, i) => ({ n, i }));
  for (const target of ["trtllm-engine", "trtllm-torch", "hf"] as const)
    it(`kiln compile --target ${target}: pasted lines run nothing, and each path stays one argument`, async () => {
      for (const { n, i } of cases) {
        const work = join(root, `${target}-${i}`);
        mkdirSync(work);
        const out = join(work, n);
        const r = await kiln([
          "compile",
          "models/llama.ts",
          "--hf",
          `${FIXTURES}llama`,
          "--out",
          out,
          "--target",
          target,
          "--no-typecheck",
          "--tp",
          target === "hf" ? "1" : "2",
        ]);
        expect(r.code, r.err).toBe(0);
        if (target === "hf") {
          const load = r.out
            .split("\n")
            .find((l) => l.includes("from_pretrained"))!
            .replace(/^\s*model = /, "");
          expect(pythonStringArgs(load)).toContain(out);
          continue;
        }
        const lines = commandLines(r.out);
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) {
          const calls = paste(line, work);
          expect(calls.length).toBe(1);
          const argv = calls[0]!;
          if (argv[0] === "python3") expect(pythonStringArgs(argv[2]!)).toContain(out);
          else expect(argv).toContain(out);
        }
        expect(pwned()).toEqual([]);
      }
    }, 120_000);

  it("custom code with a Python plugin: the PYTHONPATH prefix and trtllm-build line", async () => {
    for (const { n, i } of cases.slice(0, 4)) {
      const work = join(root, `plugin-${i}`);
      mkdirSync(work);
      const out = join(work, n);
      const r = await kiln(["compile", "examples/llama_fused_norm/model.ts", "--hf", `${FIXTURES}llama`, "--out", out, "--no-typecheck"]);
      expect(r.code, r.err).toBe(0);
      const line = commandLines(r.out).find((l) => l.includes("trtllm-build"))!;
      expect(line).toMatch(/^PYTHONPATH=/);
      const calls = paste(`${line}; printf '%s' "$PYTHONPATH" > pp.txt`, work);
      expect(calls[0]).toContain(`${out}/model.py`);
      expect(pwned()).toEqual([]);
    }
  }, 120_000);

  it("kiln triton: the launch lines keep each path one argument", async () => {
    const ckpt = join(root, "triton-ckpt");
    mkdirSync(ckpt);
    writeFileSync(join(ckpt, "config.json"), JSON.stringify({ mapping: { tp_size: 2, pp_size: 1 } }));
    for (const { n, i } of cases.filter(({ n }) => !n.includes("\n"))) {
      const work = join(root, `triton-${i}`);
      mkdirSync(work);
      const repo = join(work, n);
      const r = await kiln(["triton", ckpt, "--engine-dir", "/engines", "--tokenizer", "/tok", "--repo", repo]);
      expect(r.code, r.err).toBe(0);
      for (const line of commandLines(r.out)) {
        const argv = paste(line, work)[0]!;
        expect(argv.some((a) => a.endsWith(repo))).toBe(true);
      }
      expect(pwned()).toEqual([]);
    }
  });

  it("kiln build: the printed instructions keep each path one argument", () => {
    for (const { n, i } of cases) {
      const work = join(root, `build-${i}`);
      mkdirSync(work);
      let message = "";
      try {
        planBuild({ dockerWithNvidia: false }, join(work, n), join(work, `${n}-engines`), 1);
      } catch (e) {
        message = (e as Error).message;
      }
      const lines = commandLines(message);
      expect(lines.length).toBe(3);
      for (const line of lines) {
        const argv = paste(line, work)[0]!;
        if (argv[0] === "python3") expect(argv).toContain(join(work, n));
      }
      expect(pwned()).toEqual([]);
    }
  });

  it("a planted unquoted command is caught (the check can fail)", () => {
    const work = join(root, "planted");
    mkdirSync(work);
    paste(`trtllm-build --checkpoint_dir ${join(work, "x$(touch PWNED_planted)")}`, work);
    expect(pwned().some((f) => f.endsWith("PWNED_planted"))).toBe(true);
    rmSync(join(work, "PWNED_planted"));
  });
});
