// The output rule (output-guard.ts): what Kiln may replace, what it always refuses, atomic single files, and the
// sweep of temp paths left by killed runs.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OutputError } from "./kiln-error.ts";
import { checkOutputDir, checkOutputFile, OUTPUT_MARKER, removeStaleTemps, writeOutputDir, writeOutputDirSync, writeOutputFile } from "./output-guard.ts";
import { registeredTemps } from "./signal-cleanup.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kiln-guard-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const rules = (o: { inputs?: string[]; force?: boolean } = {}) => ({ flag: "--out", ...o });

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

describe("checkOutputDir", () => {
  it("always refuses '', '.', '/', $HOME, the cwd's ancestors and non-directories, even with --force", () => {
    const force = rules({ force: true });
    expect(() => checkOutputDir("", force)).toThrow(/--out is empty \(an unset variable\?\)/);
    expect(() => checkOutputDir("  ", force)).toThrow(OutputError);
    expect(() => checkOutputDir(".", force)).toThrow(/over the current directory/);
    expect(() => checkOutputDir("..", force)).toThrow(/holds the current directory/);
    expect(() => checkOutputDir("/", force)).toThrow(/root directory/);
    expect(() => checkOutputDir(homedir(), force)).toThrow(/home directory|current directory/);
    writeFileSync(join(dir, "notes.txt"), "precious");
    expect(() => checkOutputDir(join(dir, "notes.txt"), force)).toThrow(/is a regular file, not a directory/);
    symlinkSync(dir, join(dir, "link"));
    expect(() => checkOutputDir(join(dir, "link"), force)).toThrow(/is a symbolic link/);
  });

  it("refuses inputs and folders holding them, also through a symbolic link, even with --force", () => {
    const hf = join(dir, "proj", "ckpt");
    mkdirSync(hf, { recursive: true });
    writeFileSync(join(hf, "model.safetensors"), "x");
    const force = rules({ force: true, inputs: [hf] });
    expect(() => checkOutputDir(hf, force)).toThrow(/over its own input/);
    expect(() => checkOutputDir(join(dir, "proj"), force)).toThrow(/holds the input/);
    symlinkSync(join(dir, "proj"), join(dir, "alias"));
    expect(() => checkOutputDir(join(dir, "alias", "ckpt"), force)).toThrow(/over its own input/);
    mkdirSync(join(hf, "sub"));
    writeFileSync(join(hf, "sub", "x"), "y");
    expect(() => checkOutputDir(join(hf, "sub"), force)).toThrow(/inside the input/);
    expect(checkOutputDir(join(hf, "new"), rules({ inputs: [hf] }))).toBe(join(hf, "new")); // a new folder is fine
  });

  it("replaces an existing folder only when empty, marked by Kiln, or with --force", () => {
    const out = join(dir, "out");
    mkdirSync(out);
    expect(checkOutputDir(out, rules())).toBe(out); // empty
    writeFileSync(join(out, "notes.txt"), "precious");
    expect(() => checkOutputDir(out, rules())).toThrow(/not written by Kiln .* pass --force/);
    expect(checkOutputDir(out, rules({ force: true }))).toBe(out);
    writeFileSync(join(out, OUTPUT_MARKER), "{}");
    expect(checkOutputDir(out, rules())).toBe(out);
  });
});

describe("writeOutputDir", () => {
  it("writes a marked folder atomically; a failing writer leaves the previous output and no temp", async () => {
    const out = join(dir, "out");
    await writeOutputDir(out, "test", async (tmp) => writeFileSync(join(tmp, "a"), "1"));
    expect(readFileSync(join(out, "a"), "utf8")).toBe("1");
    expect(JSON.parse(readFileSync(join(out, OUTPUT_MARKER), "utf8"))).toMatchObject({ producer: "kiln", command: "test" });
    await expect(
      writeOutputDir(out, "test", async (tmp) => {
        writeFileSync(join(tmp, "a"), "2");
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(readFileSync(join(out, "a"), "utf8")).toBe("1");
    expect(readdirSync(dir)).toEqual(["out"]);
    expect(registeredTemps()).toEqual([]);
    writeOutputDirSync(out, "test", (tmp) => writeFileSync(join(tmp, "b"), "3"));
    expect(readdirSync(out).sort()).toEqual([OUTPUT_MARKER, "b"]);
  });
});

describe("checkOutputFile and writeOutputFile", () => {
  it("refuses inputs, folders and special files; writes by temp file + rename", async () => {
    const model = join(dir, "model.ts");
    writeFileSync(model, "source");
    expect(() => checkOutputFile(model, rules({ inputs: [model] }))).toThrow(/over its own input/);
    expect(() => checkOutputFile(dir, rules())).toThrow(/is a directory, not a file/);
    const fifo = join(dir, "fifo");
    if (spawnSync("mkfifo", [fifo]).status === 0) expect(() => checkOutputFile(fifo, rules())).toThrow(/is a FIFO, not a file/);
    const out = checkOutputFile(join(dir, "g.txt"), rules({ inputs: [model] }));
    await writeOutputFile(out, "graph");
    await writeOutputFile(out, "graph 2");
    expect(readFileSync(out, "utf8")).toBe("graph 2");
    expect(readdirSync(dir).filter((n) => n.includes("kiln-tmp"))).toEqual([]);
    expect(readFileSync(model, "utf8")).toBe("source");
  });
});

describe("removeStaleTemps", () => {
  it("removes temps of dead processes, restores a set-aside output, keeps live ones and user files", () => {
    const dead = deadPid();
    mkdirSync(join(dir, `.out.kiln-tmp-${dead}-ab12`));
    writeFileSync(join(dir, `.out.kiln-tmp-${dead}-ab12`, "rank0.safetensors"), "big");
    mkdirSync(join(dir, `.out.kiln-tmp-${dead}`)); // the naming of Kiln before the output guard
    mkdirSync(join(dir, `.gone.kiln-old-${dead}-cd34`));
    writeFileSync(join(dir, `logits.safetensors.tmp-${dead}-0123456789ab`), "x");
    mkdirSync(join(dir, `.out.kiln-tmp-${process.pid}-ee`));
    writeFileSync(join(dir, "notes.kiln-tmp-1"), "user file");
    const removed = removeStaleTemps(dir);
    expect(removed.length).toBe(4);
    expect(readdirSync(dir).sort()).toEqual([`.out.kiln-tmp-${process.pid}-ee`, "gone", "notes.kiln-tmp-1"].sort());
    expect(existsSync(join(dir, "gone"))).toBe(true);
  });
});
