"""Synthetic workloads: SuperGLUE-like input lengths, random token rows, a word tokenizer.

Nothing is downloaded: the models have random weights, so the inputs only need the
right *shapes* (how long, how many, how the lengths spread). Lengths follow log-normal
laws fitted by eye to the tokenized SuperGLUE dev sets the paper used (T5 vocabulary,
task prefix included): BoolQ has a median near 150 tokens and a long tail past 512
(cut to 512, as training cuts it); CB near 80.

`WordTokenizer` stands in for the T5 sentencepiece model where the library's text-level
functions (`softprompt.core.inference.evaluate`) need one: every whitespace word becomes one piece
per 4 characters, mapped to a fixed id of the full 32k vocabulary, so label strings are
1-4 tokens long like T5's and any id the model generates detokenizes.

Example:
    >>> lengths = boolq_lengths(64, seed=0)
    >>> rows = token_rows(lengths, vocabulary_size=32128, seed=0)
    >>> tokenizer = WordTokenizer(32128)
    >>> tokenizer(["entailment"])          # three pieces: ▁enta ilme nt
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2
#: The two-label task (BoolQ's targets) and the three-label task (CB's).
TWO_LABELS = ("True", "False")
THREE_LABELS = ("entailment", "neutral", "contradiction")
#: (median tokens, log-normal sigma) of each task's inputs.
LENGTH_LAWS = {"boolq": (150.0, 0.55), "cb": (80.0, 0.5)}


def lengths_like(task: str, n: int, seed: int = 0, max_length: int = 512,
                 min_length: int = 8) -> list[int]:
    """`n` input lengths (``</s>`` included) drawn like `task`'s, cut to `max_length`."""
    median, sigma = LENGTH_LAWS[task]
    rng = np.random.default_rng([seed, zlib.crc32(task.encode())])
    raw = np.exp(rng.normal(np.log(median), sigma, size=n))
    return [int(v) for v in np.clip(np.rint(raw), min_length, max_length)]


def boolq_lengths(n: int, seed: int = 0, max_length: int = 512) -> list[int]:
    """BoolQ-like lengths: median ~150 tokens, ~1-2% cut at `max_length`."""
    return lengths_like("boolq", n, seed, max_length)


def token_rows(lengths: Sequence[int], vocabulary_size: int, seed: int = 0) -> list[list[int]]:
    """Random id rows of the given lengths, each ending in ``</s>`` (ids avoid pad/eos/unk)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(3, vocabulary_size, size=int(n) - 1).tolist() + [EOS_ID]
            for n in lengths]


class WordTokenizer:
    """A deterministic stand-in for keras-hub's `T5Tokenizer` (the calls softprompt makes).

    A word is cut into pieces of at most 4 characters, the first marked ``▁``;
    a piece's id is a hash into ``[3, vocabulary_size)``. ``</s>`` is 1, pad 0.
    """

    end_token_id = EOS_ID
    pad_token_id = PAD_ID
    unk_token_id = UNK_ID

    def __init__(self, vocabulary_size: int):
        self._size = int(vocabulary_size)
        self._pieces: dict[int, str] = {PAD_ID: "<pad>", EOS_ID: "</s>", UNK_ID: "<unk>"}

    def vocabulary_size(self) -> int:
        return self._size

    def _id(self, piece: str) -> int:
        token = 3 + zlib.crc32(piece.encode()) % (self._size - 3)
        self._pieces.setdefault(token, piece)
        return token

    def pieces(self, text: str) -> list[str]:
        out = []
        for word in text.split():
            chunks = [word[i : i + 4] for i in range(0, len(word), 4)]
            out.extend(["▁" + chunks[0], *chunks[1:]])
        return out

    def __call__(self, texts):
        if isinstance(texts, str):
            return [self._id(p) for p in self.pieces(texts)]
        return [[self._id(p) for p in self.pieces(t)] for t in texts]

    def id_to_token(self, token: int) -> str:
        return self._pieces.get(int(token), f"<{int(token)}>")

    def detokenize(self, rows):
        texts = []
        for row in rows:
            pieces = [self.id_to_token(t) for t in row]
            texts.append("".join(pieces).replace("▁", " ").strip())
        return texts


def random_texts(lengths: Sequence[int], seed: int = 0) -> list[str]:
    """Texts that `WordTokenizer` cuts into exactly ``length - 1`` pieces (``</s>`` makes `length`)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out = []
    for n in lengths:
        words = ["".join(rng.choice(letters, size=int(rng.integers(2, 5)))) for _ in range(int(n) - 1)]
        out.append(" ".join(words))
    return out
