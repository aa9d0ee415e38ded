"""Eager `tensorrt_llm._torch`: the PyTorch-backend modules the generated trtllm-torch package builds from, run on
plain torch tensors with a single-sequence causal attention instead of the paged-KV backends (see each module)."""
