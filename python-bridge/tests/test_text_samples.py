"""Text samples (kiln_bridge/text_samples.py) against the real TinyStories 260K tokenizer, read in place from
../shared/fixtures/real/tinystories260k (tests/tinystories_tokenizer.py turns its sentencepiece vocabulary into a
tokenizer.json in a temporary directory): the model's own greedy story, decoded to text, tokenizes back to exactly
its golden ids (with BOS); planted tokenizer bugs do not; packing and the file layouts behave as documented.
"""
from __future__ import annotations

import json
import os

import pytest
from kiln_bridge.__main__ import main as bridge_main
from kiln_bridge.errors import BridgeError
from kiln_bridge.safetensors_io import load_file
from kiln_bridge.text_samples import text_samples

tokenizers = pytest.importorskip("tokenizers")
REAL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures", "real", "tinystories260k")
if not os.path.exists(os.path.join(REAL, "vocab.json")):
    pytest.skip("../shared/fixtures/real/tinystories260k is absent", allow_module_level=True)

from tinystories_tokenizer import build  # noqa: E402  (needs tokenizers, checked above)

BOS = 1


@pytest.fixture(scope="module")
def golden() -> tuple[list[int], str]:
    ids = load_file(os.path.join(REAL, "golden.safetensors"))["greedy.0"].tolist()
    return ids, build(os.path.join(REAL, "vocab.json")).decode(ids, skip_special_tokens=True)


def tokenizer_dir(tmp_path, plant=None) -> str:
    d = tmp_path / f"tok-{plant or 'ok'}"
    d.mkdir()
    build(os.path.join(REAL, "vocab.json"), plant).save(str(d / "tokenizer.json"))
    return str(d)


def test_greedy_story_round_trips_to_its_golden_ids(tmp_path, golden):
    ids, text = golden
    assert text.startswith("Once upon a time, there was a little girl named Lily.")
    f = tmp_path / "story.txt"
    f.write_text(text + "\n")
    assert text_samples(str(f), tokenizer_dir(tmp_path)) == [[BOS] + ids]


@pytest.mark.parametrize("plant", ["no-prefix", "reversed-merges"])
def test_planted_tokenizer_bugs_change_the_ids(tmp_path, golden, plant):
    ids, text = golden
    f = tmp_path / "story.txt"
    f.write_text(text + "\n")
    assert text_samples(str(f), tokenizer_dir(tmp_path, plant)) != [[BOS] + ids]


def test_packing_concatenates_lines_and_cuts_full_windows(tmp_path):
    tok_dir = tokenizer_dir(tmp_path)
    tok = tokenizers.Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    lines = ["Once upon a time, there was a dog.", "", "The dog liked to run.", "Lily saw the sun and smiled."]
    f = tmp_path / "t.txt"
    f.write_text("\n".join(lines) + "\n")
    stream = [i for line in lines if line for i in tok.encode(line).ids]
    assert stream.count(BOS) == 3
    assert text_samples(str(f), tok_dir, seq_len=7) == [stream[i:i + 7] for i in range(0, len(stream) - 6, 7)]
    assert text_samples(str(f), tok_dir, samples=2, seq_len=7) == [stream[:7], stream[7:14]]
    assert text_samples(str(f), tok_dir, samples=2) == [tok.encode(lines[0]).ids, tok.encode(lines[2]).ids]


def test_jsonl_reads_the_text_field(tmp_path):
    tok_dir = tokenizer_dir(tmp_path)
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"text": "The cat sat.", "id": 1}) + "\n\n" + json.dumps({"text": "A big red ball."}) + "\n")
    g = tmp_path / "t.txt"
    g.write_text("The cat sat.\nA big red ball.\n")
    assert text_samples(str(f), tok_dir) == text_samples(str(g), tok_dir)


@pytest.mark.parametrize("content,args,message", [
    ('{"text": "ok"}\n{"txt": "no"}\n', {}, r"t\.jsonl:2: a JSON Lines record needs a string \"text\" field"),
    ('{"text": "ok"}\n{not json\n', {}, r"t\.jsonl:2: not a JSON object"),
    ('{"text": "a b c"}\n', {"samples": 3}, r"--samples 3 asks for more than the 1 non-empty lines"),
    ('{"text": "a b c"}\n', {"seq_len": 500}, r"not even a window of 500 tokens"),
])
def test_bad_text_is_one_line_naming_the_file(tmp_path, content, args, message):
    f = tmp_path / "t.jsonl"
    f.write_text(content)
    with pytest.raises(BridgeError, match=message):
        text_samples(str(f), tokenizer_dir(tmp_path), **args)


def test_missing_tokenizer_is_named(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("hello\n")
    with pytest.raises(BridgeError, match=r"--tokenizer .*: no tokenizer.json there"):
        text_samples(str(f), str(tmp_path))


def test_tokenize_command_prints_the_samples(tmp_path, capsys, golden):
    ids, text = golden
    f = tmp_path / "story.txt"
    f.write_text(text + "\n")
    assert bridge_main(["tokenize", "--text", str(f), "--tokenizer", tokenizer_dir(tmp_path), "--seq-len", "8",
                        "--samples", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == {"prompts": [[BOS] + ids[:7], ids[7:15]]}
