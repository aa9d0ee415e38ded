"""Test helper: runs many torch-engine cases in one Python process (torch and transformers import once).

Usage: torch_engine_batch.py MANIFEST.json OUT.json. The manifest is a list of {"job", "hf", "prompts", "evals":
[{"quant", "kv", "dtype"}]}; the output holds, per case, the calibration and each evaluation's metrics (the
evaluation calibrates on the same prompts, as `kiln eval` does without --calibration).
"""
from __future__ import annotations

import json
import sys

import torch
from kiln_bridge.torch_engine import Engine, read_job


def main(manifest: str, out: str) -> None:
    with open(manifest) as f:
        cases = json.load(f)
    results = []
    for case in cases:
        engine = Engine(read_job(case["job"]), case["hf"], torch.device("cpu"))
        prompts = case["prompts"]
        evals = [engine.evaluate(prompts, e.get("quant"), e.get("kv"), e["dtype"], None) for e in case["evals"]]
        results.append({"calibration": engine.calibrate(prompts), "evals": evals})
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
