"""The LM-adaptation corpus: files, tokenized once, and its seeded stream of batches.

Corpus files (one mixture source each):

- ``*.jsonl``: one JSON object a line, ``{"text": ...}`` (prefix LM) or
  ``{"inputs": ..., "targets": ...}`` (a supervised pair);
- anything else: plain text, one example a line (prefix LM).

The objective is T5's prefix LM: each text is split at a uniformly random
token; the encoder reads the prefix, the decoder predicts the continuation.
Pairs are trained as they are (a multi-task mixture, as T5's pretraining mixed
tasks into its span corruption).

Mixing is examples-proportional: every step draws `batch_size` examples
uniformly from all sources together (with replacement), from a generator
seeded by ``(seed, step)``. Batch ``s`` is a pure function of the corpus, the
seed and ``s`` (`AdaptBatches.batch`), which makes a resume exact; its
`fingerprint` lets the resume check that the corpus is the same.

Example:
    >>> texts, pairs, counts = read_corpus_files(["lm.txt", "tasks.jsonl"])
    >>> stream = AdaptBatches(tokenize_corpus(tokenizer, texts, pairs, counts), 64, 128, 64)
    >>> x, y, sample_weight = stream.batch(0)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import bucket_index, bucket_lengths, seq2seq_batch
from softprompt.tasks.readers import parse_json, text_lines

#: Held-out examples used for the evaluation loss (taken out of the training pool).
HELD_OUT = 256


@dataclasses.dataclass
class Corpus:
    """The tokenized corpus: prefix-LM texts and supervised pairs, one pool."""

    texts: list[list[int]]              # token ids (no </s>) of prefix-LM texts
    pairs: list[tuple[list[int], list[int]]]  # (input ids, target ids), each </s>-terminated
    sources: dict[str, int]             # file -> number of examples

    def __len__(self) -> int:
        return len(self.texts) + len(self.pairs)


def read_corpus_files(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]], dict]:
    """``(texts, pairs, counts)`` from corpus files; a malformed line is a one-line error."""
    texts: list[str] = []
    pairs: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for path in paths:
        path = Path(path)
        before = len(texts) + len(pairs)
        lines = (line for _, line in text_lines(path))  # UTF-8 (a BOM dropped), .gz too
        if path.name.endswith((".jsonl", ".json")):
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                record = parse_json(line, f"{path}:{n}")
                if isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts.append(record["text"])
                elif (isinstance(record, dict) and isinstance(record.get("inputs"), str)
                      and isinstance(record.get("targets"), str) and record["targets"]):
                    pairs.append((record["inputs"], record["targets"]))
                else:
                    raise ValueError(f'{path}:{n}: expected {{"text": ...}} or '
                                     f'{{"inputs": ..., "targets": ...}} with strings')
        else:
            texts.extend(line.strip() for line in lines if line.strip())
        counts[str(path)] = len(texts) + len(pairs) - before
        if counts[str(path)] == 0:
            raise ValueError(f"corpus file {path} holds no examples")
    return texts, pairs, counts


def tokenize_corpus(tokenizer, texts, pairs, counts) -> Corpus:
    text_ids = [r for r in tok.tokenize(tokenizer, texts, add_eos=False) if len(r) >= 2]
    if texts and not text_ids:
        raise ValueError("every corpus text is shorter than two tokens: nothing to split")
    inputs = tok.tokenize(tokenizer, [p[0] for p in pairs], add_eos=True)
    targets = tok.tokenize(tokenizer, [p[1] for p in pairs], add_eos=True)
    return Corpus(text_ids, list(zip(inputs, targets)), counts)


class AdaptBatches:
    """Seeded batches of the mixture; batch ``step`` depends only on ``(corpus, seed, step)``.

    The first `HELD_OUT` examples of a seeded permutation are kept out of
    training for the evaluation loss.
    """

    def __init__(self, corpus: Corpus, batch_size: int, max_input_length: int,
                 max_target_length: int, seed: int = 0):
        self.corpus = corpus
        self.batch_size = int(batch_size)
        self.max_input = int(max_input_length)
        self.max_target = int(max_target_length)
        self.seed = int(seed)
        order = np.random.default_rng([self.seed, 2**31 - 1]).permutation(len(corpus))
        held = min(HELD_OUT, len(corpus) // 10)
        self.held_out = order[:held]
        self.pool = np.sort(order[held:])
        n_texts = len(corpus.texts)
        self._texts_pool = self.pool[self.pool < n_texts]
        self._pairs_pool = self.pool[self.pool >= n_texts]
        self._text_share = len(self._texts_pool) / max(len(self.pool), 1)
        self.input_buckets = bucket_lengths(self.max_input, smallest=8)
        self.target_buckets = bucket_lengths(self.max_target, smallest=4)

    def _example(self, index: int, rng) -> tuple[list[int], list[int]]:
        n_texts = len(self.corpus.texts)
        if index >= n_texts:
            inputs, targets = self.corpus.pairs[index - n_texts]
        else:
            ids = self.corpus.texts[index]
            split = int(rng.integers(1, len(ids)))  # both sides non-empty
            inputs, targets = ids[:split] + [1], ids[split:] + [1]
        if len(inputs) > self.max_input:   # keep the end of the prefix, then </s>
            inputs = inputs[-(self.max_input - 1) - 1 : -1] + [inputs[-1]]
        if len(targets) > self.max_target:  # keep the start of the continuation
            targets = targets[: self.max_target - 1] + [targets[-1]]
        return inputs, targets

    def _batch(self, indices, rng):
        rows = [self._example(int(i), rng) for i in indices]
        width = self.input_buckets[bucket_index(max(len(r[0]) for r in rows), self.input_buckets)]
        twidth = self.target_buckets[bucket_index(max(len(r[1]) for r in rows),
                                                  self.target_buckets)]
        x, y, w = seq2seq_batch([r[0] for r in rows], [r[1] for r in rows], width, twidth)
        x.pop("prompt_ids")
        return x, y, w

    def batch(self, step: int):
        """``(x, y, sample_weight)`` of training step `step` (0-based).

        A step's examples all come from one kind (prefix-LM texts or pairs),
        the kind drawn with probability proportional to its share of the pool
        (so mixing stays examples-proportional); one kind per batch keeps the
        padded shapes, and so the compute, close to the examples' lengths.
        """
        rng = np.random.default_rng([self.seed, int(step)])
        pool = self._texts_pool if rng.random() < self._text_share else self._pairs_pool
        return self._batch(rng.choice(pool, self.batch_size, replace=True), rng)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the tokenized corpus and of everything that shapes the batches."""
        digest = hashlib.sha256(json.dumps(
            [self.batch_size, self.max_input, self.max_target, self.seed,
             len(self.corpus.texts), len(self.corpus.pairs)]).encode())
        for ids in self.corpus.texts:
            digest.update(np.asarray(ids, np.int32).tobytes() + b"|")
        for inputs, targets in self.corpus.pairs:
            digest.update(np.asarray(inputs + [-1] + targets, np.int32).tobytes() + b"|")
        return digest.hexdigest()[:16]

    def state(self, step: int) -> dict:
        """What a checkpoint records of the stream (a resume checks the fingerprint)."""
        return {"step": int(step), "fingerprint": self.fingerprint}

    def held_out_batches(self):
        rng = np.random.default_rng([self.seed, 2**31 - 2])
        for start in range(0, len(self.held_out), self.batch_size):
            yield self._batch(self.held_out[start : start + self.batch_size], rng)
