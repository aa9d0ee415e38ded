// The `kiln` command line: flag parsing (commander) and dispatch to one function per command. Commands are thin;
// everything they do is a library call that tests can make directly.

import { Command, CommanderError } from "@commander-js/extra-typings";
import { buildCommand } from "./commands/build.ts";
import { checkCommand } from "./commands/check.ts";
import { compileCommand } from "./commands/compile.ts";
import { passesCommand } from "./commands/passes.ts";
import { runCommand } from "./commands/run.ts";
import { modelsCommand } from "./commands/models.ts";
import { graphCommand } from "./commands/graph.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { planCommand } from "./commands/plan.ts";
import { tritonCommand } from "./commands/triton.ts";
import { verifyOpCommand } from "./commands/verify-op.ts";
import { verifyCommand } from "./commands/verify.ts";
import { calibrateCommand } from "./commands/calibrate.ts";
import { evalCommand } from "./commands/eval.ts";
import { reportError } from "./errors.ts";
import { DEFAULT_TARGET, targetHelp } from "../driver/targets.ts";

const MODEL_ARG = "model definition (.ts) or zoo name (kiln models); omitted: picked from config.json's architectures";

export function buildProgram(out: (s: string) => void): Command {
  const program = new Command("kiln")
    .description("Compile transformer LLMs written in TypeScript into TensorRT-LLM 1.2.1 models")
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: (s) => process.stderr.write(s) });
  program
    .command("models")
    .description("list the model zoo: each definition in models/, the Hugging Face architectures it reads, its TensorRT-LLM class")
    .option("--json", "print one JSON object")
    .action(async (o) => modelsCommand(o, out));
  program
    .command("check")
    .description("type-check a model file without running it")
    .argument("<model>", "model definition (.ts)")
    .action(async (model) => checkCommand(model, out));
  program
    .command("run")
    .description("run a model on the CPU interpreter with Hugging Face weights: logits and greedy generation")
    .argument("[model]", MODEL_ARG)
    .requiredOption("--hf <dir>", "Hugging Face checkpoint directory (config.json + safetensors)")
    .requiredOption("--ids <ids>", "prompt token ids, comma-separated")
    .option("--max-new-tokens <n>", "tokens to generate greedily", "8")
    .option("--logits-out <file>", "write all-position logits [T, vocab] as safetensors (tensor 'logits', F32)")
    .option("--allow-nonfinite", "run on weights that hold Inf/NaN instead of failing")
    .option("--quant <scheme>", "simulate a quantized engine: w8a16 | w4a16 | fp8")
    .option("--kv-cache <format>", "simulate a quantized KV cache: int8 | fp8")
    .option("--dtype <dtype>", "with --quant/--kv-cache: the engine's dtype (default: the checkpoint's if half, else float16)")
    .option("--calibration <file>", "activation and KV-cache maxima from kiln calibrate (default: calibrate on --prompts)")
    .option("--prompts <files...>", "calibration prompts, one line of token ids per prompt (default: the built-in prompts)")
    .option("--lora <dir>", "apply a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => runCommand(model, o, out));
  program
    .command("compile")
    .description("compile for a target: TensorRT-LLM 1.2.1 engine checkpoint (default), TensorRT-LLM PyTorch backend, or Hugging Face remote code")
    .argument("[model]", MODEL_ARG)
    .requiredOption("--hf <dir>", "Hugging Face checkpoint directory")
    .requiredOption("--out <dir>", "output directory (replaced atomically; only an earlier Kiln output unless --force)")
    .option("--force", "replace an existing --out that Kiln did not write (never an input, '.', '/' or $HOME)")
    .option("--allow-nonfinite", "write weights that hold Inf/NaN (or overflow the output dtype) instead of failing")
    .option("--target <target>", targetHelp(), DEFAULT_TARGET)
    .option("--dtype <dtype>", "float32 | float16 | bfloat16 (default: the checkpoint's dtype)")
    .option("--tp <n>", "tensor-parallel size", "1")
    .option("--pp <n>", "pipeline-parallel size", "1")
    .option("--moe-tp <n>", "mixture of experts: tensor-parallel size inside each expert (moe-tp x moe-ep = tp)")
    .option("--moe-ep <n>", "mixture of experts: expert-parallel size, experts split over ranks (moe-tp x moe-ep = tp)")
    .option("--custom-code", "emit model.py even when TensorRT-LLM has the architecture built in")
    .option("--quant <scheme>", "quantize Linear weights: w8a16 | w4a16 (TensorRT-LLM quantizes at load) | fp8 (calibrated)")
    .option("--kv-cache <format>", "quantize the KV cache: int8 | fp8 (calibrated)")
    .option("--calibration <file>", "activation and KV-cache maxima from kiln calibrate (default: calibrate on --prompts)")
    .option("--prompts <files...>", "calibration prompts, one line of token ids per prompt (default: the built-in prompts)")
    .option("--lora <dirs>", "PEFT LoRA adapter directories, comma-separated (docs/lora.md)")
    .option("--lora-merge", "fold the one --lora adapter into the weights instead of runtime LoRA")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => compileCommand(model, o, out));
  program
    .command("build")
    .description("build TensorRT engines from a kiln checkpoint (TensorRT-LLM 1.2.1 container or local install)")
    .argument("<ckpt>", "checkpoint directory written by kiln compile")
    .requiredOption("--engine-dir <dir>", "where the engines go")
    .option("--workers <n>", "ranks built in parallel (one GPU each)", "1")
    .option("--force", "build into an existing --engine-dir that Kiln did not write")
    .action(async (ckpt, o) => buildCommand(ckpt, o, out));
  program
    .command("triton")
    .description("write a Triton model repository for TensorRT-LLM's in-flight batching backend")
    .argument("<ckpt>", "checkpoint directory written by kiln compile (for tp/pp)")
    .requiredOption("--engine-dir <dir>", "engine directory, as tritonserver will see it")
    .requiredOption("--tokenizer <dir>", "Hugging Face tokenizer directory, as tritonserver will see it")
    .requiredOption("--repo <dir>", "model repository to write")
    .option("--max-batch-size <n>", "Triton max_batch_size (default 64)")
    .option("--streaming", "decoupled mode, required for streamed tokens")
    .option("--kv-cache-free-gpu-mem-fraction <f>", "share of free GPU memory for the paged KV cache (default 0.9)")
    .option("--max-tokens-in-paged-kv-cache <n>", "upper bound on KV-cache tokens")
    .option("--batch-scheduler-policy <p>", "guaranteed_no_evict (default) | max_utilization")
    .option("--enable-kv-cache-reuse", "reuse KV cache blocks across requests with shared prefixes")
    .option("--force", "replace an existing repository that Kiln did not write")
    .action(async (ckpt, o) => tritonCommand(ckpt, o, out));
  program
    .command("passes")
    .description("run the pass pipeline and show what each pass changed (op counts, rewrites, near misses)")
    .argument("<model>", "model definition (.ts)")
    .requiredOption("--hf <dir>", "Hugging Face checkpoint directory (its config.json sizes the model)")
    .option("--explain", "also print hints in effect and patterns that almost matched, with the reason")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => passesCommand(model, o, out));
  program
    .command("graph")
    .description("write the model graph at one stage as ONNX (Netron), Graphviz, an interactive HTML page or text")
    .argument("[model]", MODEL_ARG)
    .option("--hf <dir>", "Hugging Face checkpoint directory (config.json + safetensors)")
    .option("--config <file>", "a Hugging Face config.json alone (no weights needed)")
    .option("--stage <stage>", "traced | fused | trtllm", "fused")
    .requiredOption("--format <format>", "onnx | dot | html | text")
    .option("--out <file>", "output file (dot and text print to stdout without it)")
    .option("--with-weights", "onnx: embed the checkpoint's weights as initializers (needs --hf)")
    .option("--expand", "dot and text: show every layer instead of folding repeated ones")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => graphCommand(model, o, out));
  program
    .command("plan")
    .description("plan GPU memory: weights per GPU, activations, KV cache bytes per token and tokens that fit")
    .argument("[model]", MODEL_ARG)
    .option("--hf <dir>", "Hugging Face checkpoint directory")
    .option("--config <file>", "a Hugging Face config.json alone (no weights needed)")
    .option("--dtype <dtype>", "float32 | float16 | bfloat16 (default: the checkpoint's dtype)")
    .option("--quant <scheme>", "w8a16 | w4a16 | fp8 (quantized Linear weights; lm_head and embeddings stay in dtype)")
    .option("--kv-cache <format>", "int8 | fp8 (default: the model dtype)")
    .option("--tp <n>", "tensor-parallel size", "1")
    .option("--pp <n>", "pipeline-parallel size", "1")
    .option("--moe-tp <n>", "mixture of experts: tensor-parallel size inside each expert (moe-tp x moe-ep = tp)")
    .option("--moe-ep <n>", "mixture of experts: expert-parallel size, experts split over ranks (moe-tp x moe-ep = tp)")
    .option("--gpu <gpu>", "h100-80gb | h200-141gb | a100-80gb | l40s-48gb | a memory size such as 24GiB", "h100-80gb")
    .option("--max-batch <n>", "max batch size (TensorRT-LLM build_config)", "8")
    .option("--max-seq <n>", "max sequence length (default: the config's max_position_embeddings)")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => planCommand(model, o, out));
  program
    .command("inspect")
    .description("parameters per module, op counts per stage, hints in effect and the TensorRT-LLM class, with why")
    .argument("[model]", MODEL_ARG)
    .option("--hf <dir>", "Hugging Face checkpoint directory")
    .option("--config <file>", "a Hugging Face config.json alone (no weights needed)")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => inspectCommand(model, o, out));
  program
    .command("verify-op")
    .description("check a custom op: its reference and shape rule, its lowering, its PyTorch transcription, and (--device) its Triton kernel on a GPU, timed")
    .argument("<op>", "path/to/op.ts[#op_name], or the name of an example (examples/<name>/op.ts)")
    .option("--out <dir>", "folder for the exported cases and the runner (default out/verify-op/<op>)")
    .option("--force", "replace an existing --out that Kiln did not write")
    .option("--device", "check and time the Triton kernel on a local CUDA GPU, or print the command for a GPU machine")
    .option("--python <python>", "Python with torch (and triton for --device); default $KILN_PYTHON, .venv/bin/python, python3")
    .action(async (op, o) => verifyOpCommand(op, o, out));
  program
    .command("verify")
    .description("execute what kiln compile wrote (model.py, the trtllm-torch package, or a built-in checkpoint) in PyTorch and compare with golden logits")
    .argument("<out>", "directory written by kiln compile")
    .requiredOption("--hf <dir>", "directory holding golden.safetensors")
    .option("--device <device>", "cpu | cuda", "cpu")
    .option("--dtype <dtype>", "float32 | float16 | bfloat16", "float32")
    .option("--tp <n>", "trtllm-torch only: tensor-parallel size to simulate")
    .option("--pp <n>", "trtllm-torch only: pipeline-parallel size to simulate")
    .option("--kernel <module=file...>", "replace a custom op's kernel module by a Python file with the same launch()")
    .option("--lora <adapter=dir...>", "trtllm-torch --lora outputs: run dir/golden.safetensors' prompts with this adapter, batched with the base prompts")
    .option("--tol <x>", "relative L2 tolerance (default by precision)")
    .option("--json", "print the report as JSON")
    .action(async (dir, o) => verifyCommand(dir, o, out));
  program
    .command("calibrate")
    .description("record activation and KV-cache maxima over calibration prompts (for --quant fp8 and --kv-cache)")
    .argument("<model>", "model definition (.ts)")
    .requiredOption("--hf <dir>", "Hugging Face checkpoint directory")
    .requiredOption("--out <file>", "calibration file to write (JSON)")
    .option("--prompts <files...>", "prompt files, one line of token ids per prompt (default: the built-in prompts)")
    .option("--text <file>", 'samples from text: one per line, or JSON Lines with a "text" field (with --tokenizer)')
    .option("--tokenizer <dir>", "directory holding the Hugging Face tokenizer.json that --text is tokenized with")
    .option("--samples <n>", "number of --text samples to use (default: all)")
    .option("--seq-len <n>", "pack --text into samples of exactly this many tokens (default: one sample per line)")
    .option("--engine <engine>", "interp (CPU interpreter, default) | torch (Kiln's model in PyTorch via python-bridge)")
    .option("--device <device>", "--engine torch: cpu (default) | cuda")
    .option("--torch-job <dir>", "--engine torch: write the job to DIR and print the Python command instead of running it")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => calibrateCommand(model, o, out));
  program
    .command("eval")
    .description("measure what quantization costs: relative logit error, top-1 agreement and KL divergence against the unquantized model")
    .argument("<model>", "model definition (.ts)")
    .requiredOption("--hf <dir>", "Hugging Face checkpoint directory")
    .option("--quant <scheme>", "w8a16 | w4a16 | fp8")
    .option("--kv-cache <format>", "int8 | fp8")
    .option("--dtype <dtype>", "the engine's dtype (default: the checkpoint's if half, else float16)")
    .option("--calibration <file>", "activation and KV-cache maxima from kiln calibrate (default: calibrate on the prompts)")
    .option("--prompts <files...>", "calibration and evaluation prompts, one line of token ids per prompt (default: the built-in prompts)")
    .option("--lora <dir>", "a PEFT LoRA adapter: evaluate the adapted model (without --quant: the adapter against the base model)")
    .option("--text <file>", 'samples from text: one per line, or JSON Lines with a "text" field (with --tokenizer)')
    .option("--tokenizer <dir>", "directory holding the Hugging Face tokenizer.json that --text is tokenized with")
    .option("--samples <n>", "number of --text samples to use (default: all)")
    .option("--seq-len <n>", "pack --text into samples of exactly this many tokens (default: one sample per line)")
    .option("--engine <engine>", "interp (CPU interpreter, default) | torch (Kiln's model in PyTorch via python-bridge)")
    .option("--device <device>", "--engine torch: cpu (default) | cuda")
    .option("--torch-job <dir>", "--engine torch: write the job to DIR and print the Python command instead of running it")
    .option("--json", "print one JSON object")
    .option("--no-typecheck", "skip the TypeScript check of the model file")
    .action(async (model, o) => evalCommand(model, o, out));
  return program;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  try {
    await buildProgram(out).parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    return reportError(e);
  }
}
