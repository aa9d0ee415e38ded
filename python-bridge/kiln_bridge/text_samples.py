"""Calibration and evaluation samples from text: a text file tokenized with a Hugging Face tokenizer.json by the
`tokenizers` library itself (the ids are HF's by construction, not a port's), then cut into samples.

Input: `--text FILE` holds one sample per line, or JSON Lines with a string "text" field per record (a file whose
name ends in .jsonl, or whose first non-blank line is a JSON object). Blank lines are skipped.
Each sample is encoded on its own, with the tokenizer's special tokens (e.g. LLaMA's BOS), as
`Tokenizer.encode(text)` gives them. Then:
- with `seq_len` (packing): the encodings are concatenated in file order into one stream and cut into consecutive
  windows of exactly `seq_len` tokens; a tail shorter than `seq_len` is dropped; `samples` takes the first windows;
- without it: one sample per line or record, whole (no truncation); `samples` takes the first ones.
Asking for more samples than the text gives is an error naming the file, never a silently smaller calibration.
Every error is a BridgeError naming the file (and line) or the tokenizer directory.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

from .errors import BridgeError

_CHUNK = 256  # lines encoded per encode_batch call


def load_tokenizer(tokenizer_dir: str):
    """The `tokenizers.Tokenizer` of DIR/tokenizer.json (or of a tokenizer.json path)."""
    path = tokenizer_dir if tokenizer_dir.endswith(".json") else os.path.join(tokenizer_dir, "tokenizer.json")
    if not os.path.isfile(path):
        raise BridgeError(f"--tokenizer {tokenizer_dir}: no tokenizer.json there (a Hugging Face fast tokenizer file)")
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        raise BridgeError("--text needs the Python package 'tokenizers' (run .ci/setup-python.sh)") from e
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception on malformed files
        raise BridgeError(f"{path}: not a tokenizer.json the tokenizers library can read: {str(e).splitlines()[0]}") from e


def _is_jsonl(path: str, first: str) -> bool:
    return path.endswith(".jsonl") or first.lstrip().startswith("{")


def read_texts(path: str) -> Iterator[str]:
    """The samples of a text file, in order (see the module docstring for the two layouts)."""
    if not os.path.isfile(path):
        raise BridgeError(f"--text {path}: no such file")
    with open(path, encoding="utf-8") as f:
        lines = (line.rstrip("\r\n") for line in f)
        jsonl = None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if jsonl is None:
                jsonl = _is_jsonl(path, line)
            if not jsonl:
                yield line
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BridgeError(f"{path}:{number}: not a JSON object ({e.msg})") from e
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise BridgeError(f"{path}:{number}: a JSON Lines record needs a string \"text\" field")
            yield record["text"]


def _encodings(tokenizer, texts: Iterator[str]) -> Iterator[list[int]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == _CHUNK:
            yield from (e.ids for e in tokenizer.encode_batch(chunk))
            chunk = []
    if chunk:
        yield from (e.ids for e in tokenizer.encode_batch(chunk))


def text_samples(path: str, tokenizer_dir: str, samples: int | None = None, seq_len: int | None = None) -> list[list[int]]:
    """Token-id samples of a text file, packed into `seq_len` windows or one per line (see the module docstring)."""
    if samples is not None and samples < 1:
        raise BridgeError(f"--samples must be at least 1, got {samples}")
    if seq_len is not None and seq_len < 1:
        raise BridgeError(f"--seq-len must be at least 1, got {seq_len}")
    tokenizer = load_tokenizer(tokenizer_dir)
    out: list[list[int]] = []
    stream: list[int] = []
    for ids in _encodings(tokenizer, read_texts(path)):
        if samples is not None and len(out) >= samples:
            break
        if seq_len is None:
            if ids:
                out.append(list(ids))
            continue
        stream.extend(ids)
        while len(stream) >= seq_len and (samples is None or len(out) < samples):
            out.append(stream[:seq_len])
            del stream[:seq_len]
    if not out:
        unit = f"a window of {seq_len} tokens" if seq_len else "a non-empty sample"
        raise BridgeError(f"--text {path}: the text gives not even {unit}")
    if samples is not None and len(out) < samples:
        unit = f"windows of {seq_len} tokens" if seq_len else "non-empty lines"
        raise BridgeError(f"--text {path}: --samples {samples} asks for more than the {len(out)} {unit} the text gives")
    return out
