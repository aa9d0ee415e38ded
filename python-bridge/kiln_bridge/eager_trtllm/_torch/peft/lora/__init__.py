"""Eager `tensorrt_llm._torch.peft.lora`."""
