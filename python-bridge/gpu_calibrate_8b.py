"""Kiln's torch-engine calibration at real scale on one GPU, end to end, for python-bridge/VERIFIED.md.

    python3 python-bridge/gpu_calibrate_8b.py run --out DIR [--job JOB] [--shape 8b|small|tiny] [--device cuda]
                                              [--samples 512] [--seq-len 512] [--tp 1,2] [--work SCRATCH] [--keep]
                                              [--text FILE --tokenizer DIR]
    python3 python-bridge/gpu_calibrate_8b.py prepare --job JOB [--shape 8b|small|tiny]      (needs node)

`run`, from the repository root:
1. generates a synthetic LLaMA of the shape (8b: hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, vocab
   128256, untied lm_head; ~8.0e9 parameters) with random bf16 weights (normal, std 0.02; norms 1) on the machine,
   as a sharded safetensors checkpoint + config.json in --work, one shard in memory at a time;
2. gets the torch engine's job (Kiln's generated code + weight plan, src/driver/torch-job.ts): with `node` on PATH
   through `kiln calibrate --engine torch --torch-job`, else from --job (made beforehand by `prepare`, which writes a
   header-only checkpoint of the same shape, sparse on disk, and runs the same kiln command on it);
3. calibrates over --samples random prompts of --seq-len tokens (seeded; or --text FILE --tokenizer DIR packed into
   such windows, kiln_bridge/text_samples.py) with the torch engine on --device, timing
   the weight load and the calibration and recording torch.cuda.max_memory_allocated;
4. with `node`: compiles the FP8 checkpoint (`kiln compile --quant fp8 --calibration ...`) at each --tp (in
   parallel: each compile is one Node process) and checks
   every rank (check_fp8_rank: each tensor against the source sharded by TensorRT-LLM's rules, FP8 bytes equal to
   torch's own E4M3 conversion, scales equal amax / 448 of the rank's shard or of the calibration); without node the
   step is skipped and the results say so.
Everything lands in DIR/results.json (and DIR/calibration.json). Exit 0 when every step that ran passed.
The scratch directory (checkpoint, compiled outputs) is deleted at the end unless --keep.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from kiln_bridge import fake_quant as fq  # noqa: E402
from kiln_bridge.torch_engine import Engine, Stopwatch, check_prompts, read_job  # noqa: E402

SHAPES = {
    "8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256),
    "small": dict(hidden=1024, layers=4, heads=16, kv_heads=4, ffn=3584, vocab=32000),
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=160, vocab=512),
}
SHARD_BYTES = 4 << 30
BF16 = torch.bfloat16


def config_of(shape: dict) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape["hidden"],
        "intermediate_size": shape["ffn"], "num_hidden_layers": shape["layers"],
        "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv_heads"],
        "head_dim": shape["hidden"] // shape["heads"], "vocab_size": shape["vocab"], "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }


def tensor_plan(shape: dict) -> list[tuple[str, list[int]]]:
    """(HF name, shape) of every tensor, in file order."""
    h, f, v = shape["hidden"], shape["ffn"], shape["vocab"]
    hd = h // shape["heads"]
    kv = shape["kv_heads"] * hd
    out = [("model.embed_tokens.weight", [v, h])]
    for i in range(shape["layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]),
                (p + "self_attn.k_proj.weight", [kv, h]), (p + "self_attn.v_proj.weight", [kv, h]),
                (p + "self_attn.o_proj.weight", [h, h]), (p + "post_attention_layernorm.weight", [h]),
                (p + "mlp.gate_proj.weight", [f, h]), (p + "mlp.up_proj.weight", [f, h]),
                (p + "mlp.down_proj.weight", [h, f])]
    return out + [("model.norm.weight", [h]), ("lm_head.weight", [v, h])]


def shards(plan: list[tuple[str, list[int]]]) -> list[list[tuple[str, list[int]]]]:
    out: list[list[tuple[str, list[int]]]] = [[]]
    size = 0
    for name, shape in plan:
        n = 2 * int(torch.tensor(shape).prod())
        if out[-1] and size + n > SHARD_BYTES:
            out.append([])
            size = 0
        out[-1].append((name, shape))
        size += n
    return out


def _files(plan) -> list[tuple[str, list[tuple[str, list[int]]]]]:
    groups = shards(plan)
    return [(f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors", g) for i, g in enumerate(groups)]


def _write_index(ckpt: str, files) -> None:
    weight_map = {name: file for file, group in files for name, _ in group}
    with open(os.path.join(ckpt, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)


def _header(group: list[tuple[str, list[int]]]) -> tuple[bytes, int]:
    entries, offset = {}, 0
    for name, shape in group:
        n = 2 * int(torch.tensor(shape).prod())
        entries[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(entries).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head, offset


def generate_checkpoint(ckpt: str, shape: dict, seed: int, device: str) -> dict:
    """Random bf16 weights, written shard by shard (one shard in host memory at a time)."""
    os.makedirs(ckpt, exist_ok=True)
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        json.dump(config_of(shape), f, indent=1)
    gen = torch.Generator(device=device).manual_seed(seed)
    files = _files(tensor_plan(shape))
    nbytes = 0
    for file, group in files:
        head, size = _header(group)
        with open(os.path.join(ckpt, file), "wb") as out:
            out.write(head)
            for name, shp in group:
                if name.endswith("norm.weight"):
                    t = torch.ones(shp, dtype=BF16)
                else:
                    t = (torch.randn(shp, generator=gen, device=device, dtype=torch.float32) * 0.02).to(BF16).cpu()
                out.write(t.contiguous().view(torch.uint8).numpy().data)
        nbytes += size
    _write_index(ckpt, files)
    return {"bytes": nbytes, "files": len(files), "parameters": nbytes // 2}


def header_only_checkpoint(ckpt: str, shape: dict) -> None:
    """The same names, shapes and files with no data (sparse files): enough for Kiln to prepare the job."""
    os.makedirs(ckpt, exist_ok=True)
    with open(os.path.join(ckpt, "config.json"), "w") as f:
        json.dump(config_of(shape), f, indent=1)
    files = _files(tensor_plan(shape))
    for file, group in files:
        head, size = _header(group)
        with open(os.path.join(ckpt, file), "wb") as out:
            out.write(head)
            out.truncate(len(head) + size)
    _write_index(ckpt, files)


def _kiln(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["node", os.path.join(REPO, "bin", "kiln.js"), *args], cwd=REPO, capture_output=True,
                          text=True, **kw)


def _check(r: subprocess.CompletedProcess, what: str) -> None:
    if r.returncode != 0:
        raise SystemExit(f"gpu_calibrate_8b: {what} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")


def make_job(ckpt: str, job: str) -> None:
    r = _kiln(["calibrate", "models/llama.ts", "--hf", ckpt, "--out", os.path.join(job, "unused.json"), "--engine",
               "torch", "--torch-job", job, "--no-typecheck"])
    _check(r, "kiln calibrate --torch-job")


def has_node() -> bool:
    return shutil.which("node") is not None


# ---- FP8 rank check: TensorRT-LLM 1.2.1's LLaMA layout, written from its sharding rules (models/llama/convert.py:
# fused qkv = [q_r; k_r; v_r] by heads, ColumnLinear split on rows, RowLinear on columns, lm_head rows), not from
# Kiln's lowering.

def _expected(src, cfg: dict, tp: int, r: int) -> dict[str, Callable[[], tuple[torch.Tensor, ...]]]:
    """Rank r's tensors by TensorRT-LLM name, made on demand: (weight,) or, for a gated MLP fc / gate, (weight,
    partner weight), the two sharing one FP8 scale."""
    h, heads, kvh = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // heads

    def rows(t, n):
        return t.chunk(n, dim=0)[r]

    out = {"transformer.vocab_embedding.weight": lambda: (src("model.embed_tokens.weight"),),
           "transformer.ln_f.weight": lambda: (src("model.norm.weight"),),
           "lm_head.weight": lambda: (rows(src("lm_head.weight"), tp),)}
    for i in range(cfg["num_hidden_layers"]):
        hf, k = f"model.layers.{i}.", f"transformer.layers.{i}."

        def qkv(hf=hf):
            q = src(hf + "self_attn.q_proj.weight").reshape(heads, hd, h)
            kk = src(hf + "self_attn.k_proj.weight").reshape(kvh, hd, h)
            v = src(hf + "self_attn.v_proj.weight").reshape(kvh, hd, h)
            return (torch.cat([rows(q, tp).reshape(-1, h), rows(kk, tp).reshape(-1, h), rows(v, tp).reshape(-1, h)]),)

        def mlp(first, second, hf=hf):
            return rows(src(hf + f"mlp.{first}_proj.weight"), tp), rows(src(hf + f"mlp.{second}_proj.weight"), tp)

        out.update({
            k + "input_layernorm.weight": lambda hf=hf: (src(hf + "input_layernorm.weight"),),
            k + "post_layernorm.weight": lambda hf=hf: (src(hf + "post_attention_layernorm.weight"),),
            k + "attention.qkv.weight": qkv,
            k + "attention.dense.weight": lambda hf=hf: (src(hf + "self_attn.o_proj.weight").chunk(tp, dim=1)[r],),
            k + "mlp.fc.weight": lambda mlp=mlp: mlp("gate", "up"),  # TensorRT-LLM's fc is HF's gate_proj
            k + "mlp.gate.weight": lambda mlp=mlp: mlp("up", "gate"),
            k + "mlp.proj.weight": lambda hf=hf: (src(hf + "mlp.down_proj.weight").chunk(tp, dim=1)[r],),
        })
    return out


def check_fp8_rank(out_dir: str, ckpt: str, calibration: dict, r: int, device: str) -> dict:
    """Every tensor of rank r's file against the source: FP8 weights byte-equal to torch's E4M3 of w / scale."""
    from kiln_bridge.safetensors_io import load_file
    from kiln_bridge.weight_expr import SourceCheckpoint

    with open(os.path.join(out_dir, "config.json")) as f:
        cfg = json.load(f)
    tp = cfg["mapping"]["tp_size"]
    with open(os.path.join(ckpt, "config.json")) as f:
        hf_cfg = json.load(f)
    source = SourceCheckpoint(ckpt)
    expected = _expected(lambda n: source.read(n).to(device), hf_cfg, tp, r)
    got = load_file(os.path.join(out_dir, f"rank{r}.safetensors"))
    problems, fp8 = [], 0
    for name, make in expected.items():
        if name not in got:
            problems.append(f"{name}: missing")
            continue
        want = make()
        t = got[name].to(device)
        if t.dtype != torch.float8_e4m3fn:
            if not torch.equal(t, want[0].to(t.dtype)):
                problems.append(f"{name}: differs from the source shard")
            continue
        module = name[: -len(".weight")]
        s = got[module + ".weights_scaling_factor"].to(device)
        amax = max(float(w.abs().amax().float()) for w in want)
        if s.dtype != torch.float32 or list(s.shape) != [1] or s.item() != fq.scale_from_amax(amax, fq.E4M3_MAX):
            problems.append(f"{module}.weights_scaling_factor: {s.tolist()} is not amax / 448 = {amax / 448}")
        codes = (want[0].float() / s).clamp(-448, 448).to(torch.float8_e4m3fn)
        if not torch.equal(t.view(torch.uint8), codes.view(torch.uint8)):
            problems.append(f"{name}: FP8 codes differ from E4M3(w / scale)")
        act = got[module + ".activation_scaling_factor"]
        if act.item() != fq.scale_from_amax(calibration["inputs"][module], fq.E4M3_MAX):
            problems.append(f"{module}.activation_scaling_factor: {act.item()} is not the calibrated amax / 448")
        fp8 += 1
    known = set(expected) | {n for n in got if n.endswith(("scaling_factor",))}
    problems += [f"{n}: unexpected tensor" for n in sorted(set(got) - known)]
    return {"rank": r, "fp8_weights": fp8, "tensors": len(got), "ok": not problems, "problems": problems[:10]}


def compile_and_check(ckpt: str, calib_file: str, calibration: dict, tps: list[int], work: str, device: str) -> list[dict]:
    """`kiln compile --quant fp8` at every tp, all at once (each is one Node process, mostly single-threaded FP8
    encoding), then the rank checks of each output."""
    outs = {tp: os.path.join(work, f"fp8-tp{tp}") for tp in tps}
    t0 = time.perf_counter()
    procs = {tp: subprocess.Popen(["node", os.path.join(REPO, "bin", "kiln.js"), "compile", "models/llama.ts", "--hf",
                                   ckpt, "--out", out, "--quant", "fp8", "--calibration", calib_file, "--tp", str(tp),
                                   "--no-typecheck", "--force"], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
             for tp, out in outs.items()}
    rows = []
    for tp, proc in procs.items():
        _, err = proc.communicate()
        row: dict = {"tp": tp, "compile_seconds": round(time.perf_counter() - t0, 2), "compile_ok": proc.returncode == 0}
        if proc.returncode != 0:
            row["error"] = err.strip().splitlines()[-1:]
        rows.append(row)
    for row in rows:
        if not row["compile_ok"]:
            continue
        out = outs[row["tp"]]
        t1 = time.perf_counter()
        row["ranks"] = [check_fp8_rank(out, ckpt, calibration, rank, device) for rank in range(row["tp"])]
        row["check_seconds"] = round(time.perf_counter() - t1, 2)
        row["bytes"] = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        shutil.rmtree(out, ignore_errors=True)
    return rows


def run(args) -> int:
    shape = SHAPES[args.shape]
    os.makedirs(args.out, exist_ok=True)
    work = args.work or tempfile.mkdtemp(prefix="kiln-gpu-calibrate-")
    ckpt = os.path.join(work, "ckpt")
    results: dict = {"shape": {"name": args.shape, **shape}, "device": args.device, "torch": torch.__version__,
                     "node": shutil.which("node"), "notes": []}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name(0)
    try:
        t0 = time.perf_counter()
        results["checkpoint"] = generate_checkpoint(ckpt, shape, args.seed, args.device)
        results["checkpoint"]["seconds"] = round(time.perf_counter() - t0, 2)
        job = args.job
        if job is None:
            if not has_node():
                raise SystemExit("gpu_calibrate_8b: no node here and no --job: run `python3 python-bridge/"
                                 f"gpu_calibrate_8b.py prepare --job JOB --shape {args.shape}` where node is, "
                                 "carry JOB, and pass --job JOB")
            job = os.path.join(work, "job")
            t0 = time.perf_counter()
            make_job(ckpt, job)
            results["job_seconds"] = round(time.perf_counter() - t0, 2)
        if args.text:
            from kiln_bridge.text_samples import text_samples

            prompts = text_samples(args.text, args.tokenizer, args.samples, args.seq_len)
            check_prompts(prompts, shape["vocab"], args.text)
        else:
            gen = torch.Generator().manual_seed(args.seed + 1)
            prompts = torch.randint(0, shape["vocab"], (args.samples, args.seq_len), generator=gen).tolist()
        watch = Stopwatch(torch.device(args.device))
        engine = Engine(read_job(job), ckpt, torch.device(args.device), args.batch_tokens)
        watch.mark("load")
        calibration = engine.calibrate(prompts)
        watch.mark("calibrate")
        del engine
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        stats = watch.stats()
        results["calibration"] = {**stats, "samples": args.samples, "seq_len": args.seq_len,
                                  "tokens": args.samples * args.seq_len, "batch_tokens": args.batch_tokens,
                                  "calibrate_seconds": round(stats["seconds"]["calibrate"] - stats["seconds"]["load"], 3),
                                  "linears": len(calibration["inputs"]), "attentions": len(calibration["kvCache"])}
        calib_file = os.path.join(args.out, "calibration.json")
        with open(calib_file, "w") as f:
            f.write(json.dumps(calibration, indent=2) + "\n")
        if has_node():
            results["fp8"] = compile_and_check(ckpt, calib_file, calibration, args.tp, work, args.device)
        else:
            results["notes"].append("node is not on PATH here: kiln compile --quant fp8 and the rank checks were "
                                    "skipped; run them where node is (VERIFIED.md)")
        ok = all(r.get("compile_ok") and all(k["ok"] for k in r["ranks"]) for r in results.get("fp8", []))
        results["ok"] = ok
    finally:
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    return 0 if results.get("ok") else 1


def prepare(args) -> int:
    if not has_node():
        raise SystemExit("gpu_calibrate_8b prepare: needs node (it runs kiln calibrate --torch-job)")
    with tempfile.TemporaryDirectory(prefix="kiln-header-only-") as tmp:
        header_only_checkpoint(tmp, SHAPES[args.shape])
        make_job(tmp, args.job)
    print(f"wrote the torch job for the {args.shape} shape to {args.job}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True, help="results directory (results.json, calibration.json)")
    r.add_argument("--job", help="torch job made by `prepare` (needed where node is absent)")
    r.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    r.add_argument("--device", default="cuda")
    r.add_argument("--samples", type=int, default=512)
    r.add_argument("--seq-len", type=int, default=512)
    r.add_argument("--batch-tokens", type=int, default=16384)
    r.add_argument("--tp", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--text", help="calibrate on this text (with --tokenizer) instead of random token ids")
    r.add_argument("--tokenizer", help="directory holding tokenizer.json (its ids must fit the shape's vocabulary)")
    r.add_argument("--work", help="scratch directory for the checkpoint and compiled outputs (default: a temp dir)")
    r.add_argument("--keep", action="store_true", help="keep the scratch directory")
    q = sub.add_parser("prepare")
    q.add_argument("--job", required=True)
    q.add_argument("--shape", choices=sorted(SHAPES), default="8b")
    args = p.parse_args(argv)
    return run(args) if args.command == "run" else prepare(args)


if __name__ == "__main__":
    sys.exit(main())
