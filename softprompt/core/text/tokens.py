"""Text <-> token ids with a keras-hub T5 tokenizer, as plain Python lists.

keras-hub tokenizers return ragged tensors, numpy arrays or lists depending on
the backend and the input; these helpers always give ``list[list[int]]``.
T5 conventions: pad id 0 (also the decoder start token), ``</s>`` id 1 ends
every encoder input and every target.

Example:
    >>> ids = tokenize(tokenizer, ["the quick fox"])     # [[..., 1]]
    >>> detokenize(tokenizer, ids)                       # ["the quick fox"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2  # T5's sentencepiece <unk>


def _as_lists(out) -> list[list[int]]:
    if hasattr(out, "to_list"):  # a ragged tensor
        out = out.to_list()
    elif hasattr(out, "numpy") and not isinstance(out, np.ndarray):
        out = out.numpy()
    if isinstance(out, np.ndarray):
        out = out.tolist()
    return [[int(t) for t in row] for row in out]


def tokenize(tokenizer, texts: Sequence[str], add_eos: bool = True,
           max_length: int | None = None) -> list[list[int]]:
    """Token ids of each text, ``</s>``-terminated unless ``add_eos=False``.

    With `max_length`, sequences are cut to that many ids (keeping ``</s>``
    as the last id when it is added).
    """
    texts = list(texts)
    if not texts:
        return []
    rows = _as_lists(tokenizer(texts))
    eos = end_token_id(tokenizer)
    out = []
    for row in rows:
        if max_length is not None:
            row = row[: max_length - 1 if add_eos else max_length]
        out.append(row + [eos] if add_eos else row)
    return out


def detokenize(tokenizer, ids: Sequence[Sequence[int]]) -> list[str]:
    """Detokenize rows of ids, stopping at the first ``</s>`` and dropping padding.

    Ids past the sentencepiece vocabulary (a Hugging Face T5's sentinels ``<extra_id_N>`` and the
    embedding rows padding it to 32128) are read as ``<unk>``, as seqio's
    ``SentencePieceVocabulary`` decodes them.
    """
    eos = end_token_id(tokenizer)
    size = int(tokenizer.vocabulary_size())
    unk = getattr(tokenizer, "unk_token_id", None)
    unk = UNK_ID if unk is None else int(unk)
    texts = []
    for row in ids:
        kept = []
        for t in row:
            t = int(t)
            if t == eos:
                break
            if t != PAD_ID:
                kept.append(t if t < size else unk)
        texts.append(_detokenize_one(tokenizer, kept))
    return texts


def _detokenize_one(tokenizer, ids: list[int]) -> str:
    if not ids:
        return ""
    out = tokenizer.detokenize([ids])
    if hasattr(out, "numpy") and not isinstance(out, (np.ndarray, list)):
        out = out.numpy()
    first = out[0] if isinstance(out, (list, tuple, np.ndarray)) else out
    if isinstance(first, bytes):
        first = first.decode("utf-8")
    return str(first)


def end_token_id(tokenizer) -> int:
    return int(getattr(tokenizer, "end_token_id", None) or EOS_ID)


def special_ids(tokenizer) -> set[int]:
    """Ids of pad, eos, unk and other control pieces (``<...>``) of the vocabulary head."""
    ids = {PAD_ID, EOS_ID}
    for name in ("pad_token_id", "end_token_id", "start_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            ids.add(int(value))
    size = tokenizer.vocabulary_size()
    for i in range(min(size, 16)):
        piece = tokenizer.id_to_token(i)
        if piece.startswith("<") and piece.endswith(">"):
            ids.add(i)
    return ids
