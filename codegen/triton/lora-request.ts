// The example client request a Triton repository with runtime LoRA comes with (lora_request.py): one generation
// through the ensemble naming a LoRA task, sending the task's lora_weights / lora_config (the .npy files
// `kiln compile --lora` wrote) so the backend caches them; later requests for that task may send lora_task_id alone
// (tensorrt_llm/config.pbtxt @ 2a9abd95 describes this caching). Weights travel with KServe's binary tensor
// extension, because Triton's JSON body cannot carry FP16. Generated text is deterministic; the only values from
// the user (a directory, task ids) enter as JSON literals, never as code.

import type { TritonLoraOptions } from "./options.ts";

const WIRE_TYPE: Record<TritonLoraOptions["weightsDatatype"], string> = { TYPE_FP32: "FP32", TYPE_FP16: "FP16", TYPE_BF16: "BF16" };

export function loraRequestScript(lora: TritonLoraOptions): string {
  const lit = (v: unknown) => JSON.stringify(v);
  return `"""Example request with runtime LoRA through the ensemble (written by kiln triton).

python3 lora_request.py [--url http://localhost:8000] [--task N] [--text TEXT] [--max-tokens N] [--lora-dir DIR]

Sends lora_task_id plus the task's lora_weights and lora_config (lora/<task>/model.lora_{weights,config}.npy from
kiln compile --lora); once the backend has cached a task, requests may carry lora_task_id alone.
"""
import argparse
import json
import os
import urllib.request

import numpy as np

LORA_DIR = ${lit(lora.adaptersDir)}
TASK_IDS = ${lit(lora.taskIds)}
WEIGHTS_WIRE_TYPE = ${lit(WIRE_TYPE[lora.weightsDatatype])}
NUMPY_TYPE = {"FP32": np.float32, "FP16": np.float16}


def request_body(text, max_tokens, task, lora_dir):
    folder = os.path.join(lora_dir, str(task))
    weights = np.load(os.path.join(folder, "model.lora_weights.npy")).astype(NUMPY_TYPE[WEIGHTS_WIRE_TYPE])
    config = np.load(os.path.join(folder, "model.lora_config.npy")).astype(np.int32)
    raw = weights.tobytes()
    header = {
        "inputs": [
            {"name": "text_input", "datatype": "BYTES", "shape": [1, 1], "data": [text]},
            {"name": "max_tokens", "datatype": "INT32", "shape": [1, 1], "data": [max_tokens]},
            {"name": "lora_task_id", "datatype": "UINT64", "shape": [1, 1], "data": [task]},
            {"name": "lora_weights", "datatype": WEIGHTS_WIRE_TYPE, "shape": list(weights.shape),
             "parameters": {"binary_data_size": len(raw)}},
            {"name": "lora_config", "datatype": "INT32", "shape": list(config.shape), "data": config.ravel().tolist()},
        ],
        "outputs": [{"name": "text_output"}],
    }
    head = json.dumps(header).encode()
    return head, raw


def main():
    p = argparse.ArgumentParser(description="one generation with a LoRA task through Triton's ensemble")
    p.add_argument("--url", default="http://localhost:8000")
    p.add_argument("--task", type=int, default=TASK_IDS[0], choices=TASK_IDS)
    p.add_argument("--text", default="Hello")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--lora-dir", default=LORA_DIR)
    a = p.parse_args()
    head, raw = request_body(a.text, a.max_tokens, a.task, a.lora_dir)
    req = urllib.request.Request(f"{a.url}/v2/models/ensemble/infer", data=head + raw, method="POST", headers={
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))})
    with urllib.request.urlopen(req) as r:
        print(json.loads(r.read()))


if __name__ == "__main__":
    main()
`;
}
