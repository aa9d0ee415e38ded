"""Error types of the Kiln bridge.

Every error carries a one-line message that names the thing at fault (file, tensor, config field), so the CLI can
print it as-is. `CheckpointError` means the checkpoint breaks the TensorRT-LLM 1.2 layout rules; `UnsupportedConfig`
means the checkpoint may be valid but uses a feature this verifier does not model (it refuses rather than guesses).
"""


class BridgeError(Exception):
    """Base class: a problem the CLI reports with exit code 2."""


class SafetensorsError(BridgeError):
    """A safetensors file is malformed or uses a dtype we cannot read."""


class CheckpointError(BridgeError):
    """config.json / rank files disagree with TensorRT-LLM's checkpoint rules (missing tensor, wrong shape, ...)."""


class UnsupportedConfig(BridgeError):
    """The checkpoint uses a feature the verifier does not implement; refusing beats silently computing wrong."""


class TrtLlmMissing(BridgeError):
    """tensorrt_llm (1.2.x) cannot be imported, so engines cannot be built here."""
