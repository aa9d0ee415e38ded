// Runs the Python bridge's pytest suite with an interpreter that has torch and pytest (see python.mjs). Without one,
// the suite is skipped with a visible message locally, but fails under CI (CI=true), where .ci/run installs them.
import { spawnSync } from "node:child_process";
import { findPython } from "./python.mjs";

const py = findPython(["torch", "pytest", "numpy"]);
if (!py) {
  const msg = "python-bridge tests: no Python with torch, numpy and pytest found (set KILN_PYTHON, or run .ci/setup-python.sh)";
  if (process.env.CI) {
    console.error(`FAILED: ${msg}`);
    process.exit(1);
  }
  console.warn(`SKIPPED: ${msg}`);
  process.exit(0);
}
const r = spawnSync(py, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "python-bridge/tests"], { stdio: "inherit", env: { ...process.env, KILN_PYTHON: py } });
process.exit(r.status ?? 1);
