// `kiln build OUT --engine-dir ENG`: build TensorRT engines from a Kiln checkpoint with the python bridge. Runs the
// pinned TensorRT-LLM 1.2.1 container when Docker with the NVIDIA runtime is available, else a local Python that has
// tensorrt_llm 1.2.x; otherwise exits non-zero saying which of the two is missing and printing the exact commands
// to run on a machine that has them. Probing and command construction are pure functions, tested without GPUs.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { checkOutputDir, markOutputDir } from "../../io/output-guard.ts";
import { shellAssign, shellCommand } from "../../io/shell.ts";

export const BRIDGE_IMAGE = "kiln-bridge:trtllm-1.2.1";
const BRIDGE_DIR = fileURLToPath(new URL("../../../python-bridge/", import.meta.url));

export interface BuildEnvironment {
  /** docker is on PATH and `docker info` lists the nvidia runtime. */
  readonly dockerWithNvidia: boolean;
  readonly dockerProblem?: string;
  /** A Python whose tensorrt_llm is 1.2.x, if any. */
  readonly python?: string;
  readonly pythonProblem?: string;
}

export function probeBuildEnvironment(run = spawnSync, py = process.env.KILN_PYTHON ?? "python3"): BuildEnvironment {
  const docker = run("docker", ["info", "--format", "{{json .Runtimes}}"], { encoding: "utf8" });
  const dockerWithNvidia = docker.status === 0 && /nvidia/.test(String(docker.stdout));
  const dockerProblem = docker.error
    ? "docker is not installed"
    : docker.status !== 0
      ? "the Docker engine is not reachable"
      : dockerWithNvidia
        ? undefined
        : "Docker has no NVIDIA runtime (nvidia-container-toolkit)";
  const v = run(py, ["-c", "import tensorrt_llm; print(tensorrt_llm.__version__)"], { encoding: "utf8" });
  const version =
    String(v.stdout ?? "")
      .trim()
      .split("\n")
      .pop() ?? "";
  const python = v.status === 0 && /^1\.2\./.test(version) ? py : undefined;
  const pythonProblem = v.error
    ? `${py} is not installed`
    : v.status !== 0
      ? `${py} cannot import tensorrt_llm`
      : python
        ? undefined
        : `${py} has tensorrt_llm ${version}, not 1.2.x (the last release with the TensorRT engine flow)`;
  return { dockerWithNvidia, ...(dockerProblem && { dockerProblem }), ...(python && { python }), ...(pythonProblem && { pythonProblem }) };
}

export interface BuildPlan {
  readonly how: "docker" | "local";
  readonly argv: string[];
  readonly env?: Record<string, string>;
}

export function buildCommands(ckpt: string, engineDir: string, workers: number): { docker: string[]; dockerBuild: string[]; local: string[] } {
  const [c, e] = [resolve(ckpt), resolve(engineDir)];
  const bridge = ["-m", "kiln_bridge", "build", "--ckpt", "/ckpt", "--engine-dir", "/engines", "--workers", String(workers)];
  return {
    dockerBuild: ["docker", "build", "-t", BRIDGE_IMAGE, BRIDGE_DIR],
    docker: ["docker", "run", "--rm", "--gpus", "all", "--ipc=host", "-v", `${c}:/ckpt:ro`, "-v", `${e}:/engines`, BRIDGE_IMAGE, "python3", ...bridge],
    local: ["python3", "-m", "kiln_bridge", "build", "--ckpt", c, "--engine-dir", e, "--workers", String(workers)],
  };
}

export function planBuild(env: BuildEnvironment, ckpt: string, engineDir: string, workers: number): BuildPlan {
  const cmds = buildCommands(ckpt, engineDir, workers);
  if (env.dockerWithNvidia) return { how: "docker", argv: cmds.docker };
  if (env.python) return { how: "local", argv: [env.python, ...cmds.local.slice(1)], env: { PYTHONPATH: BRIDGE_DIR } };
  throw new UsageError(
    `cannot build engines on this machine: ${env.dockerProblem ?? "no Docker with the NVIDIA runtime"}, and ${env.pythonProblem ?? "no Python with tensorrt_llm 1.2.x"}.\n` +
      `On a machine with an NVIDIA GPU, run either\n  ${shellCommand(cmds.dockerBuild)}\n  ${shellCommand(cmds.docker)}\n` +
      `or, where tensorrt_llm 1.2.1 is installed,\n  ${shellAssign("PYTHONPATH", BRIDGE_DIR)} ${shellCommand(cmds.local)}`,
  );
}

export function buildCommand(ckpt: string, f: { engineDir: string; workers: string; force?: boolean }, out: (s: string) => void): void {
  if (!existsSync(resolve(ckpt, "config.json"))) throw new UsageError(`${ckpt}/config.json: not a checkpoint written by 'kiln compile'`);
  const engineDir = checkOutputDir(f.engineDir, { flag: "--engine-dir", inputs: [ckpt], ...(f.force && { force: true }) });
  const workers = Number(f.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers: expected an integer >= 1, got '${f.workers}'`);
  const plan = planBuild(probeBuildEnvironment(), ckpt, engineDir, workers);
  out(`kiln: building engines (${plan.how}): ${shellCommand(plan.argv)}\n`);
  const r = spawnSync(plan.argv[0]!, plan.argv.slice(1), { stdio: "inherit", env: { ...process.env, ...plan.env } });
  if (r.status !== 0) throw new UsageError(`engine build failed (exit ${r.status ?? r.signal})`);
  markOutputDir(engineDir, "build");
}
