// Finds the Python interpreter for the bridge: $KILN_PYTHON, else ./.venv/bin/python, else /usr/bin/python3 (Debian's
// python3-torch), else python3 — the first one that can import torch (and pytest, when asked). Prints its path.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export function findPython(modules = ["torch"]) {
  const candidates = [process.env.KILN_PYTHON, ".venv/bin/python", "/usr/bin/python3", "python3"].filter(Boolean);
  for (const py of candidates) {
    if (py.includes("/") && !existsSync(py)) continue;
    try {
      execFileSync(py, ["-c", modules.map((m) => `import ${m}`).join("; ")], { stdio: "ignore" });
      return py;
    } catch {}
  }
  return undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const py = findPython(process.argv.slice(2).length ? process.argv.slice(2) : ["torch"]);
  if (!py) process.exit(1);
  process.stdout.write(`${py}\n`);
}
