// Printed commands run nothing a path contains. `kiln compile` (all three targets, and custom code with a Python
// plugin), `kiln triton` and the `kiln build` instructions are run with hostile output paths; each printed shell
// line is pasted into bash with stub programs on PATH that record their arguments. Nothing may be created by the
// paths ($(), backticks, quotes, ;, newlines), every stub must receive each path as one exact argument, and every
// Python snippet must parse (ast) with the path as one string constant.

import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planBuild } from "../../src/cli/commands/build.ts";
import { FIXTURES } from "../golden.ts";
import { kiln } from "../cli/kiln.ts";

/** Paths that run something if a printed command pastes them unquoted. Each names its own marker file. */
export const HOSTILE_NAMES: readonly string[] = [
  "dollar$(touch PWNED_dollar)",
  "tick`touch PWNED_tick`",
  "single'; touch PWNED_single; '",
  'double"; touch PWNED_double; "',
  "semi;touch PWNED_semi",
  "space and * glob",
  "newline\ntouch PWNED_newline",
  "py' + __import__('os').system('touch PWNED_pysingle') + '",
  'py" + __import__("os").system("touch PWNED_pydouble") + "',
  "amp&&touch PWNED_amp",
  "-dash",
];

const root = mkdtempSync(join(tmpdir(), "kiln-inject-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const stubs = join(root, "bin");
const argvLog = join(root, "argv.log");
mkdirSync(stubs);
// A stub records its name and arguments, NUL-separated, one record per call, and does nothing else.
for (const name of ["trtllm-build", "trtllm-serve", "python3", "docker", "mpirun"]) {
  writeFileSync(join(stubs, name), `#!/bin/bash\n{ printf '%s\\0' ${name} "$@"; printf '\\n\\0'; } >> ${JSON.stringify(argvLog)}\n`);
  chmodSync(join(stubs, name), 0o755);
}
const PY = resolve(".venv/bin/python");

/** Runs one printed line in bash inside `cwd`; returns the argument vectors the stubs saw. */
function paste(line: string, cwd: string): string[][] {
  writeFileSync(argvLog, "");
  const r = spawnSync("bash", ["-c", line], { cwd, env: { PATH: `${stubs}:/usr/bin:/bin`, HOME: root }, encoding: "utf8" });
  expect(r.status, `${line}\n${r.stderr}`).toBe(0);
  return readFileSync(argvLog, "utf8").split("\n\0").filter((rec) => rec.length).map((rec) => rec.split("\0").filter((_, i, a) => i < a.length - 1));
}

function pwned(): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).filter((f) => String(f).includes("PWNED_") && !String(f).includes("$") && existsSync(join(root, f)) && /(^|\/)PWNED_\w+$/.test(String(f)));
}

/** The Python expression of the single argument passed to `call` in `source`, checked with the ast module. */
function pythonStringArgs(source: string): string[] {
  const check = "import ast, json, sys\ntree = ast.parse(sys.stdin.read())\nconsts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]\ncalls = sorted({(n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id) for n in ast.walk(tree) if isinstance(n, ast.Call)})\nprint(json.dumps({'consts': consts, 'calls': calls}))";
  const r = spawnSync(PY, ["-c", check], { input: source, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const { consts, calls } = JSON.parse(r.stdout) as { consts: string[]; calls: string[] };
  expect(calls.every((c) => ["LLM", "print", "generate", "from_pretrained"].includes(c)), `calls ${calls}`).toBe(true);
  return consts;
}

/** The shell commands in printed text: each starts at an indented line beginning with a command word and ends at
 *  the first newline outside single quotes (the only quoting Kiln prints), as a shell would read it. */
export function commandLines(text: string): string[] {
  const found: string[] = [];
  const start = /(^|\n) +(?=trtllm-build|trtllm-serve|PYTHONPATH=|python3|docker|mpirun|cd )/g;
  for (let m = start.exec(text); m; m = start.exec(text)) {
    let i = m.index + m[0].length;
    let quoted = false;
    const from = i;
    for (; i < text.length && (quoted || text[i] !== "\n"); i++) if (text[i] === "'") quoted = !quoted;
    found.push(text.slice(from, i));
    start.lastIndex = i;
  }
  return found;
}

describe("printed commands with hostile paths", () => {
  const cases = HOSTILE_NAMES.map((n, i) => ({ n, i }));
  for (const target of ["trtllm-engine", "trtllm-torch", "hf"] as const)
    it(`kiln compile --target ${target}: pasted lines run nothing, and each path stays one argument`, async () => {
      for (const { n, i } of cases) {
        const work = join(root, `${target}-${i}`);
        mkdirSync(work);
        const out = join(work, n);
        const r = await kiln(["compile", "models/llama.ts", "--hf", `${FIXTURES}llama`, "--out", out, "--target", target, "--no-typecheck", "--tp", target === "hf" ? "1" : "2"]);
        expect(r.code, r.err).toBe(0);
        if (target === "hf") {
          const load = r.out.split("\n").find((l) => l.includes("from_pretrained"))!.replace(/^\s*model = /, "");
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
