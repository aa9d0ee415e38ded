# Uses names that the TensorRT-engine manifest only knows as `external`; a second
# manifest (testdata/second-manifest.json) describes them. Never executed.
from tensorrt_llm import PluginBase
from tensorrt_llm.python_plugin import trtllm_plugin


@trtllm_plugin("KilnPlugin", deps=None)
class KilnPlugin(PluginBase):

    def __init__(self):
        super().__init__()

    def shape_dtype_inference(self, inputs):
        return super().shape_dtype_inference(inputs, 1)


trtllm_plugin("KilnOther", dep=1)
