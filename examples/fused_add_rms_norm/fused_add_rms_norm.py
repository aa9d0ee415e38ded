"""Fused residual add + RMSNorm as one OpenAI Triton kernel (the kernel of Kiln's example custom op).

For x, residual of shape [..., hidden] and weight [hidden]:
    new_residual = x + residual
    normed = new_residual / sqrt(mean(new_residual ** 2, -1) + eps) * weight
One program handles one row: it reads x and residual once, writes both outputs once, and keeps the sum in
float32 registers for the variance, so the unfused sequence's extra round trip through memory disappears.
Math is float32 whatever the storage dtype (float32, float16 or bfloat16).

The module has the three functions Kiln's custom-op flow uses:
    launch(inputs, outputs, eps)    runs the kernel (the TensorRT-LLM plugin's forward calls it)
    torch_reference(inputs, eps)    the same math with unfused PyTorch ops (checked against Kiln's reference)
    BASELINES                       more unfused PyTorch versions to time the kernel against
Only torch and triton are imported; `kiln verify-op` copies this file next to its runner.
"""
import torch
import triton
import triton.language as tl


@triton.jit
def _fused_add_rms_norm_kernel(x_ptr, res_ptr, w_ptr, out_ptr, sum_ptr, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    offs = row * n_cols + cols
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    s = x + r
    tl.store(sum_ptr + offs, s.to(sum_ptr.dtype.element_ty), mask=mask)
    rstd = tl.rsqrt(tl.sum(s * s, axis=0) / n_cols + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, (s * rstd * w).to(out_ptr.dtype.element_ty), mask=mask)


def launch(inputs, outputs, eps):
    """inputs: x, residual [..., hidden], weight [hidden]; outputs: normed, new_residual (same shape as x)."""
    x, residual, weight = inputs
    normed, new_residual = outputs
    n_cols = x.shape[-1]
    n_rows = x.numel() // n_cols
    block = triton.next_power_of_2(n_cols)
    if block > 65536:
        raise ValueError(f"fused_add_rms_norm: hidden size {n_cols} is larger than one program's block")
    num_warps = min(max(block // 256, 1), 16)
    _fused_add_rms_norm_kernel[(n_rows,)](x, residual, weight, normed, new_residual, n_cols, float(eps),
                                          BLOCK=block, num_warps=num_warps)


def torch_reference(inputs, eps):
    """Hugging Face style: the sum and the statistics in float32, then cast back to the storage dtype."""
    x, residual, weight = inputs
    s = x.float() + residual.float()
    normed = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps) * weight.float()
    return [normed.to(x.dtype), s.to(x.dtype)]


def _add_then_rms_norm(inputs, eps):
    x, residual, weight = inputs
    s = x + residual
    return [torch.nn.functional.rms_norm(s, (s.shape[-1],), weight, eps), s]


BASELINES = {"add + F.rms_norm": _add_then_rms_norm}
