"""PyTorch's side of the interpreter benchmark (bench/interp.ts): fp32 forward of the same LLaMA checkpoint over
the same prompt with the same thread count. Prints one JSON line: {"seconds": [...], "threads": n, "torch": ver}.
Usage: torch_forward.py CHECKPOINT_DIR THREADS ROUNDS ID,ID,..."""

import json
import sys
import time

import torch
from transformers import LlamaForCausalLM


def main() -> None:
    ckpt, threads, rounds, ids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(threads)
    model = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).eval()
    x = torch.tensor([[int(i) for i in ids.split(",")]])
    seconds = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            model(x, use_cache=False)
            seconds.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
