"""Nearest vocabulary tokens of each prompt vector (the paper's interpretability analysis).

For every prompt position, the top-k tokens of the frozen model's input
embedding matrix by cosine similarity. Positions whose neighbours include a
piece of one of the task's label words are flagged (the paper found class
labels among the neighbours of class-label initialised prompts).

Example:
    >>> rows = nearest_tokens(prompt, model.embedding_matrix(), model.tokenizer, k=5,
    ...                       labels=["True", "False"])
    >>> rows[0]["tokens"], rows[0]["labels"]
"""

from __future__ import annotations

import numpy as np

from softprompt.core.text import tokens as tok


def cosine_top_k(vectors, matrix, k: int = 5, exclude=()) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `matrix` by cosine similarity to each of `vectors`.

    Returns ``(ids, similarities)``, both ``(len(vectors), k)``, best first.
    Rows listed in `exclude` are never returned.
    """
    vectors = np.asarray(vectors, np.float64)
    matrix = np.asarray(matrix, np.float64)
    if vectors.ndim != 2 or matrix.ndim != 2 or vectors.shape[1] != matrix.shape[1]:
        raise ValueError(
            f"prompt vectors {vectors.shape} and embedding matrix {matrix.shape} "
            "must share their last dimension"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    m = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    sims = v @ m.T
    excluded = sorted(set(int(i) for i in exclude))
    if excluded:
        sims[:, excluded] = -np.inf
    k = min(k, matrix.shape[0] - len(excluded))
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(sims, ids, axis=1)


def label_token_ids(tokenizer, labels) -> dict[int, str]:
    """Token id -> label for the pieces of each label word (the bare word-start piece excluded)."""
    out: dict[int, str] = {}
    if not labels:
        return out
    for label, ids in zip(labels, tok.tokenize(tokenizer, list(labels), add_eos=False)):
        for i in ids:
            if tokenizer.id_to_token(int(i)) != "\u2581":
                out.setdefault(int(i), label)
    return out


def nearest_tokens(prompt, embedding_matrix, tokenizer, k: int = 5, labels=None,
                   skip_special: bool = True) -> list[dict]:
    """One row per prompt position: its k nearest tokens and the labels among them.

    Args:
        prompt: a ``(P, d)`` prompt.
        embedding_matrix: the frozen model's ``(V, d)`` input embeddings.
        tokenizer: the model's tokenizer (to show the tokens).
        k: neighbours per position.
        labels: label words to flag (e.g. the task's labels).
        skip_special: leave pad, ``</s>``, unk and other control tokens out.

    Returns:
        ``[{"position", "tokens", "ids", "similarities", "labels"}]``.
    """
    prompt = np.asarray(prompt, np.float32)
    if prompt.ndim != 2:
        raise ValueError(f"expected one (P, d) prompt, got shape {prompt.shape}")
    exclude = tok.special_ids(tokenizer) if skip_special else ()
    ids, sims = cosine_top_k(prompt, embedding_matrix, k, exclude)
    label_ids = label_token_ids(tokenizer, labels)
    rows = []
    for p in range(prompt.shape[0]):
        row_ids = [int(i) for i in ids[p]]
        found = list(dict.fromkeys(label_ids[i] for i in row_ids if i in label_ids))
        rows.append({
            "position": p,
            "tokens": [tokenizer.id_to_token(i) for i in row_ids],
            "ids": row_ids,
            "similarities": [round(float(s), 6) for s in sims[p]],
            "labels": found,
        })
    return rows
