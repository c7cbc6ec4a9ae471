"""Build T5 models from scratch: a sentencepiece vocabulary trained on text, random weights.

Used by the tests (tiny presets, since nothing can be downloaded), by
``softprompt adapt --from-config`` and by the embedded default model.

Example:
    >>> texts = ["the quick brown fox", "jumps over the lazy dog"] * 50
    >>> preset_dir = build_preset("/tmp/tiny", texts, config="tiny", seed=0)
    >>> model = PromptedT5.from_preset(preset_dir, prompt_length=4)

The architectures (`CONFIGS`, `STYLES`) are read by processes that never load
keras (the Hugging Face side of the benchmarks), so keras, keras-hub,
sentencepiece and numpy are imported inside the functions that build.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

#: Named architectures. "style" is T5 1.0 (relu, tied) or T5 1.1 (gated GELU, untied).
CONFIGS = {
    "test": dict(hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32, key_value_dim=8),
    "tiny": dict(hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, key_value_dim=16),
    "small": dict(hidden_dim=256, num_layers=4, num_heads=4, intermediate_dim=1024, key_value_dim=64),
    "t5-small": dict(hidden_dim=512, num_layers=6, num_heads=8, intermediate_dim=2048, key_value_dim=64),
}
STYLES = {
    "t5.1.0": dict(activation="relu", use_gated_activation=False, tie_embedding_weights=True),
    "t5.1.1": dict(
        activation="gelu_approximate", use_gated_activation=True, tie_embedding_weights=False
    ),
}


def activation(name: str):
    """The activation callable for a style's name (HF's gated-gelu is the tanh GELU)."""
    if name == "gelu_approximate":
        # keras-hub's registered, serializable tanh-approximate GELU.
        from keras_hub.src.utils.keras_utils import gelu_approximate

        return gelu_approximate
    return name


#: sentencepiece algorithms `train_sentencepiece` accepts.
MODEL_TYPES = ("unigram", "bpe")


def train_sentencepiece(texts: Iterable[str], vocab_size: int, seed: int = 0,
                        model_type: str = "unigram") -> bytes:
    """Train a T5-compatible sentencepiece model (pad=0, eos=1, unk=2, no bos).

    `model_type` is ``unigram`` (T5's algorithm) or ``bpe`` (byte-pair merges:
    on a tiny language the unigram trainer stops at a few dozen sub-word
    pieces, BPE keeps whole words). Returns the serialized model proto.
    ``hard_vocab_limit`` is off, so a small corpus yields a smaller vocabulary
    rather than an error. Training is single-threaded and deterministic
    (`seed` is accepted for symmetry; sentencepiece draws nothing here).
    """
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown sentencepiece model type {model_type!r}: expected one of "
                         f"{', '.join(MODEL_TYPES)}")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ValueError("cannot train a vocabulary on an empty corpus")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=out,
        vocab_size=vocab_size,
        model_type=model_type,
        bos_id=-1,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return out.getvalue()


def build_backbone(vocabulary_size: int, config: str | dict = "tiny", style: str = "t5.1.1",
                   dropout: float = 0.0, seed: int = 0):
    """A randomly initialized keras-hub `T5Backbone` of a named size and style.

    Its token embeddings are T5's N(0, 1) (`t5_init_embeddings`), not keras-hub's
    default.
    """
    import keras
    import keras_hub

    arch = dict(CONFIGS[config]) if isinstance(config, str) else dict(config)
    if style not in STYLES:
        raise ValueError(f"unknown T5 style {style!r}: expected one of {', '.join(STYLES)}")
    keras.utils.set_random_seed(seed)
    kwargs = dict(STYLES[style])
    kwargs["activation"] = activation(kwargs["activation"])
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=vocabulary_size, dropout=dropout, **arch, **kwargs
    )
    t5_init_embeddings(backbone, seed)
    return backbone


def t5_init_embeddings(backbone, seed: int = 0) -> None:
    """Give a freshly built backbone T5's embedding initialization (in place).

    keras-hub's `T5Backbone` passes ``TruncatedNormal(1.0)`` — a *mean* of 1.0
    and keras' default standard deviation of 0.05 — so every token starts as
    nearly the same vector, and a model trained from scratch barely tells its
    tokens apart (it only matters for random weights; presets load their own).
    T5 draws the shared embedding from N(0, 1); the untied output matrix here
    from N(0, 1/d) so that the first logits are of order one. Drawn in NumPy
    from ``(seed, 5)``: the same on every backend.
    """
    import numpy as np

    rng = np.random.default_rng([seed, 5])
    emb = backbone.token_embedding
    vocab, dim = emb.embeddings.shape
    emb.embeddings.assign(rng.standard_normal((vocab, dim)).astype("float32"))
    reverse = getattr(emb, "reverse_embeddings", None)
    if reverse is not None and not backbone.tie_embedding_weights:
        reverse.assign((rng.standard_normal(tuple(reverse.shape)) * dim**-0.5).astype("float32"))


def build_preset(out_dir: str | os.PathLike, texts: Iterable[str], config: str | dict = "tiny",
                 style: str = "t5.1.1", vocab_size: int = 256, seed: int = 0,
                 dropout: float = 0.0, model_type: str = "unigram") -> Path:
    """Train a vocabulary on `texts`, build a random backbone, save both as a keras-hub preset."""
    import keras_hub

    proto = train_sentencepiece(texts, vocab_size, seed=seed, model_type=model_type)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    backbone = build_backbone(tokenizer.vocabulary_size(), config, style, dropout, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backbone.save_to_preset(str(out_dir))
    tokenizer.save_to_preset(str(out_dir))
    return out_dir
