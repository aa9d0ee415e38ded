// Runs the Python test suites with an interpreter that has torch and pytest (see python.mjs): the python-bridge
// suite, then the hf target's (codegen/hf/tests, which also needs transformers and safetensors and skips itself with
// the reason shown when they are missing). Without torch/pytest the suites are skipped with a visible message
// locally, but fail under CI (CI=true), where .ci/run installs them.
import { execFileSync, spawnSync } from "node:child_process";
import { findPython } from "./python.mjs";

const py = findPython(["torch", "pytest", "numpy"]);
if (!py) {
  const msg = "python tests: no Python with torch, numpy and pytest found (set KILN_PYTHON, or run .ci/setup-python.sh)";
  if (process.env.CI) {
    console.error(`FAILED: ${msg}`);
    process.exit(1);
  }
  console.warn(`SKIPPED: ${msg}`);
  process.exit(0);
}
const env = { ...process.env, KILN_PYTHON: py };
const pytest = (dir) => spawnSync(py, ["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", dir], { stdio: "inherit", env }).status ?? 1;
const bridge = pytest("python-bridge/tests");
let hf = 0;
try {
  execFileSync(py, ["-c", "import transformers, safetensors"], { stdio: "ignore" });
  hf = pytest("codegen/hf/tests");
} catch {
  console.warn(`SKIPPED: hf target tests need transformers and safetensors in ${py} (.ci/setup-python.sh installs them from the local wheel index)`);
}
process.exit(bridge || hf);
