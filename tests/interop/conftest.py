"""Fixtures for the interop tests: tiny Hugging Face T5 directories made on the spot.

Nothing is downloaded. Models come from ``T5Config`` + ``T5ForConditionalGeneration``
with random weights and ``save_pretrained``; the sentencepiece model is trained
on the shared test corpus and written as ``spiece.model``. Tests that need
torch/transformers/peft skip when those are missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ARCH = dict(d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2)
EXTRA_IDS = 100  # HF's T5Tokenizer appends 100 sentinels after the sentencepiece pieces
#: style -> (feed_forward_proj, tie_word_embeddings, separate lm_head tensor)
STYLES = {
    "relu-tied": ("relu", True, False),  # T5 1.0
    "gated-untied": ("gated-gelu", False, True),  # T5 1.1 / LM-adapted as released
    "gated-unscaled-shared": ("gated-gelu", False, False),  # what transformers 5 saves by default
}


@pytest.fixture(scope="session")
def spiece_proto(tiny_corpus) -> bytes:
    from softprompt.core.pretraining.scratch import train_sentencepiece

    return train_sentencepiece(tiny_corpus, 120)


@pytest.fixture(scope="session")
def spiece_size(spiece_proto) -> int:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(spiece_proto)
    return sp.GetPieceSize()


def make_hf_t5(out: Path, proto: bytes, style: str, seed: int = 0, **overrides) -> Path:
    """Save a random tiny HF T5 of `style` (see STYLES) with `spiece.model` into `out`."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto)
    proj, tied, separate_head = STYLES[style]
    torch.manual_seed(seed)
    config = transformers.T5Config(
        vocab_size=sp.GetPieceSize() + EXTRA_IDS + 4,
        feed_forward_proj=proj,
        tie_word_embeddings=tied,
        dropout_rate=0.0,
        decoder_start_token_id=0,
        **{**ARCH, **overrides},
    )
    model = transformers.T5ForConditionalGeneration(config)
    if separate_head:
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight))
    out = Path(out)
    model.save_pretrained(out)
    assert ("lm_head.weight" in _safetensors_keys(out)) == separate_head
    (out / "spiece.model").write_bytes(proto)
    return out


def _safetensors_keys(path: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), framework="np") as f:
        return set(f.keys())


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory, spiece_proto) -> dict[str, Path]:
    """style -> a saved tiny HF T5 directory."""
    return {
        style: make_hf_t5(tmp_path_factory.mktemp(f"hf-{style}"), spiece_proto, style, seed=i)
        for i, style in enumerate(STYLES)
    }


@pytest.fixture(scope="session")
def converted(tmp_path_factory, hf_dirs) -> dict[str, Path]:
    """style -> the keras-hub preset converted from ``hf_dirs[style]``."""
    from softprompt.core.interop.hf_t5 import convert_hf_t5

    return {
        style: convert_hf_t5(src, tmp_path_factory.mktemp(f"kh-{style}") / "preset")
        for style, src in hf_dirs.items()
    }


def sample_batch(vocab: int, seed: int = 0, batch: int = 3, src_len: int = 7, tgt_len: int = 5):
    """Token ids with padding on both sides: ``(encoder_ids, encoder_mask, labels, label_mask)``."""
    rng = np.random.default_rng(seed)
    enc = rng.integers(3, vocab, (batch, src_len)).astype("int32")
    labels = rng.integers(3, vocab, (batch, tgt_len)).astype("int32")
    enc_mask = np.ones_like(enc)
    label_mask = np.ones_like(labels)
    for i in range(1, batch):  # later rows shorter
        enc_mask[i, src_len - 2 * i:] = 0
        label_mask[i, tgt_len - i:] = 0
    labels[:, -1] = np.where(label_mask[:, -1] == 1, 1, 0)  # end with </s> where not padded
    return enc * enc_mask, enc_mask, labels * label_mask, label_mask


def shift_right(labels: np.ndarray) -> np.ndarray:
    """T5's decoder input: start token 0, then the labels but the last."""
    return np.concatenate([np.zeros_like(labels[:, :1]), labels[:, :-1]], axis=1)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


@pytest.fixture(scope="session")
def hf():
    """The helpers above, for the test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        make=make_hf_t5, batch=sample_batch, shift_right=shift_right, write_json=write_json,
        styles=STYLES,
    )
