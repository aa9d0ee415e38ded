"""Test helper: a Hugging Face tokenizer.json for the real TinyStories 260K model, built from its sentencepiece vocabulary
(../shared/fixtures/real/tinystories260k/vocab.json: 512 pieces with scores, id = position), read in place.

The model is llama2.c's: sentencepiece BPE with byte fallback and a dummy "▁" prefix. Its Hugging Face form is what
transformers' LlamaConverter writes (convert_slow_tokenizer.py @ transformers v5.x): normalizer Prepend("▁") +
Replace(" ", "▁"), BPE with byte_fallback, the merges of every piece that splits into two pieces, ranked by the
merged piece's score (sentencepiece merges the best-scoring pair first), BOS prepended by a template post-processor.
`plant` breaks one thing on purpose (for negative tests): "no-prefix" drops the dummy prefix, "reversed-merges"
ranks merges backwards.

Usage: tinystories_tokenizer.py VOCAB_JSON OUT_DIR [PLANT]
"""
from __future__ import annotations

import json
import os
import sys

from tokenizers import Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE


def build(vocab_json: str, plant: str | None = None) -> Tokenizer:
    with open(vocab_json) as f:
        pieces = json.load(f)
    vocab = {p["piece"]: i for i, p in enumerate(pieces)}
    score = {p["piece"]: p["score"] for p in pieces}
    merges = []
    for piece, pid in vocab.items():
        for cut in range(1, len(piece)):
            a, b = piece[:cut], piece[cut:]
            if a in vocab and b in vocab:
                merges.append((-score[piece], pid, (a, b)))
    merges.sort(reverse=plant == "reversed-merges")
    tok = Tokenizer(BPE(vocab=vocab, merges=[m for _, _, m in merges], unk_token="<unk>", byte_fallback=True,
                        fuse_unk=True))
    steps = [normalizers.Replace(" ", "▁")]
    if plant != "no-prefix":
        steps.insert(0, normalizers.Prepend("▁"))
    tok.normalizer = normalizers.Sequence(steps)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return tok


def main(vocab_json: str, out_dir: str, plant: str | None = None) -> None:
    os.makedirs(out_dir, exist_ok=True)
    build(vocab_json, plant).save(os.path.join(out_dir, "tokenizer.json"))


if __name__ == "__main__":
    main(*sys.argv[1:])
