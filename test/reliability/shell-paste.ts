// Pasting printed commands into bash safely for tests: stub programs (trtllm-build, trtllm-serve, python3, docker,
// mpirun) that only record their argument vectors, the extraction of shell commands from printed text, and the
// hostile path names that would run something if a printed command pasted them unquoted.

import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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

export interface Paster {
  /** Runs one printed line in bash inside `cwd`; returns the argument vectors the stubs saw. */
  paste(line: string, cwd: string): { status: number | null; stderr: string; calls: string[][] };
  /** Marker files (PWNED_*) that exist anywhere under `root`. */
  pwned(): string[];
}

export function makePaster(root: string): Paster {
  const stubs = join(root, "bin");
  const argvLog = join(root, "argv.log");
  mkdirSync(stubs, { recursive: true });
  for (const name of ["trtllm-build", "trtllm-serve", "python3", "docker", "mpirun"]) {
    writeFileSync(join(stubs, name), `#!/bin/bash\n{ printf '%s\\0' ${name} "$@"; printf '\\n\\0'; } >> ${JSON.stringify(argvLog)}\n`);
    chmodSync(join(stubs, name), 0o755);
  }
  return {
    paste(line, cwd) {
      writeFileSync(argvLog, "");
      const r = spawnSync("bash", ["-c", line], { cwd, env: { PATH: `${stubs}:/usr/bin:/bin`, HOME: root }, encoding: "utf8" });
      const calls = readFileSync(argvLog, "utf8")
        .split("\n\0")
        .filter((rec) => rec.length)
        .map((rec) => rec.split("\0").filter((_, i, a) => i < a.length - 1));
      return { status: r.status, stderr: r.stderr, calls };
    },
    pwned: () => (readdirSync(root, { recursive: true }) as string[]).map(String).filter((f) => /(^|\/)PWNED_\w+$/.test(f) && existsSync(join(root, f))),
  };
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
