"""Engine-build driver against the fake tensorrt_llm: plan, call order per rank, registration, workers, MPI."""
import json
import os
import textwrap

import kiln_bridge.build as bridge_build
import pytest
from conftest import edit_config
from fake_trtllm import FakeTrtLlm, install_in_worker
from kiln_bridge import build_engines, plan_build
from kiln_bridge.__main__ import main as cli
from kiln_bridge.errors import BridgeError, CheckpointError, TrtLlmMissing

CUSTOM_MODEL_PY = textwrap.dedent('''
    """Stand-in for the model.py `kiln compile` generates: registers its class in MODEL_MAP on import."""
    from tensorrt_llm.models import MODEL_MAP
    from tensorrt_llm.models.modeling_utils import DecoderModelForCausalLM, PretrainedConfig


    class KilnTinyConfig(PretrainedConfig):
        pass


    class KilnTinyForCausalLM(DecoderModelForCausalLM):
        config_class = KilnTinyConfig


    MODEL_MAP["KilnTinyForCausalLM"] = KilnTinyForCausalLM
''')


@pytest.fixture
def fake(monkeypatch):
    f = FakeTrtLlm().install()
    gpus = []
    monkeypatch.setattr(bridge_build, "select_gpu", gpus.append)
    f.gpus = gpus
    yield f
    f.uninstall()


def custom_ckpt(make_ckpt, **kw) -> str:
    ckpt = make_ckpt("llama", **kw)
    edit_config(ckpt, architecture="KilnTinyForCausalLM")
    with open(os.path.join(ckpt, "model.py"), "w") as f:
        f.write(CUSTOM_MODEL_PY)
    return ckpt


def test_plan_maps_ranks_to_stages_and_gpus(make_ckpt):
    ckpt = make_ckpt("llama3_gqa", tp=2, pp=2)
    plans = plan_build(ckpt, workers=2)
    assert [(p.rank, p.tp_rank, p.pp_rank, p.gpu) for p in plans] == [(0, 0, 0, 0), (1, 1, 0, 1), (2, 0, 1, 0),
                                                                    (3, 1, 1, 1)]
    assert all(p.architecture == "LlamaForCausalLM" and p.model_py is None for p in plans)
    assert plans[3].files[1].endswith("rank3.safetensors") and plans[0].files[2].endswith("build_config.json")
    assert [p.gpu for p in plan_build(ckpt, workers=1)] == [0, 0, 0, 0]  # trtllm-build: GPU = rank % workers
    # under MPI with 2 processes, MPI rank 1 builds ranks 1 and 3 on its node-local GPU
    assert [(p.rank, p.gpu) for p in plan_build(ckpt, workers=1, mpi=(1, 2, 1))] == [(1, 1), (3, 1)]


def test_mpi_environment_detection():
    assert bridge_build.mpi_env({}) is None
    assert bridge_build.mpi_env({"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4",
                                 "OMPI_COMM_WORLD_LOCAL_RANK": "1"}) == (3, 4, 1)
    assert bridge_build.mpi_env({"PMI_RANK": "2", "PMI_SIZE": "8"}) == (2, 8, 2)


def test_plan_requires_every_input(make_ckpt):
    ckpt = make_ckpt("gpt2", tp=2)
    os.remove(os.path.join(ckpt, "rank1.safetensors"))
    with pytest.raises(CheckpointError, match=r"rank1\.safetensors: missing \(needed to build rank 1\)"):
        plan_build(ckpt)
    os.remove(os.path.join(ckpt, "build_config.json"))
    with pytest.raises(CheckpointError, match="build_config.json: not found"):
        plan_build(ckpt)


def test_each_rank_is_configured_loaded_built_and_saved_in_order(fake, make_ckpt, tmp_path):
    ckpt = make_ckpt("llama", tp=2, pp=2)
    engines = str(tmp_path / "engines")
    results = build_engines(ckpt, engines, workers=1)
    assert [r["rank"] for r in results] == [0, 1, 2, 3] and fake.gpus == [0, 0, 0, 0]
    steps = [(c.name.rsplit(".", 1)[-1], c.receiver) for c in fake.calls
             if c.name.endswith(("from_json_file", "set_rank", "from_checkpoint", "BuildConfig.from_dict",
                                 "builder.build", "Engine.save"))]
    per_rank = [("from_json_file", "PretrainedConfig"), ("set_rank", "LLaMAConfig"),
                ("from_checkpoint", "LLaMAForCausalLM"), ("from_dict", "BuildConfig"), ("build", None),
                ("save", "Engine")]
    assert steps == per_rank * 4
    assert [c.args["rank"] for c in fake.calls_to("set_rank")] == [0, 1, 2, 3]
    assert all(c.args["ckpt_dir"] == ckpt for c in fake.calls_to("from_checkpoint"))
    with open(os.path.join(ckpt, "build_config.json")) as f:
        written = json.load(f)
    assert [c.args["config"] for c in fake.calls_to("BuildConfig.from_dict")] == [written] * 4
    for r in range(4):
        with open(os.path.join(engines, f"rank{r}.engine")) as f:
            record = json.load(f)
        assert (record["rank"], record["tp_rank"], record["pp_rank"]) == (r, r % 2, r // 2)
        assert record["build_config"]["max_input_len"] == 64
        assert record["build_config"]["plugin_config"]["gemm_plugin"] == "auto"
    with open(os.path.join(engines, "config.json")) as f:
        assert json.load(f)["pretrained_config"]["architecture"] == "LlamaForCausalLM"


def test_custom_model_py_registers_before_the_config_is_read(fake, make_ckpt, tmp_path):
    ckpt = custom_ckpt(make_ckpt, tp=2)
    build_engines(ckpt, str(tmp_path / "eng"))
    names = [c.name for c in fake.calls]
    register = names.index("tensorrt_llm.models.MODEL_MAP.__setitem__")
    assert register < names.index("tensorrt_llm.models.modeling_utils.PretrainedConfig.from_json_file")
    assert names.count("tensorrt_llm.models.MODEL_MAP.__setitem__") == 1  # model.py imported once per process
    assert [c.receiver for c in fake.calls_to("from_checkpoint")] == ["KilnTinyForCausalLM"] * 2
    assert [c.receiver for c in fake.calls_to("set_rank")] == ["KilnTinyConfig"] * 2


def test_unregistered_custom_architecture_is_reported(fake, make_ckpt, tmp_path):
    ckpt = custom_ckpt(make_ckpt)
    os.remove(os.path.join(ckpt, "model.py"))
    with pytest.raises(BridgeError, match="'KilnTinyForCausalLM' is not in tensorrt_llm.models.MODEL_MAP"):
        build_engines(ckpt, str(tmp_path / "eng"))


def test_model_py_calling_a_wrong_keyword_fails_the_build(fake, make_ckpt, tmp_path):
    ckpt = custom_ckpt(make_ckpt)
    with open(os.path.join(ckpt, "model.py"), "a") as f:
        f.write("\nfrom tensorrt_llm.layers import Attention\n"
                "Attention(local_layer_idx=0, hidden_size=64, num_attention_heads=4, rotary_base=1e4)\n")
    with pytest.raises(TypeError, match="rotary_base"):
        build_engines(ckpt, str(tmp_path / "eng"))


@pytest.mark.parametrize("changes,message", [({"max_output_len": 8}, "max_output_len not BuildConfig field"),
                                             ({"plugin_config": {"gemm_plugn": "auto"}}, "gemm_plugn not PluginConfig")])
def test_unknown_build_config_fields_are_rejected(fake, make_ckpt, tmp_path, changes, message):
    ckpt = make_ckpt("gpt2")
    path = os.path.join(ckpt, "build_config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)
    with pytest.raises(CheckpointError, match=message):
        build_engines(ckpt, str(tmp_path / "eng"))


def test_spawned_workers_build_every_rank_on_rank_mod_workers(make_ckpt, tmp_path):
    import concurrent.futures
    import multiprocessing

    def pool(workers):
        return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=install_in_worker)

    ckpt = custom_ckpt(make_ckpt, tp=2, pp=2)
    engines = str(tmp_path / "eng")
    results = build_engines(ckpt, engines, workers=2, pool=pool)
    assert [(r["rank"], r["gpu"]) for r in results] == [(0, 0), (1, 1), (2, 0), (3, 1)]
    pids = set()
    for r in range(4):
        with open(os.path.join(engines, f"rank{r}.engine")) as f:
            record = json.load(f)
        assert record["gpu"] == r % 2 and record["architecture"] == "KilnTinyForCausalLM"
        assert record["pid"] != os.getpid()
        calls = record["calls"]  # this worker registered the class before reading the config
        assert calls.index("tensorrt_llm.models.MODEL_MAP.__setitem__") < calls.index(
            "tensorrt_llm.models.modeling_utils.PretrainedConfig.from_json_file")
        pids.add(record["pid"])
    assert 1 <= len(pids) <= 2


def test_missing_tensorrt_llm_says_how_to_get_it(make_ckpt, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # makes `import tensorrt_llm` raise ImportError
    ckpt = make_ckpt("gpt2")
    with pytest.raises(TrtLlmMissing, match=r"cannot import tensorrt_llm .*TensorRT-LLM 1\.2\.1.*docker build"):
        build_engines(ckpt, str(tmp_path / "eng"))
    assert cli(["build", "--ckpt", ckpt, "--engine-dir", str(tmp_path / "eng")]) == 2


def test_cli_dry_run_prints_the_plan(make_ckpt, tmp_path, capsys):
    ckpt = make_ckpt("gptj", tp=2)
    assert cli(["build", "--ckpt", ckpt, "--engine-dir", str(tmp_path / "e"), "--workers", "2", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(p["rank"], p["gpu"], p["architecture"]) for p in plan] == [(0, 0, "GPTJForCausalLM"),
                                                                       (1, 1, "GPTJForCausalLM")]
