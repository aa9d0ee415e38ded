// The job of the torch engine (`kiln calibrate|eval --engine torch`): everything python-bridge needs to run Kiln's
// model in PyTorch, written to a directory: the hf target's generated code (config.json, configuration_*.py,
// modeling_*.py, an empty __init__.py so the bridge imports it as a package; no weights) and job.json (format
// kiln.torch-job/1) with the weight plan — each parameter's weight expression over the source checkpoint, which the
// bridge evaluates while streaming the weights in — the quantizable Linears with their FP8 scale groups, the
// attentions (calibration keys, src/quant/linears.ts), the Linears that `quantize: false` hints keep, the model dtype
// (the checkpoint's) and the vocabulary.
// Invariants: only checkpoint headers are read (an 8B model prepares in seconds, and a header-only checkpoint is
// enough); the weight plan covers every parameter the generated modules register, once, under the same names;
// output is deterministic for the same model file and checkpoint.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { hintExclusions } from "../quant/exclusions.ts";
import { attentionModules, quantizableLinears } from "../quant/linears.ts";
import { isTrtllmOp } from "../lower/trtllm-ops.ts";
import { BindError, bindProblems, graphParams } from "../weights/bind.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { readHFConfigJson } from "../weights/hf-config.ts";
import type { WeightExpr } from "../weights/weight-map.ts";
import { defaultDtype, prepareCompile } from "./compile.ts";
import { instantiate } from "./instantiate.ts";

export const TORCH_JOB_FORMAT = "kiln.torch-job/1";

export interface TorchJob {
  readonly format: typeof TORCH_JOB_FORMAT;
  readonly model: string;
  readonly dtype: string;
  readonly vocab: number;
  readonly architecture: string;
  /** File name of the generated modeling module. */
  readonly modeling: string;
  readonly tensors: readonly { readonly name: string; readonly expr: WeightExpr }[];
  readonly linears: readonly { readonly module: string; readonly scaleGroup: string }[];
  readonly attentions: readonly string[];
  readonly excluded: readonly string[];
}

/** Writes the job of `def` over the checkpoint in `hfDir` into the existing directory `dir`. */
export async function writeTorchJob<C>(def: ModelDefinition<C>, hfDir: string, dir: string): Promise<TorchJob> {
  const configPath = `${hfDir}/config.json`;
  const hf = readHFConfigJson(hfDir) as Record<string, unknown>;
  const ckpt = await openCheckpoint(hfDir);
  try {
    const inst = instantiate(def, hf, configPath);
    const problems = bindProblems(graphParams(inst.graph), inst.weights, ckpt);
    if (problems.length) throw new BindError(problems, hfDir);
    const dtype = defaultDtype(hf, configPath);
    const { lowered, emission } = prepareCompile(def, hf, (n) => ckpt.info(n)?.shape, { target: "hf", dtype, configPath, instance: inst });
    const modeling = Object.keys(emission.files).find((f) => /^modeling_.*\.py$/.test(f))!;
    const head = lowered.graph.nodes.find((n) => isTrtllmOp(n, "trtllm.lm_head"))!;
    const job: TorchJob = {
      format: TORCH_JOB_FORMAT,
      model: def.name,
      dtype,
      vocab: head.attrs.vocab,
      architecture: emission.architecture,
      modeling,
      tensors: emission.plans.flatMap((p) => p.tensors.map((t) => ({ name: t.name, expr: (t as { expr: WeightExpr }).expr }))),
      linears: quantizableLinears(lowered.graph).map((l) => ({ module: l.module, scaleGroup: l.scaleGroup })),
      attentions: attentionModules(lowered.graph),
      excluded: hintExclusions(inst.graph, inst.weights.map, lowered),
    };
    for (const [name, text] of Object.entries({ ...emission.files, "__init__.py": "", "job.json": `${JSON.stringify(job, null, 1)}\n` })) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    return job;
  } finally {
    await ckpt.close();
  }
}
