"""Eager `tensorrt_llm._torch.modules` (one file per upstream module)."""
