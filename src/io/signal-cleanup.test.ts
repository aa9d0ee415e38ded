// SIGINT, SIGTERM and SIGHUP remove registered temp paths and exit 128 + signal; unregistered paths stay.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "kiln-signal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MODULE = new URL("./signal-cleanup.ts", import.meta.url).href;

function child(temp: string, keep: string): Promise<{ code: number | null; child: ReturnType<typeof spawn> }> & { proc: ReturnType<typeof spawn> } {
  const script = `import { removeOnSignal } from ${JSON.stringify(MODULE)}; removeOnSignal(${JSON.stringify(temp)}); removeOnSignal(${JSON.stringify(keep)})(); console.log("ready"); setInterval(() => {}, 1000);`;
  const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const done = new Promise<{ code: number | null; child: typeof proc }>((res) => proc.on("exit", (code) => res({ code, child: proc })));
  return Object.assign(done, { proc });
}

describe("removeOnSignal", () => {
  for (const [signal, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const)
    it(`${signal} removes the temp folder and exits ${code}`, async () => {
      const temp = join(dir, `.out.kiln-tmp-${signal}`);
      const keep = join(dir, `keep-${signal}`);
      mkdirSync(temp);
      writeFileSync(join(temp, "rank0.safetensors"), "partial");
      writeFileSync(keep, "not a temp");
      const run = child(temp, keep);
      await new Promise<void>((res) => run.proc.stdout!.once("data", () => res()));
      run.proc.kill(signal);
      expect((await run).code).toBe(code);
      expect(existsSync(temp)).toBe(false);
      expect(existsSync(keep)).toBe(true);
    }, 30_000);
});
