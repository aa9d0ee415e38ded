"""safetensors reader/writer: round trips per dtype, fixture reading, and rejection of malformed files."""
import json
import struct

import pytest
import torch
from conftest import fixture_dir
from kiln_bridge.errors import SafetensorsError
from kiln_bridge.safetensors_io import load_file, read_header, save_file

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.int8, torch.uint8,
          torch.float64, torch.bool]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_round_trip_every_dtype(tmp_path, dtype):
    t = (torch.randn(3, 5) * 50).to(dtype)
    path = str(tmp_path / "t.safetensors")
    save_file({"x": t, "scalar": t[0, 0].clone(), "empty": t[:0]}, path, metadata={"format": "pt"})
    back = load_file(path)
    for name, ref in (("x", t), ("scalar", t[0, 0]), ("empty", t[:0])):
        assert back[name].dtype == dtype and back[name].shape == ref.shape and torch.equal(back[name], ref)
    header, metadata, start = read_header(path)
    assert metadata == {"format": "pt"} and start % 8 == 0
    assert header["x"]["dtype"] in {"F32", "F16", "BF16", "I32", "I64", "I8", "U8", "F64", "BOOL"}


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="this torch has no float8 (e.g. Debian's 1.13)")
def test_round_trip_f8_e4m3(tmp_path):
    t = torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn)
    save_file({"f8": t}, str(tmp_path / "f8.safetensors"))
    assert read_header(str(tmp_path / "f8.safetensors"))[0]["f8"]["dtype"] == "F8_E4M3"
    assert torch.equal(load_file(str(tmp_path / "f8.safetensors"))["f8"].float(), t.float())


def test_reads_fixture_written_by_the_safetensors_package():
    golden = load_file(fixture_dir("llama") + "/golden.safetensors")
    assert golden["input_ids.0"].dtype == torch.int32 and golden["input_ids.0"].shape == (11,)
    assert golden["logits.0"].shape == (11, 512) and torch.isfinite(golden["logits.0"]).all()
    only = load_file(fixture_dir("llama") + "/golden.safetensors", names=["logits.1"])
    assert list(only) == ["logits.1"] and only["logits.1"].shape == (6, 512)


def _write_raw(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("header,data,message", [
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8, "does not fit"),
    ({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "does not fit"),
    ({"x": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "unknown dtype"),
    ({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "lacks"),
])
def test_rejects_malformed_headers(tmp_path, header, data, message):
    path = str(tmp_path / "bad.safetensors")
    _write_raw(path, header, data)
    with pytest.raises(SafetensorsError, match=message):
        load_file(path)


def test_rejects_truncated_file_and_unknown_name(tmp_path):
    path = str(tmp_path / "short.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(SafetensorsError, match="exceeds file size"):
        read_header(path)
    save_file({"a": torch.zeros(2)}, str(tmp_path / "ok.safetensors"))
    with pytest.raises(SafetensorsError, match="no tensor named 'b'"):
        load_file(str(tmp_path / "ok.safetensors"), names=["b"])
