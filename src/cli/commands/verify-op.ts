// `kiln verify-op <op> [--device] [--out DIR] [--python PY]`: check a custom op the way Kiln checks everything else.
// Runs the op's TypeScript reference on every verify case and dtype (shape rule checked), checks its TensorRT-LLM
// lowering against the API manifest, and writes a self-contained folder (cases.safetensors, manifest.json, the kernel
// module, verify_op_runner.py). Then: without --device, the PyTorch transcription is checked against the reference
// on the CPU (when a Python with torch is found); with --device, the Triton kernel is checked and timed on a local
// CUDA GPU, or, with no such Python here, the exact command to run on a GPU machine is printed.
// <op> is `path/to/op.ts`, `path/to/op.ts#op_name`, or the name of an example (examples/<name>/op.ts).

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { checkLowering, CustomOpEmitError } from "../../../codegen/trtllm-engine/custom-ops.ts";
import { type CustomOp, customOp, isCustomOp, OpDeclError } from "../../custom-ops/custom-op.ts";
import { writeVerifyFolder } from "../../custom-ops/verify-cases.ts";
import { UsageError } from "../errors.ts";
import { shellQuote } from "../../io/shell.ts";

export interface VerifyOpFlags {
  readonly out?: string;
  readonly device?: boolean;
  readonly python?: string;
  readonly force?: boolean;
}

/** The declaring file and, when given, the op's name. */
function locate(arg: string): { file: string; name?: string } {
  const [path, name] = arg.split("#") as [string, string | undefined];
  if (path.endsWith(".ts") || path.includes("/")) return { file: resolve(path), ...(name && { name }) };
  const example = resolve("examples", path, "op.ts");
  if (!existsSync(example))
    throw new UsageError(`verify-op: '${arg}' is neither a .ts file nor an example (no ${relative(process.cwd(), example)}); pass path/to/op.ts[#op_name]`);
  return { file: example, name: path };
}

async function loadOp(arg: string): Promise<CustomOp> {
  const { file, name } = locate(arg);
  if (!existsSync(file)) throw new UsageError(`verify-op: ${file} not found`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`verify-op: ${relative(process.cwd(), file)} failed to load: ${(e as Error).message.split("\n")[0]}`);
  }
  if (name)
    return (
      customOp(name) ??
      (() => {
        throw new UsageError(`verify-op: loading ${relative(process.cwd(), file)} declared no custom op '${name}'`);
      })()
    );
  const ops = [...new Set(Object.values(mod).filter(isCustomOp))];
  if (ops.length !== 1)
    throw new UsageError(
      `verify-op: ${relative(process.cwd(), file)} exports ${ops.length ? `several custom ops (${ops.map((o) => o.name).join(", ")}); add #name` : "no custom op (export the value defineOp returns)"}`,
    );
  return ops[0]!;
}

/** The first interpreter that can run `check`: --python, $KILN_PYTHON, ./.venv/bin/python, python3. */
function findPython(flag: string | undefined, check: string): string | undefined {
  const candidates = flag ? [flag] : [process.env.KILN_PYTHON, ".venv/bin/python", "python3"];
  return candidates
    .filter((p): p is string => !!p && (!p.includes("/") || existsSync(p)))
    .find((p) => spawnSync(p, ["-c", check], { stdio: "ignore" }).status === 0);
}

const CUDA_CHECK = "import torch, triton; assert torch.cuda.is_available()";

export async function verifyOpCommand(arg: string, flags: VerifyOpFlags, out: (s: string) => void): Promise<void> {
  let op: CustomOp;
  let folder: Awaited<ReturnType<typeof writeVerifyFolder>>;
  try {
    op = await loadOp(arg);
    checkLowering(op);
    const dir = resolve(flags.out ?? join("out", "verify-op", op.name));
    folder = await writeVerifyFolder(op, dir, { inputs: [locate(arg).file], ...(flags.force && { force: true }) });
  } catch (e) {
    if (e instanceof OpDeclError || e instanceof CustomOpEmitError) throw new UsageError(e.message);
    throw e;
  }
  const rel = relative(process.cwd(), folder.dir) || ".";
  out(`${op.name}: reference and shape rule agree on ${folder.cases} cases; ${op.decl.lowering!.kind} lowering checked against TensorRT-LLM 1.2\n`);
  out(`wrote ${rel}/ (cases.safetensors, manifest.json, ${op.kernelPath!.split("/").pop()}, verify_op_runner.py; ${folder.bench} bench shapes)\n`);
  const gpuArgs = ["--require-gpu", "--json", join(folder.dir, "results.json"), "--report", join(folder.dir, "report.md")];
  const python = findPython(flags.python, flags.device ? CUDA_CHECK : "import torch");
  if (!python) {
    if (flags.device) {
      out(`no Python with torch, triton and a CUDA device here. On a GPU machine (python3 with torch and triton), run:\n`);
      out(`  cd ${shellQuote(rel)} && python3 verify_op_runner.py --require-gpu --json results.json --report report.md\n`);
      out(`(the folder is self-contained; copy it there, or run from this checkout)\n`);
    } else
      out(
        `no Python with torch found (--python, $KILN_PYTHON, .venv/bin/python, python3): skipped the torch_reference check; --device prints the GPU command\n`,
      );
    return;
  }
  const run = spawnSync(python, [join(folder.dir, "verify_op_runner.py"), ...(flags.device ? gpuArgs : ["--cpu"])], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  out(run.stdout);
  if (run.stderr) out(run.stderr);
  if (run.status !== 0)
    throw new UsageError(
      `verify-op ${op.name}: ${run.status === 1 ? "checks failed (see the report above)" : `the runner could not run (${python}, exit ${run.status ?? run.signal})`}`,
    );
  if (flags.device) out(`report: ${rel}/report.md, results: ${rel}/results.json\n`);
}
