// How to start tritonserver on a generated repository: world size = tp × pp MPI
// ranks, one per GPU. Two equivalent forms: TensorRT-LLM's helper script
// (triton_backend/scripts/launch_triton_server.py) and the plain MPMD mpirun line
// it runs — rank 0 serves every model, ranks > 0 load only tensorrt_llm (they are
// executor workers), and each rank gets its own Python-backend shm prefix.
// Invariant: paths are shell-quoted, so the strings can be pasted into sh.

import { shellQuote } from "../../src/io/shell.ts";

export interface LaunchCommand {
  worldSize: number;
  /** `python3 scripts/launch_triton_server.py ...`, run from TensorRT-LLM's triton_backend directory. */
  script: string;
  /** The same launch as one `mpirun` line, no helper script needed. */
  mpirun: string;
}

export { shellQuote };

function rankCommand(rank: number, repo: string): string[] {
  return [
    "-n",
    "1",
    "tritonserver",
    `--model-repository=${repo}`,
    ...(rank === 0 ? [] : ["--model-control-mode=explicit", "--load-model=tensorrt_llm"]),
    "--disable-auto-complete-config",
    `--backend-config=python,shm-region-prefix-name=prefix${rank}_`,
  ];
}

export function launchCommand(opts: { repo: string; tp?: number; pp?: number }): LaunchCommand {
  const worldSize = (opts.tp ?? 1) * (opts.pp ?? 1);
  const script = ["python3", "scripts/launch_triton_server.py", `--world_size=${worldSize}`, `--model_repo=${opts.repo}`];
  const ranks = Array.from({ length: worldSize }, (_, rank) => rankCommand(rank, opts.repo).map(shellQuote).join(" "));
  return {
    worldSize,
    script: script.map(shellQuote).join(" "),
    mpirun: `mpirun --allow-run-as-root ${ranks.join(" : ")}`,
  };
}
