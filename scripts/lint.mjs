// `npm run lint`: Biome (TypeScript/JavaScript lint and format check), the layer check (docs/architecture.md), and
// ruff (Python lint). In CI (CI=true) a Python without ruff is a failure; elsewhere ruff is skipped with a message.
import { spawnSync } from "node:child_process";
import { findPython } from "./python.mjs";

const run = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit" }).status === 0;
const biome = "node_modules/.bin/biome";
let ok = run(biome, ["lint", "."]);
ok = run(biome, ["format", "."]) && ok;
ok = run(process.execPath, ["node_modules/tsx/dist/cli.mjs", "scripts/check-layers.ts"]) && ok;
const python = findPython(["ruff"]);
if (python) ok = run(python, ["-m", "ruff", "check", "."]) && ok;
else if (process.env.CI === "true") {
  console.error("lint: no Python with ruff (.ci/setup-python.sh installs it from the local wheel index)");
  ok = false;
} else console.error("lint: ruff SKIPPED: no Python with ruff found (.ci/setup-python.sh installs it)");
process.exit(ok ? 0 : 1);
