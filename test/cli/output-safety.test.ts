// Every command that writes follows one rule (src/io/output-guard.ts): the red-team cases that lost data
// (../shared/research/redteam-2026-12-07.md D1-D3) now fail with one line, exit 1, and leave every file in place.

import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OUTPUT_MARKER } from "../../src/io/output-guard.ts";
import { FIXTURES } from "../golden.ts";
import { kiln } from "./kiln.ts";

const root = mkdtempSync(join(tmpdir(), "kiln-outsafe-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const MODEL = resolve("models/llama.ts");
const OP = resolve("examples/fused_add_rms_norm/op.ts");

/** A project folder: a checkpoint, notes and sources that must survive every refused command. */
function sandbox(name: string): { dir: string; ckpt: string; snapshot: () => string[] } {
  const dir = join(root, name);
  mkdirSync(join(dir, "src"), { recursive: true });
  cpSync(`${FIXTURES}llama`, join(dir, "ckpt"), { recursive: true });
  writeFileSync(join(dir, "notes.txt"), "my precious notes");
  writeFileSync(join(dir, "src", "main.py"), "code");
  const snapshot = () =>
    readdirSync(dir, { recursive: true })
      .map(String)
      .sort()
      .map((f) => `${f}:${existsSync(join(dir, f)) && !f.endsWith("ckpt") && !f.endsWith("src") ? readFileSync(join(dir, f)).length : "d"}`);
  return { dir, ckpt: join(dir, "ckpt"), snapshot };
}

async function inDir<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await f();
  } finally {
    process.chdir(cwd);
  }
}

const compile = (hf: string, out: string, ...more: string[]) => kiln(["compile", MODEL, "--hf", hf, "--out", out, "--no-typecheck", "--json", ...more]);

describe("output safety", () => {
  const refused: [string, (s: ReturnType<typeof sandbox>) => string[], RegExp][] = [
    ["--out .", (_s) => ["compile", MODEL, "--hf", "ckpt", "--out", ".", "--force"], /over the current directory/],
    ['--out "" (an unset variable)', () => ["compile", MODEL, "--hf", "ckpt", "--out", "", "--force"], /--out is empty/],
    ["--out the --hf folder", (s) => ["compile", MODEL, "--hf", s.ckpt, "--out", s.ckpt, "--force"], /over its own input/],
    [
      "--out a parent of --hf",
      (s) => ["compile", MODEL, "--hf", s.ckpt, "--out", s.dir, "--force"],
      /holds the (input|current directory)|over the current directory/,
    ],
    ["--out a file", (s) => ["compile", MODEL, "--hf", s.ckpt, "--out", join(s.dir, "notes.txt"), "--force"], /is a regular file, not a directory/],
    ["--out a folder Kiln did not write", (s) => ["compile", MODEL, "--hf", s.ckpt, "--out", join(s.dir, "src")], /not written by Kiln .*--force/],
    ["verify-op --out a user folder", (s) => ["verify-op", OP, "--out", join(s.dir, "src")], /not written by Kiln/],
    [
      "run --logits-out the checkpoint's weights",
      (s) => ["run", MODEL, "--hf", s.ckpt, "--ids", "1,2", "--logits-out", join(s.ckpt, "model.safetensors")],
      /inside the input|its own input/,
    ],
    [
      "graph --out the checkpoint's config",
      (s) => ["graph", MODEL, "--hf", s.ckpt, "--format", "text", "--out", join(s.ckpt, "config.json")],
      /inside the input/,
    ],
    [
      "calibrate --out the model file",
      (s) => ["calibrate", join(s.dir, "src", "main.py"), "--hf", s.ckpt, "--out", join(s.dir, "src", "main.py")],
      /over its own input/,
    ],
    ["graph --out a directory", (s) => ["graph", MODEL, "--hf", s.ckpt, "--format", "text", "--out", join(s.dir, "src")], /is a directory, not a file/],
  ];
  for (const [what, args, msg] of refused)
    it(`refuses ${what}, exit 1, one line, nothing lost`, async () => {
      const s = sandbox(what.replace(/\W+/g, "_"));
      const before = s.snapshot();
      const r = await inDir(s.dir, () => kiln([...args(s), ...(args(s)[0] === "verify-op" ? [] : ["--no-typecheck"])]));
      expect(r.code).toBe(1);
      expect(r.err).toMatch(msg);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).not.toMatch(/internal error|\n\s+at /);
      expect(s.snapshot()).toEqual(before);
    });

  it("replaces its own earlier output without --force, and a user folder only with --force", async () => {
    const s = sandbox("replace");
    const out = join(s.dir, "out");
    expect((await compile(s.ckpt, out)).code).toBe(0);
    expect(existsSync(join(out, OUTPUT_MARKER))).toBe(true);
    writeFileSync(join(out, "stale.txt"), "x");
    expect((await compile(s.ckpt, out)).code).toBe(0); // its own output: replaced whole
    expect(existsSync(join(out, "stale.txt"))).toBe(false);
    const r = await compile(s.ckpt, join(s.dir, "src"), "--force");
    expect(r.code).toBe(0);
    expect(existsSync(join(s.dir, "src", "main.py"))).toBe(false);
    expect(readdirSync(s.dir).filter((n) => n.includes("kiln-"))).toEqual([]);
  });
});
