"""The torch.distributed transport (one process per rank, gloo on CPU here; NCCL on GPUs) gives the same verdict.

Processes are started directly with the env:// variables torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) on the loopback interface: Debian's torch 1.13 torchrun is broken on Python 3.11.
"""
import os
import socket
import subprocess
import sys

from conftest import BRIDGE, fixture_dir
from test_verify_negative import rewrite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world: int, *args: str, timeout: float = 120):
    port = free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([str(BRIDGE), os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, "-m", "kiln_bridge", "verify", *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], outs


def test_tp2_pp2_over_gloo_matches_golden(make_ckpt):
    ckpt = make_ckpt("llama3_gqa", tp=2, pp=2)
    codes, outs = launch(4, "--ckpt", ckpt, "--hf", fixture_dir("llama3_gqa"), "--device", "cpu")
    assert codes == [0, 0, 0, 0], outs
    assert "torch.distributed (gloo, 4 processes)" in outs[0][0] and outs[0][0].rstrip().endswith("PASS")
    assert all(out == "" for out, _ in outs[1:])  # only rank 0 prints the report


def test_a_broken_rank_fails_every_process_without_hanging(make_ckpt):
    ckpt = make_ckpt("gpt2", tp=2)
    rewrite(ckpt, 1, lambda t: t.pop("transformer.layers.0.attention.qkv.bias"))
    codes, outs = launch(2, "--ckpt", ckpt, "--hf", fixture_dir("gpt2"), "--device", "cpu", timeout=60)
    assert codes == [2, 2]
    assert all("rank 1:" in err and "attention.qkv.bias' missing" in err for _, err in outs)
