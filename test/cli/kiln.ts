// Runs the `kiln` CLI in-process for tests, capturing stdout, stderr and the exit code.

import { main } from "../../src/cli/main.ts";

export async function kiln(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const origErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    const code = await main(args, (s) => (out += s));
    return { code, out, err };
  } finally {
    process.stderr.write = origErr;
  }
}
