"""`python -m kiln_bridge calibrate | eval | tokenize`: the torch engine's command lines (torch_engine.py) and the
text-to-ids step both engines share (text_samples.py).

calibrate: writes kiln.calibration/1 to --out. eval: writes the metrics (relLogitError, top1Agreement, klDivergence,
positions, perPrompt, quantizedLinears, calibration) as JSON to --out. tokenize: prints {"prompts": [[ids]]}.
Prompts come from --prompts FILE... (token ids, src/quant/prompts.ts's format) or --text FILE --tokenizer DIR
[--samples N] [--seq-len N]. --stats FILE records wall times and, on a GPU, peak memory.
"""
from __future__ import annotations

import argparse
import json

from .errors import BridgeError
from .text_samples import text_samples
from .torch_engine import Engine, Stopwatch, check_prompts, format_calibration, parse_prompt_file, pick_device, read_job


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", help="text file: one sample per line, or JSON Lines with a 'text' field")
    p.add_argument("--tokenizer", help="directory holding a Hugging Face tokenizer.json (with --text)")
    p.add_argument("--samples", type=int, help="number of samples to take from --text")
    p.add_argument("--seq-len", type=int, help="pack --text into windows of this many tokens")


def _engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", required=True, help="job directory written by kiln (generated code and job.json)")
    p.add_argument("--hf", required=True, help="Hugging Face checkpoint directory the weights stream from")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--prompts", action="append", default=[], help="token-id prompt file (repeatable)")
    p.add_argument("--batch-tokens", type=int, default=8192, help="tokens per forward batch (default 8192)")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--stats", help="also write wall times (and peak GPU memory) to this JSON file")
    _sample_arguments(p)


def add_arguments(sub) -> None:
    _engine_arguments(sub.add_parser("calibrate", help="record per-tensor maxima with Kiln's model in PyTorch"))
    e = sub.add_parser("eval", help="measure what quantization costs with Kiln's model in PyTorch")
    _engine_arguments(e)
    e.add_argument("--quant", choices=["w8a16", "w4a16", "fp8"])
    e.add_argument("--kv-cache", choices=["int8", "fp8"])
    e.add_argument("--dtype", required=True, choices=["float32", "float16", "bfloat16"],
                   help="the quantized engine's dtype (scales are rounded to it)")
    e.add_argument("--calibration", help="kiln.calibration/1 file (else calibrate on the prompts)")
    t = sub.add_parser("tokenize", help="print token-id samples of a text file as JSON")
    _sample_arguments(t)


def read_samples(args) -> list[list[int]] | None:
    """Prompts from --text (tokenized) or --prompts files; None when neither is given."""
    if args.text is None:
        if args.tokenizer is not None or args.samples is not None or args.seq_len is not None:
            raise BridgeError("--tokenizer, --samples and --seq-len go with --text FILE")
        prompts = [p for f in getattr(args, "prompts", []) for p in parse_prompt_file(f)]
        return prompts or None
    if getattr(args, "prompts", []):
        raise BridgeError("give --text or --prompts, not both")
    if args.tokenizer is None:
        raise BridgeError("--text needs --tokenizer DIR (a directory with tokenizer.json)")
    return text_samples(args.text, args.tokenizer, args.samples, args.seq_len)


def _write_json(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(value if isinstance(value, str) else json.dumps(value, indent=2) + "\n")


def main(args) -> int:
    if args.command == "tokenize":
        if args.text is None:
            raise BridgeError("tokenize needs --text FILE and --tokenizer DIR")
        print(json.dumps({"prompts": read_samples(args)}))
        return 0
    job = read_job(args.job)
    device = pick_device(args.device)
    prompts = read_samples(args)
    if prompts is None:
        raise BridgeError("give --prompts FILE or --text FILE --tokenizer DIR")
    check_prompts(prompts, job.vocab, args.text or ", ".join(args.prompts))
    watch = Stopwatch(device)
    engine = Engine(job, args.hf, device, args.batch_tokens)
    watch.mark("load")
    if args.command == "calibrate":
        _write_json(args.out, format_calibration(engine.calibrate(prompts)))
    else:
        if args.quant is None and args.kv_cache is None:
            raise BridgeError("give --quant and/or --kv-cache to evaluate")
        calibration = None
        if args.calibration:
            with open(args.calibration) as f:
                calibration = json.load(f)
        _write_json(args.out, engine.evaluate(prompts, args.quant, args.kv_cache, args.dtype, calibration))
    watch.mark(args.command)
    if args.stats:
        _write_json(args.stats, {**watch.stats(), "prompts": len(prompts), "tokens": sum(map(len, prompts))})
    return 0
