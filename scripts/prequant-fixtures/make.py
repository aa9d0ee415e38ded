"""Pre-quantized FP8 fixtures for Kiln (test/fixtures/prequant/<name>/), made from test/fixtures/hf/llama3_gqa.

Written from the formats' own definitions, not from Kiln's reader:
- ModelOpt FP8 export (hf_quant_config.json {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8",
  ...}}; per Linear `weight` float8_e4m3fn, `weight_scale` and `input_scale` float32 scalars; scale = amax / 448,
  the ModelOpt convention; w = e4m3(weight) * weight_scale).
- compressed-tensors FP8 ("float-quantized" format; config.json quantization_config with quant_method
  "compressed-tensors", config_groups.group_0 {targets ["Linear"], weights {num_bits 8, type float, strategy tensor,
  symmetric, static}, input_activations {num_bits 8, type float, strategy tensor, static}}, ignore ["lm_head"];
  per Linear `weight` float8_e4m3fn, `weight_scale` [1] and `input_scale` [1] float32).

Known scales: weight scales are amax / 448 of the unquantized weight and input scales amax / 448 of each Linear's
input over the golden prompts, both rounded to float16 (so a float16 engine's scale cast is exact). q, k and v of a
layer share one weight scale, as do gate_proj and up_proj: TensorRT-LLM fuses each set into one FP8 GEMM with one
scale (FP8Linear.postprocess, fuse_gate_mlp), so with shared scales its requantization is the identity and the
golden below is exactly what TensorRT-LLM 1.2.1 computes.

Other tensors are float16 (config.json dtype float16). golden.safetensors (the format of ../shared/fixtures/hf/*): logits of the fixture model in transformers (float32)
with every quantized Linear's weight replaced by its dequantized value and its input fake-quantized as FP8Linear does
without the FP8 GEMM plugin (x -> e4m3(clamp(x / input_scale, +-448)) * input_scale). golden_weights.safetensors: the
same with dequantized weights only (what `kiln run` computes without the engine's activation quantization).

INT4 fixtures (awq_int4, gptq_int4) come from a LLaMA with llama3_gqa's architecture but hidden 128, intermediate 256
and 4 query / 2 key-value heads of 32, seeded: TensorRT-LLM 1.2.1 pads group-wise INT4 Linears whose sizes are not
multiples of max(64, group) * tp (WeightOnlyGroupwiseQuantLinear), and these sizes need no padding at tp 1 and 2.
Weights are quantized per group of 32 inputs, asymmetric min-max (scale = (max - min) / 15 in float16, zero point
z = round(-min / scale) clamped to 1..15, q = clamp(round(w / scale) + z, 0, 15)) and packed by the formats' own rules:
- AWQ (casper-hansen/AutoAWQ awq/modules/linear/gemm.py, WQLinear_GEMM.from_linear): `qweight` int32 [in, out/8] and
  `qzeros` int32 [in/group, out/8] hold eight values along the output dim, nibble i = column 8c + [0,2,4,6,1,3,5,7][i];
  `scales` float16 [in/group, out]; config quantization_config {quant_method awq, bits 4, group_size, version gemm}.
- GPTQ (AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, QuantLinear.pack): `qweight` int32 [in/8, out],
  nibble j of row r = input 8r + j; `qzeros` int32 [in/group, out/8] holds z - 1 in natural order; `scales` float16;
  `g_idx` int32 [in] = k // group; quantization_config {quant_method gptq, bits 4, group_size, desc_act false}.
Their golden.safetensors follows TensorRT-LLM 1.2.1's group-wise kernel: w = (q - 8) * s + half((8 - z) * s) (the zero
term stored in float16, as models/llama/convert.py load_weights_from_gptq does); golden_weights.safetensors uses the
format's exact dequantization w = (q - z) * s.

Usage: .venv/bin/python scripts/prequant-fixtures/make.py [--out test/fixtures/prequant]
Deterministic: rerunning writes byte-identical files.
"""

import argparse
import json
import os
import shutil

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file

SOURCE = "test/fixtures/hf/llama3_gqa"
NEW_TOKENS = 8
GROUPS = (("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",))


def f16(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32).half().float())


def e4m3(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-448.0, 448.0).to(torch.float8_e4m3fn)


def linears(model) -> dict[str, torch.nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"}


def input_amax(model, prompts) -> dict[str, float]:
    amax: dict[str, float] = {}
    hooks = [
        m.register_forward_pre_hook(
            lambda _m, a, n=n: amax.__setitem__(n, max(amax.get(n, 0.0), float(a[0].abs().max())))
        )
        for n, m in linears(model).items()
    ]
    with torch.no_grad():
        for ids in prompts:
            model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return amax


def quantize(model, prompts):
    """Per Linear: (fp8 codes, weight scale, input scale), scales shared within each GROUPS entry of a layer."""
    amax_in = input_amax(model, prompts)
    lin = linears(model)
    out = {}
    for name in lin:
        layer, _, proj = name.rpartition(".")
        group = next(g for g in GROUPS if proj in g)
        members = [f"{layer}.{p}" for p in group]
        w_amax = max(float(lin[m].weight.detach().abs().max()) for m in members)
        s_w = f16(w_amax / 448.0)
        s_in = f16(max(amax_in[m] for m in members) / 448.0)
        out[name] = (e4m3(lin[name].weight.detach() / s_w), s_w, s_in)
    return out


def run_golden(model, quant, prompts, fake_quant_inputs: bool, keep_weights: bool = False) -> dict[str, torch.Tensor]:
    lin = linears(model)
    saved = {n: m.weight.detach().clone() for n, m in lin.items()}
    hooks = []
    for n, m in lin.items():
        if keep_weights:
            continue
        codes, s_w, s_in = quant[n]
        m.weight.data = codes.float() * s_w
        if fake_quant_inputs:
            hooks.append(m.register_forward_pre_hook(lambda _m, a, s=s_in: (e4m3(a[0] / s).float() * s,)))
    golden = {}
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            golden[f"input_ids.{i}"] = torch.tensor(ids, dtype=torch.int32)
            golden[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
            seq = list(ids)
            for _ in range(NEW_TOKENS):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
            golden[f"greedy.{i}"] = torch.tensor(seq[len(ids) :], dtype=torch.int32)
    for h in hooks:
        h.remove()
    for n, m in lin.items():
        m.weight.data = saved[n]
    return golden


def write(out: str, name: str, model, quant, prompts, layout: str) -> None:
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tensors = {k: v.half().contiguous() for k, v in load_file(os.path.join(SOURCE, "model.safetensors")).items()}
    for n, (codes, s_w, s_in) in quant.items():
        tensors[f"{n}.weight"] = codes.contiguous()
        shape = () if layout == "modelopt" else (1,)  # ModelOpt exports 0-d scales, compressed-tensors [1]
        tensors[f"{n}.weight_scale"] = torch.full(shape, s_w, dtype=torch.float32)
        tensors[f"{n}.input_scale"] = torch.full(shape, s_in, dtype=torch.float32)
    save_file(dict(sorted(tensors.items())), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(SOURCE, "config.json")) as f:
        config = json.load(f)
    config["dtype"] = "float16"
    if layout == "modelopt":
        with open(os.path.join(d, "hf_quant_config.json"), "w") as f:
            json.dump(
                {
                    "producer": {"name": "modelopt", "version": "kiln-fixture"},
                    "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": ["lm_head"]},
                },
                f,
                indent=2,
            )
            f.write("\n")
    else:
        scheme = {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True, "dynamic": False}
        config["quantization_config"] = {
            "quant_method": "compressed-tensors",
            "format": "float-quantized",
            "quantization_status": "compressed",
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": scheme, "input_activations": scheme}},
            "ignore": ["lm_head"],
            "kv_cache_scheme": None,
        }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(SOURCE, "generation_config.json"), d)
    save_file(run_golden(model, quant, prompts, True), os.path.join(d, "golden.safetensors"))
    save_file(run_golden(model, quant, prompts, False), os.path.join(d, "golden_weights.safetensors"))


GROUP = 32
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def int4_model():
    with open(os.path.join(SOURCE, "config.json")) as f:
        config = json.load(f)
    config.update(
        hidden_size=128,
        intermediate_size=256,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        num_hidden_layers=2,
        dtype="float16",
    )
    cfg = transformers.LlamaConfig(
        **{k: v for k, v in config.items() if k not in ("architectures", "transformers_version")}
    )
    torch.manual_seed(1)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for prm in model.parameters():
            prm.normal_(0.0, 0.08)
            prm.copy_(prm.half().float())
        for n, prm in model.named_parameters():
            if n.endswith("norm.weight"):
                prm.copy_((1.0 + 0.1 * torch.randn_like(prm)).half().float())
    return model, config


def quantize_int4(w: torch.Tensor):
    """w [out, in] -> q [out, in] (0..15), z [groups, out], s [groups, out] float16-valued."""
    out, inf = w.shape
    g = w.reshape(out, inf // GROUP, GROUP)
    wmin, wmax = g.amin(-1), g.amax(-1)
    s = ((wmax - wmin) / 15.0).half().float()
    z = torch.round(-wmin / s).clamp(1, 15)
    q = (torch.round(g / s[..., None]) + z[..., None]).clamp(0, 15).reshape(out, inf)
    return q.to(torch.int64), z.T.contiguous().to(torch.int64), s.T.contiguous()


def pack_cols(x: np.ndarray, order) -> np.ndarray:
    """[rows, cols] of 4-bit values -> int32 [rows, cols/8], nibble i of word c = column 8c + order[i]."""
    rows, cols = x.shape
    out = np.zeros((rows, cols // 8), dtype=np.uint32)
    for c in range(cols // 8):
        for i in range(8):
            out[:, c] |= x[:, 8 * c + order[i]].astype(np.uint32) << np.uint32(4 * i)
    return out.view(np.int32)


def pack_rows(x: np.ndarray) -> np.ndarray:
    """[rows, cols] -> int32 [rows/8, cols], nibble j of row r = row 8r + j."""
    rows, cols = x.shape
    out = np.zeros((rows // 8, cols), dtype=np.uint32)
    for r in range(rows // 8):
        for j in range(8):
            out[r] |= x[8 * r + j].astype(np.uint32) << np.uint32(4 * j)
    return out.view(np.int32)


def int4_golden(model, quant, prompts, engine: bool):
    lin = linears(model)
    saved = {n: m.weight.detach().clone() for n, m in lin.items()}
    for n, m in lin.items():
        q, z, s = quant[n]
        s_el = s.T.repeat_interleave(GROUP, dim=1)
        z_el = z.T.repeat_interleave(GROUP, dim=1).float()
        if engine:
            m.weight.data = (q.float() - 8.0) * s_el + ((8.0 - z_el) * s_el).half().float()
        else:
            m.weight.data = (q.float() - z_el) * s_el
    golden = run_golden(model, {}, prompts, False, keep_weights=True)
    for n, m in lin.items():
        m.weight.data = saved[n]
    return golden


def write_int4(out: str, name: str, model, config, quant, prompts, producer: str) -> None:
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    lin = linears(model)
    tensors = {
        n: p.detach().half().contiguous() for n, p in model.state_dict().items() if n.rsplit(".", 1)[0] not in lin
    }
    for n, (q, z, s) in quant.items():
        qt = q.T.contiguous().numpy()  # [in, out]
        if producer == "awq":
            tensors[f"{n}.qweight"] = torch.from_numpy(pack_cols(qt, AWQ_ORDER))
            tensors[f"{n}.qzeros"] = torch.from_numpy(pack_cols(z.numpy(), AWQ_ORDER))
        else:
            tensors[f"{n}.qweight"] = torch.from_numpy(pack_rows(qt))
            tensors[f"{n}.qzeros"] = torch.from_numpy(pack_cols(z.numpy() - 1, list(range(8))))
            tensors[f"{n}.g_idx"] = torch.arange(qt.shape[0], dtype=torch.int32) // GROUP
        tensors[f"{n}.scales"] = s.half().contiguous()
    save_file(dict(sorted(tensors.items())), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    config = dict(config, architectures=["LlamaForCausalLM"])
    config["quantization_config"] = (
        {"quant_method": "awq", "bits": 4, "group_size": GROUP, "zero_point": True, "version": "gemm"}
        if producer == "awq"
        else {
            "quant_method": "gptq",
            "bits": 4,
            "group_size": GROUP,
            "desc_act": False,
            "sym": False,
            "checkpoint_format": "gptq",
        }
    )
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(SOURCE, "generation_config.json"), d)
    save_file(int4_golden(model, quant, prompts, True), os.path.join(d, "golden.safetensors"))
    save_file(int4_golden(model, quant, prompts, False), os.path.join(d, "golden_weights.safetensors"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="test/fixtures/prequant")
    args = p.parse_args()
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(SOURCE, dtype=torch.float32).eval()
    # Real pre-quantized checkpoints keep their other tensors in half precision: round them to float16 values (the
    # goldens still run in float32, from those values), so a float16 TensorRT-LLM checkpoint holds them exactly.
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(prm.half().float())
    ref = load_file(os.path.join(SOURCE, "golden.safetensors"))
    prompts = [ref[f"input_ids.{i}"].tolist() for i in range(len([k for k in ref if k.startswith("input_ids.")]))]
    quant = quantize(model, prompts)
    write(args.out, "modelopt_fp8", model, quant, prompts, "modelopt")
    write(args.out, "ct_fp8", model, quant, prompts, "compressed-tensors")
    m4, config4 = int4_model()
    quant4 = {n: quantize_int4(m.weight.detach()) for n, m in linears(m4).items()}
    write_int4(args.out, "awq_int4", m4, config4, quant4, prompts, "awq")
    write_int4(args.out, "gptq_int4", m4, config4, quant4, prompts, "gptq")


if __name__ == "__main__":
    main()
