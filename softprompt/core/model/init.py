"""Prompt initializers (the paper's ablation): uniform, sampled vocab, class labels, text, file.

Every initializer is computed in NumPy from a seeded generator, so the same
seed gives the same prompt on every backend. Each returns a float32 array of
shape ``(num_prompts, length, hidden_dim)``.

Example:
    >>> emb = model.backbone.token_embedding.embeddings.numpy()
    >>> initial_prompt("class-labels", emb, tokenizer, length=100, labels=["True", "False"], seed=0)
"""

from __future__ import annotations

import warnings

import numpy as np

from softprompt.core.io.prompt_files import check_finite, load_prompt
from softprompt.core.text import tokens

INITS = ("uniform", "sampled-vocab", "class-labels", "text", "file")
#: The paper samples from the 5,000 most frequent tokens.
TOP_VOCAB = 5000


def initial_prompt(
    init: str,
    embedding_matrix,
    tokenizer=None,
    *,
    length: int,
    num_prompts: int = 1,
    seed: int | None = None,
    labels=None,
    text: str | None = None,
    file=None,
    init_range: float = 0.5,
) -> np.ndarray:
    """Return the initial prompt array for initializer `init`.

    `embedding_matrix` is the ``(vocabulary, hidden_dim)`` token embedding: a numpy array or
    the backbone's keras variable, read only by the initializers that copy its rows (the
    ``uniform`` and ``file`` ones take its width alone, without a copy of the matrix).
    """
    if init not in INITS:
        raise ValueError(f"unknown prompt init {init!r}: expected one of {', '.join(INITS)}")
    dim = int(embedding_matrix.shape[1])
    rng = np.random.default_rng(seed)
    if init == "uniform":
        return rng.uniform(-init_range, init_range, (num_prompts, length, dim)).astype(np.float32)
    if init == "file":
        return _from_file(file, num_prompts, length, dim)
    if not isinstance(embedding_matrix, np.ndarray):
        from keras import ops  # here: the CLI imports this module before keras

        embedding_matrix = ops.convert_to_numpy(embedding_matrix)
    emb = np.asarray(embedding_matrix, dtype=np.float32)
    if tokenizer is None:
        raise ValueError(f"prompt init {init!r} needs the model's tokenizer")
    if init == "sampled-vocab":
        return np.stack([sampled_vocab(emb, tokenizer, length, rng) for _ in range(num_prompts)])
    if init == "class-labels":
        if not labels:
            raise ValueError("prompt init 'class-labels' needs init_labels (the task's label strings)")
        labels = list(labels)
        if len(labels) > length:
            # As google-research/prompt-tuning does: the first `length` labels, a warning.
            warnings.warn(f"{len(labels)} class labels do not fit a prompt of length {length}: "
                          f"initializing with the first {length} ({', '.join(labels[:length])})",
                          stacklevel=2)
            labels = labels[:length]
        label_rows = label_embeddings(emb, tokenizer, labels)
        out = []
        for _ in range(num_prompts):
            rest = sampled_vocab(emb, tokenizer, length - len(labels), rng)
            out.append(np.concatenate([label_rows, rest], axis=0))
        return np.stack(out).astype(np.float32)
    # init == "text"
    if not text:
        raise ValueError("prompt init 'text' needs init_text (a non-empty string)")
    ids = tokens.tokenize(tokenizer, [text], add_eos=False)[0]
    if not ids:
        raise ValueError(f"init_text {text!r} tokenizes to nothing")
    reps = -(-length // len(ids))
    ids = (ids * reps)[:length]
    return np.broadcast_to(emb[ids], (num_prompts, length, dim)).astype(np.float32).copy()


def frequent_ids(tokenizer, vocab_size: int) -> np.ndarray:
    """The ids of the `TOP_VOCAB` most frequent non-special tokens.

    Sentencepiece ids are ordered by frequency after the special pieces.
    """
    special = tokens.special_ids(tokenizer)
    ids = [i for i in range(vocab_size) if i not in special]
    return np.asarray(ids[:TOP_VOCAB], dtype=np.int64)


def sampled_vocab(emb: np.ndarray, tokenizer, length: int, rng) -> np.ndarray:
    """`length` rows of `emb` for tokens drawn without replacement from the frequent pool."""
    if length == 0:
        return np.zeros((0, emb.shape[1]), np.float32)
    pool = frequent_ids(tokenizer, emb.shape[0])
    chosen = rng.choice(pool, size=length, replace=length > len(pool))
    return emb[chosen]


def label_embeddings(emb: np.ndarray, tokenizer, labels) -> np.ndarray:
    """One row per label: the mean of the embeddings of its subword tokens."""
    rows = []
    for label, ids in zip(labels, tokens.tokenize(tokenizer, labels, add_eos=False)):
        if not ids:
            raise ValueError(f"class label {label!r} tokenizes to nothing")
        rows.append(emb[ids].mean(axis=0))
    return np.stack(rows).astype(np.float32)


def _from_file(file, num_prompts: int, length: int, dim: int) -> np.ndarray:
    if file is None:
        raise ValueError("prompt init 'file' needs init_file (a prompt .npy file)")
    array, _ = load_prompt(file) if not isinstance(file, np.ndarray) else (file, {})
    array = np.asarray(array, np.float32)
    check_finite(array, "init prompt array")
    if array.ndim == 2:
        array = np.broadcast_to(array, (num_prompts,) + array.shape)
    expected = (num_prompts, length, dim)
    if array.shape != expected:
        raise ValueError(
            f"prompt file {file} has shape {array.shape}, expected {expected} "
            "(num_prompts, prompt_length, hidden_dim)"
        )
    return array.copy()
