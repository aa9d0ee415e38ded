"""Quantized TensorRT-LLM 1.2.1 checkpoints, dequantized for the verifier as TensorRT-LLM computes with them.

Written from TensorRT-LLM's sources, not from Kiln's writer:
- FP8 (quant_algo "FP8"): `preprocess_perlayer_weights` views an int8/fp8 `.weight` as float8_e4m3fn
  (tensorrt_llm/models/modeling_utils.py @ b35ac1b6); `FP8Linear` / `FP8RowLinear` without the FP8 GEMM plugin
  (tensorrt_llm/quantization/layers.py @ 2340c776) cast `weights_scaling_factor` and `activation_scaling_factor` to the
  model dtype, dequantize the weight as fp8 * scale, and quantize-dequantize the GEMM input with the activation scale
  (E4M3 saturates at +-448).
- W4A16_AWQ (group-wise INT4): `preprocess_perlayer_weights` transposes the int8 `.weight` [out/2, in] to [in, out/2]
  and hands it to `preprocess_weights_for_mixed_gemm` as torch.quint4x2 (two signed int4 per byte along the output
  dim, the even output in the low nibble), transposes `.weights_scaling_factor` [out, in/group] to [in/group, out]
  and casts it to the model dtype; `.zero` [in/group, out] is loaded as is (WeightOnlyGroupwiseQuantLinear), and the
  group-wise kernel computes w = int4 * scale + zero (weight_only_groupwise_quant_matmul with the ZERO flag).
  `.prequant_scaling_factor` (pre_quant_scale) would scale the input per channel; it is applied when present.
Other algorithms, and quantized KV caches, are refused with UnsupportedConfig.
"""

from __future__ import annotations

import torch

from .errors import CheckpointError, UnsupportedConfig

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_SUPPORTED = (None, "NO_QUANT", "FP8", "W4A16_AWQ")


def quant_config(config: dict) -> dict:
    """config.json's `quantization` block, checked against what the verifier models."""
    q = config.get("quantization") or {}
    algo = q.get("quant_algo")
    if algo not in _SUPPORTED:
        raise UnsupportedConfig(
            f"config.json quantization.quant_algo={algo!r}: the verifier models only FP8 and W4A16_AWQ"
        )
    if q.get("kv_cache_quant_algo") not in (None, "NO_QUANT"):
        raise UnsupportedConfig(
            f"config.json quantization.kv_cache_quant_algo={q['kv_cache_quant_algo']!r}: "
            "quantized KV caches are not modelled by the verifier"
        )
    return q


def _unpack_int4_rows(packed: torch.Tensor) -> torch.Tensor:
    """int8 [out/2, in] (two signed int4 per byte along out, even row low) -> int [out, in]."""
    b = packed.to(torch.int16) & 0xFF
    low = ((b & 0xF) ^ 8) - 8
    high = (((b >> 4) & 0xF) ^ 8) - 8
    half, inf = packed.shape
    return torch.stack([low, high], dim=1).reshape(2 * half, inf)


def dequantize_rank(config: dict, weights: dict[str, torch.Tensor], path: str) -> tuple[dict, dict]:
    """Rank weights with every quantized Linear's `.weight` replaced by the float weight its GEMM uses, and the
    scale tensors removed; plus `<linear>.activation_scaling_factor` (FP8, in the model dtype) and
    `<linear>.prequant_scaling_factor` tensors the decoder applies to GEMM inputs."""
    q = quant_config(config)
    algo = q.get("quant_algo")
    if algo in (None, "NO_QUANT"):
        return weights, {}
    dtype = _DTYPES[str(config.get("dtype", "float16"))]
    out = dict(weights)
    inputs: dict[str, torch.Tensor] = {}
    for name, w in weights.items():
        if not name.endswith(".weight"):
            continue
        module = name[: -len(".weight")]
        if algo == "FP8" and w.dtype in (torch.int8, torch.uint8, getattr(torch, "float8_e4m3fn", None)):
            s_w, s_a = (weights.get(f"{module}.{k}") for k in ("weights_scaling_factor", "activation_scaling_factor"))
            if s_w is None or s_a is None:
                raise CheckpointError(
                    f"{path}: FP8 tensor {name!r} has no weights_scaling_factor/activation_scaling_factor"
                )
            fp8 = w.view(torch.float8_e4m3fn) if w.dtype != torch.float8_e4m3fn else w
            out[name] = fp8.to(torch.float32) * s_w.to(dtype).to(torch.float32).reshape(())
            inputs[f"{module}.activation_scaling_factor"] = s_a.to(dtype).to(torch.float32).reshape(())
            del out[f"{module}.weights_scaling_factor"], out[f"{module}.activation_scaling_factor"]
        elif algo == "W4A16_AWQ" and w.dtype == torch.int8:
            scale = weights.get(f"{module}.weights_scaling_factor")
            if scale is None:
                raise CheckpointError(f"{path}: INT4 tensor {name!r} has no weights_scaling_factor")
            codes = _unpack_int4_rows(w).to(torch.float32)  # [out, in]
            s = scale.t().to(dtype).to(torch.float32)  # [in/group, out]
            group = codes.shape[1] // s.shape[0]
            if group * s.shape[0] != codes.shape[1] or s.shape[1] != codes.shape[0]:
                raise CheckpointError(
                    f"{path}: {module}.weights_scaling_factor {list(scale.shape)} does not fit weight {list(w.shape)}"
                )
            s_el = s.repeat_interleave(group, dim=0).t()  # [out, in]
            z = weights.get(f"{module}.zero")
            if bool(q.get("has_zero_point")) != (z is not None):
                raise CheckpointError(
                    f"{path}: {module}.zero present={z is not None} but has_zero_point={q.get('has_zero_point')}"
                )
            dense = codes * s_el
            if z is not None:
                dense = dense + z.to(dtype).to(torch.float32).repeat_interleave(group, dim=0).t()
                del out[f"{module}.zero"]
            out[name] = dense
            del out[f"{module}.weights_scaling_factor"]
            pre = weights.get(f"{module}.prequant_scaling_factor")
            if pre is not None:
                inputs[f"{module}.prequant_scaling_factor"] = pre.reshape(-1).to(dtype).to(torch.float32)
                del out[f"{module}.prequant_scaling_factor"]
    return out, inputs


def quantize_input(x: torch.Tensor, module: str, w: dict[str, torch.Tensor]) -> torch.Tensor:
    """A GEMM input as the quantized Linear sees it: AWQ pre-quant scaling, FP8 quantize-dequantize."""
    pre = w.get(f"{module}.prequant_scaling_factor")
    if pre is not None:
        x = x * pre
    s = w.get(f"{module}.activation_scaling_factor")
    if s is None:
        return x
    return (x / s).clamp(-448.0, 448.0).to(torch.float8_e4m3fn).to(torch.float32) * s
