"""`launch` of examples/fused_add_rms_norm with the op's TypeScript reference (examples/fused_add_rms_norm/op.ts,
`reference`) transcribed to PyTorch, for running the generated plugin on a CPU without Triton:
sum = x + residual in float32; per row ss = sum(sum^2) and inv = 1 / sqrt(ss / d + eps) in float64 (JS numbers);
normed = sum * inv * weight, stored in the output dtype. Written from op.ts, not from the Triton kernel."""
import torch


def launch(inputs, outputs, eps):
    x, residual, weight = inputs
    normed, new_residual = outputs
    s = x.to(torch.float32) + residual.to(torch.float32)
    s64 = s.to(torch.float64)
    inv = 1.0 / torch.sqrt((s64 * s64).sum(dim=-1, keepdim=True) / s.shape[-1] + eps)
    new_residual.copy_(s.to(new_residual.dtype))
    normed.copy_((s64 * inv * weight.to(torch.float64)).to(normed.dtype))
