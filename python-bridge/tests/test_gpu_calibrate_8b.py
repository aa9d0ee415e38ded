"""python-bridge/gpu_calibrate_8b.py at the tiny shape on the CPU: the whole run (checkpoint generation, job, torch-engine
calibration, FP8 compile at tp 1 and 2, rank checks) with real values; the rank check catching planted bugs (a
flipped FP8 byte, swapped rank files); and `prepare`'s header-only checkpoint (sparse, same names) giving a job that
runs on the generated checkpoint. Needs node for the kiln steps (skipped visibly without it).
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gpu_calibrate_8b as g  # noqa: E402
from kiln_bridge.safetensors_io import load_file, save_file  # noqa: E402

pytest.importorskip("transformers")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
TINY = g.SHAPES["tiny"]


def test_checkpoint_has_the_shape_and_is_written_in_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(g, "SHARD_BYTES", 64 << 10)
    info = g.generate_checkpoint(str(tmp_path), TINY, seed=0, device="cpu")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]
    assert info["files"] == len(set(index.values())) > 1
    plan = dict(g.tensor_plan(TINY))
    assert sorted(index) == sorted(plan)
    w = load_file(str(tmp_path / index["model.layers.1.mlp.down_proj.weight"]))["model.layers.1.mlp.down_proj.weight"]
    assert w.dtype == torch.bfloat16 and list(w.shape) == [64, 160]
    assert 0.015 < float(w.float().std()) < 0.025
    assert info["parameters"] == sum(int(torch.tensor(s).prod()) for s in plan.values())
    assert sum(int(torch.tensor(s).prod()) for _, s in g.tensor_plan(g.SHAPES["8b"])) == 8_030_261_248


@needs_node
def test_tiny_run_end_to_end(tmp_path):
    out = tmp_path / "out"
    assert g.main(["run", "--shape", "tiny", "--device", "cpu", "--samples", "4", "--seq-len", "8", "--out", str(out),
                   "--work", str(tmp_path / "work")]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["ok"] and r["calibration"]["tokens"] == 32
    assert (r["calibration"]["linears"], r["calibration"]["attentions"]) == (10, 2)
    assert [f["tp"] for f in r["fp8"]] == [1, 2]
    assert [[k["fp8_weights"] for k in f["ranks"]] for f in r["fp8"]] == [[10], [10, 10]]
    calib = json.loads((out / "calibration.json").read_text())
    assert calib["format"] == "kiln.calibration/1" and calib["tokens"] == 32
    assert all(v > 0 for v in calib["inputs"].values())
    assert not (tmp_path / "work").exists()  # scratch removed without --keep


@needs_node
def test_rank_check_catches_planted_bugs(tmp_path):
    ckpt, work = str(tmp_path / "ckpt"), str(tmp_path / "work")
    g.generate_checkpoint(ckpt, TINY, seed=1, device="cpu")
    job = str(tmp_path / "job")
    g.make_job(ckpt, job)
    engine = g.Engine(g.read_job(job), ckpt, torch.device("cpu"))
    calibration = engine.calibrate([[5, 9, 200, 3], [7, 7, 1, 400]])
    calib_file = str(tmp_path / "calib.json")
    with open(calib_file, "w") as f:
        json.dump(calibration, f)
    out = os.path.join(work, "fp8-tp2")
    g._check(g._kiln(["compile", "models/llama.ts", "--hf", ckpt, "--out", out, "--quant", "fp8", "--calibration",
                      calib_file, "--tp", "2", "--no-typecheck"]), "compile")
    assert all(g.check_fp8_rank(out, ckpt, calibration, r, "cpu")["ok"] for r in (0, 1))
    # A flipped FP8 code.
    rank0 = os.path.join(out, "rank0.safetensors")
    t = load_file(rank0)
    t = {k: v.clone() for k, v in t.items()}
    codes = t["transformer.layers.1.mlp.proj.weight"].view(torch.uint8)
    codes[0, 0] ^= 1
    save_file(t, rank0)
    bad = g.check_fp8_rank(out, ckpt, calibration, 0, "cpu")
    assert not bad["ok"] and bad["problems"] == ["transformer.layers.1.mlp.proj.weight: FP8 codes differ from E4M3(w / scale)"]
    # Rank files swapped: every sharded tensor is the other rank's.
    os.replace(os.path.join(out, "rank1.safetensors"), os.path.join(out, "swap"))
    os.replace(rank0, os.path.join(out, "rank1.safetensors"))
    os.replace(os.path.join(out, "swap"), rank0)
    assert len(g.check_fp8_rank(out, ckpt, calibration, 0, "cpu")["problems"]) == 10
    # A calibration that is not the one compiled in.
    other = {**calibration, "inputs": {k: v * 2 for k, v in calibration["inputs"].items()}}
    assert any("activation_scaling_factor" in p for p in g.check_fp8_rank(out, ckpt, other, 0, "cpu")["problems"])


@needs_node
def test_prepare_writes_a_sparse_checkpoint_and_a_job_that_runs_on_the_real_one(tmp_path):
    g.header_only_checkpoint(str(tmp_path / "h"), g.SHAPES["8b"])
    files = [f for f in os.listdir(tmp_path / "h") if f.endswith(".safetensors")]
    size = sum(os.path.getsize(tmp_path / "h" / f) for f in files)
    blocks = sum(os.stat(tmp_path / "h" / f).st_blocks * 512 for f in files)
    assert 2 * 8_030_261_248 < size < 2 * 8_030_261_248 + 1e6  # the data, plus headers
    assert blocks < 1e6  # 16 GB of holes
    job = str(tmp_path / "job")
    assert g.main(["prepare", "--job", job, "--shape", "tiny"]) == 0
    out = tmp_path / "out"
    assert g.main(["run", "--shape", "tiny", "--device", "cpu", "--samples", "2", "--seq-len", "4", "--tp", "1",
                   "--job", job, "--out", str(out)]) == 0
    assert "job_seconds" not in json.loads((out / "results.json").read_text())
