"""fused_add_rms_norm for Kiln's PyTorch-based targets (trtllm-torch, hf): plain PyTorch, no Triton.

`kiln compile --target hf|trtllm-torch` copies this module next to the generated modeling file and calls
`fused_add_rms_norm(inputs, eps=...)` for every node of the op. The sum and the statistics are computed in float32
and cast back to the storage dtype, as Hugging Face's LLaMA does for its residual stream and RMSNorm.
"""

import torch.nn.functional as F


def fused_add_rms_norm(inputs, eps):
    """(x, residual, weight) -> [normed, x + residual]."""
    x, residual, weight = inputs
    total = x.float() + residual.float()
    normed = F.rms_norm(total, (total.shape[-1],), weight.float(), eps)
    return [normed.to(x.dtype), total.to(x.dtype)]
