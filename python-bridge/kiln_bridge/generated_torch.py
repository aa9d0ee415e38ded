"""Build one rank of a trtllm-torch package (kiln_<name>/) on the eager `tensorrt_llm._torch` and return its
forward: the package is imported (registering its class with register_auto_model), its config class reads
config.json, ModelConfig gets the rank's Mapping and the compute dtype, and the model loads model.safetensors
through its own `load_weights`, which slices every tensor for the rank. Runs inside generated.run_generated.
The rank's forward also has `.packed(prompts, lora_params)`: several prompts as one packed batch (the layout the
executor gives the model: tokens concatenated, positions restarting per sequence, attn_metadata.seq_lens) with
the executor's LoRA table (torch_lora.PeftCache), returning logits per prompt."""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import torch

from .eager_trtllm import _rank
from .errors import CheckpointError, UnsupportedConfig
from .numerics import DTYPES
from .safetensors_io import load_file


def torch_rank(g, dtype: str) -> Callable[[int], Callable[[torch.Tensor], torch.Tensor | None]]:
    from .generated import GeneratedCodeError

    try:
        pkg = importlib.import_module(g.package)
    except Exception as e:  # noqa: BLE001 - generated code failing: one line with its directory
        raise GeneratedCodeError(f"{g.ckpt_dir}/{g.package}: import failed: {type(e).__name__}: {e}") from None
    from tensorrt_llm._torch.attention_backend.interface import AttentionMetadata
    from tensorrt_llm._torch.model_config import ModelConfig
    from tensorrt_llm._torch.models.modeling_utils import MODEL_CLASS_MAPPING
    from tensorrt_llm.mapping import Mapping

    if g.architecture not in MODEL_CLASS_MAPPING:
        raise GeneratedCodeError(f"{g.ckpt_dir}/{g.package}: importing it registers no model {g.architecture!r}")
    model_cls = MODEL_CLASS_MAPPING[g.architecture]
    config_cls = next((getattr(pkg, n) for n in getattr(pkg, "__all__", []) if n.endswith("Config")), None)
    if config_cls is None:
        raise GeneratedCodeError(f"{g.ckpt_dir}/{g.package}: exports no *Config class")
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # the package's config triggers HF's torch_dtype notices
    except ImportError:
        pass
    weights = load_file(os.path.join(g.ckpt_dir, "model.safetensors"))
    torch_dtype = DTYPES[dtype]

    def build(rank: int):
        pretrained = config_cls.from_pretrained(g.ckpt_dir)
        pretrained.torch_dtype = torch_dtype
        mapping = Mapping(world_size=g.tp * g.pp, rank=rank, tp_size=g.tp, pp_size=g.pp)
        model_config = ModelConfig(pretrained_config=pretrained, mapping=mapping)
        try:
            with torch.device(_rank.device()):
                model = model_cls(model_config)
            model.load_weights(weights)
        except NotImplementedError as e:
            raise UnsupportedConfig(f"{g.ckpt_dir}/{g.package}: {e}") from None
        except ValueError as e:
            raise CheckpointError(f"{g.ckpt_dir}/model.safetensors (rank {rank}): {e}") from None
        model.eval()

        def forward(ids: torch.Tensor) -> torch.Tensor | None:
            dev = _rank.device()
            meta = AttentionMetadata(seq_lens=[int(ids.shape[0])])
            with torch.no_grad():
                logits = model.forward(meta, input_ids=ids.to(dev), position_ids=torch.arange(ids.shape[0], device=dev)[None, :],
                                     return_context_logits=True)
            return logits if mapping.is_last_pp_rank() else None

        def packed(prompts: list[torch.Tensor], lora_params) -> list[torch.Tensor] | None:
            dev = _rank.device()
            lens = [int(p.shape[0]) for p in prompts]
            meta = AttentionMetadata(seq_lens=lens)
            ids = torch.cat(prompts).to(dev)
            positions = torch.cat([torch.arange(n) for n in lens]).to(dev)[None, :]
            with torch.no_grad():
                logits = model.forward(meta, input_ids=ids, position_ids=positions, return_context_logits=True,
                                       lora_params=lora_params)
            return list(logits.split(lens)) if mapping.is_last_pp_rank() else None

        forward.packed = packed
        return forward

    return build
