"""The runtime LoRA tensors `kiln compile --lora` writes, read with numpy and checked against PEFT's own LoRA layers
(not Kiln's reader): for every lora_config row [module_id, layer, rank] the lora_weights row holds that layer's
lora_A, then lora_B times PEFT's `scaling`, as examples/hf_lora_convert.py lays them out (module ids of
tensorrt_llm/lora_manager.py), zero-padded to the longest row. GPT-2's fused c_attn adapter comes out as attn_q /
attn_k / attn_v rows that share A and split B by output columns."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_kiln_output import kiln_compile

pytest.importorskip("peft", reason="checking runtime LoRA files needs peft (.ci/setup-python.sh installs it)")
transformers = pytest.importorskip("transformers")
import torch  # noqa: E402
from peft import PeftModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LORA = REPO / "test" / "fixtures" / "lora"
HF = REPO / "test" / "fixtures" / "hf"
IDS = {"attn_q": 1, "attn_k": 2, "attn_v": 3, "attn_dense": 4, "mlp_h_to_4h": 5, "mlp_4h_to_h": 6, "mlp_gate": 7}
LLAMA = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_dense",
         "gate_proj": "mlp_h_to_4h", "down_proj": "mlp_4h_to_h", "up_proj": "mlp_gate"}


def peft_layers(family: str, adapter: str):
    base = transformers.AutoModelForCausalLM.from_pretrained(str(HF / family), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(LORA / family / adapter))
    return {name: m for name, m in model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}


def expected_rows(family: str, adapter: str):
    """{(module_id, layer): (A [r, in], B*scale [out, r])} from PEFT's layers."""
    rows = {}
    for name, m in peft_layers(family, adapter).items():
        layer = int(name.split(".layers.")[1].split(".")[0]) if ".layers." in name else int(name.split(".h.")[1].split(".")[0])
        A = m.lora_A["default"].weight.detach().numpy()
        B = m.lora_B["default"].weight.detach().numpy() * m.scaling["default"]
        leaf = name.rsplit(".", 1)[1]
        if family == "gpt2" and leaf == "c_attn":  # fused qkv: one A, B split by output columns
            d = B.shape[0] // 3
            for i, mod in enumerate(("attn_q", "attn_k", "attn_v")):
                rows[(IDS[mod], layer)] = (A, B[i * d:(i + 1) * d])
        elif family == "gpt2":
            mod = {"attn.c_proj": "attn_dense", "mlp.c_fc": "mlp_h_to_4h", "mlp.c_proj": "mlp_4h_to_h"}[".".join(name.rsplit(".", 2)[1:])]
            rows[(IDS[mod], layer)] = (A, B)
        else:
            rows[(IDS[LLAMA[leaf]], layer)] = (A, B)
    return rows


@pytest.mark.parametrize("family,adapters", [("llama", ["attn_qv", "all_rslora"]), ("gpt2", ["all_rslora"])])
def test_runtime_rows_are_peft_layers(family: str, adapters: list, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile(family, out, 2, 1, "--lora", ",".join(str(LORA / family / a) for a in adapters))
    manifest = json.loads((out / "lora" / "adapters.json").read_text())
    assert [a["task_id"] for a in manifest["adapters"]] == list(range(1, len(adapters) + 1))
    for task, adapter in enumerate(adapters, start=1):
        w = np.load(out / "lora" / str(task) / "model.lora_weights.npy")
        c = np.load(out / "lora" / str(task) / "model.lora_config.npy")
        assert w.dtype == np.float32 and c.dtype == np.int32 and c.shape[2] == 3 and w.shape[:2] == c.shape[:2]
        want = expected_rows(family, adapter)
        assert sorted(want) == sorted((int(m), int(l)) for m, l, _ in c[0])
        for row, (mod, layer, rank) in zip(w[0], c[0]):
            A, B = want[(int(mod), int(layer))]
            assert rank == A.shape[0]
            n = A.size + B.size
            np.testing.assert_allclose(row[:A.size], A.ravel(), rtol=0, atol=0)
            np.testing.assert_allclose(row[A.size:n], B.ravel(), rtol=1e-6, atol=1e-7)
            assert not row[n:].any()
