"""Eager `tensorrt_llm._torch.peft`: the PyTorch backend's LoRA layer."""
