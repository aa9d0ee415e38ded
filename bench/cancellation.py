# PyTorch half of bench/cancellation.mjs: float32 F.linear against float64 on 20000 random shapes of the tiny-shape
# test's range (rows 1-9, in 1-300, out 1-70, bias or not): how many exceed a plain rel L2 of 1e-6, and the worst
# error against the terms' magnitude. Usage: .venv/bin/python bench/cancellation.py
import random

import torch
from torch.nn.functional import linear

torch.set_num_threads(1)
torch.manual_seed(1)
random.seed(1)
N = 20000
fails = 0
worst = 0.0
worst_terms = 0.0
for _ in range(N):
    rows, in_f, out_f = random.randint(1, 9), random.randint(1, 300), random.randint(1, 70)
    x = torch.rand(rows, in_f) * 2 - 1
    w = torch.rand(out_f, in_f) * 2 - 1
    b = torch.rand(out_f) * 2 - 1 if random.random() < 0.5 else None
    err = linear(x, w, b).double() - linear(x.double(), w.double(), None if b is None else b.double())
    exact = linear(x.double(), w.double(), None if b is None else b.double())
    terms = linear(x.double().abs(), w.double().abs(), None if b is None else b.double().abs())
    rel = (err.norm() / exact.norm()).item()
    fails += rel > 1e-6
    worst = max(worst, rel)
    worst_terms = max(worst_terms, (err.norm() / terms.norm()).item())
print(
    f"torch {torch.__version__} float32 F.linear vs float64, {N} random tiny shapes: {fails} exceed plain rel L2 1e-6, "
    f"worst {worst:.2e}; against the terms: worst {worst_terms:.2e}"
)
