"""Eager `tensorrt_llm.quantization`: only the unquantized mode (QuantMode(0)); a quantized checkpoint is refused by
PretrainedConfig (tensorrt_llm/quantization/mode.py, 1.2 line)."""


class QuantMode(int):
    def has_act_and_weight_quant(self) -> bool:
        return False

    def is_weight_only(self) -> bool:
        return False

    def has_fp8_kv_cache(self) -> bool:
        return False

    def has_int8_kv_cache(self) -> bool:
        return False


class QuantAlgo:
    pass
