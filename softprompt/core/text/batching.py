"""Tokenize once, bucket by length, pad to a few fixed shapes.

Training batches come from `TrainBatches`, an endless, seeded stream in which
batch ``step`` is a pure function of ``(data, batch_size, buckets, seed,
step)``. That is what makes ``--resume`` exact: the stream needs no state
beyond the step number, and `TrainBatches.fingerprint` checks that the data
and the batching are those of the interrupted run.

Bucketing: encoder inputs are padded to the smallest *bucket length* that
holds them. Bucket lengths are powers of two from 16 up to the maximum input
length, plus that maximum (`bucket_lengths`): ``[16, 32, 64, 128, 256, 512]``
for the paper's 512. Targets are padded to one fixed length. Every training
batch has exactly ``batch_size`` rows (a short batch is filled with copies of
its own rows carrying zero weight), so a compiled backend sees at most one
shape per bucket and never recompiles after the first pass over the buckets.

Each epoch shuffles every bucket with ``(seed, epoch)``, cuts it into full
batches, carries the leftover rows up into the next longer bucket (they fit
there), and finally shuffles the order of the batches. Only the longest
bucket in use may end with a short batch, so the number of batches per epoch is fixed and
padding stays small.

Example:
    >>> encoded = encode_pairs(tokenizer, [("review: fine", "good")], 512, 4)
    >>> stream = TrainBatches(encoded, batch_size=32, seed=0, target_length=4)
    >>> x, y, sample_weight = stream.batch(0)
    >>> x["encoder_token_ids"].shape     # (32, 16): the smallest bucket
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

import numpy as np

from softprompt.core.text import tokens as tok

#: The shortest bucket length.
SMALLEST_BUCKET = 16


def bucket_lengths(max_length: int, smallest: int = SMALLEST_BUCKET) -> tuple[int, ...]:
    """Powers of two from `smallest` below `max_length`, then `max_length` itself.

    Example:
        >>> bucket_lengths(512)
        (16, 32, 64, 128, 256, 512)
        >>> bucket_lengths(100)
        (16, 32, 64, 100)
    """
    if max_length < 1:
        raise ValueError(f"maximum length must be at least 1, got {max_length}")
    out = []
    length = smallest
    while length < max_length:
        out.append(length)
        length *= 2
    out.append(int(max_length))
    return tuple(out)


def bucket_index(length: int, buckets: Sequence[int]) -> int:
    """Index of the smallest bucket holding `length` (the last one when none does)."""
    for i, width in enumerate(buckets):
        if length <= width:
            return i
    return len(buckets) - 1


@dataclasses.dataclass
class Encoded:
    """Token ids of (input, target) pairs, each ``</s>``-terminated and cut to length.

    Attributes:
        inputs: encoder ids per example.
        targets: target ids per example (empty lists for unlabeled examples).
        cut_inputs: how many inputs were longer than the maximum and cut.
        cut_targets: how many targets were cut.
    """

    inputs: list[list[int]]
    targets: list[list[int]]
    cut_inputs: int = 0
    cut_targets: int = 0

    def __len__(self) -> int:
        return len(self.inputs)


def token_lengths(tokenizer, texts: Sequence[str]) -> list[int]:
    """Length of each text in tokens, ``</s>`` included."""
    return [len(r) for r in tok.tokenize(tokenizer, list(texts), add_eos=True)]


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], max_input_length: int,
                 max_target_length: int | None) -> Encoded:
    """Tokenize ``(inputs, targets)`` string pairs once, cutting to the maximum lengths.

    An empty target gives an empty id list (an unlabeled example), which
    training refuses and inference ignores.
    """
    pairs = list(pairs)
    inputs = tok.tokenize(tokenizer, [p[0] for p in pairs], add_eos=True)
    labeled = [i for i, p in enumerate(pairs) if p[1]]
    target_rows = tok.tokenize(tokenizer, [pairs[i][1] for i in labeled], add_eos=True)
    targets: list[list[int]] = [[] for _ in pairs]
    for i, row in zip(labeled, target_rows):
        targets[i] = row
    cut_in = sum(len(r) > max_input_length for r in inputs)
    inputs = [_cut(r, max_input_length) for r in inputs]
    cut_out = 0
    if max_target_length is not None:
        cut_out = sum(len(r) > max_target_length for r in targets)
        targets = [_cut(r, max_target_length) if r else r for r in targets]
    return Encoded(inputs, targets, cut_in, cut_out)


def _cut(row: list[int], length: int) -> list[int]:
    """Cut to `length` ids keeping the final ``</s>``."""
    return row if len(row) <= length else row[: length - 1] + [row[-1]]


def pad(rows: Sequence[Sequence[int]], width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id rows to ``(ids, mask)`` int32 arrays of shape ``(len(rows), width)``.

    Rows longer than `width` are cut; ``width=None`` is the longest row's length.

    Example:
        >>> ids, mask = pad([[7, 8, 1], [9, 1]])
        >>> ids.tolist(), mask.tolist()
        ([[7, 8, 1], [9, 1, 0]], [[1, 1, 1], [1, 1, 0]])
    """
    if width is None:
        width = max([len(r) for r in rows] + [1])
    ids = np.full((len(rows), width), tok.PAD_ID, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        row = list(row)[:width]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def seq2seq_batch(inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
                  input_width: int, target_width: int, weights: np.ndarray | None = None,
                  prompt_ids: np.ndarray | None = None):
    """``(x, y, sample_weight)`` in keras-hub's Seq2SeqLM layout.

    ``x`` holds ``encoder_token_ids``, ``encoder_padding_mask``,
    ``decoder_token_ids`` (the targets shifted right behind the start id 0),
    ``decoder_padding_mask`` and ``prompt_ids``; ``y`` the target ids;
    ``sample_weight`` the target mask times the per-row `weights`.
    """
    enc_ids, enc_mask = pad(inputs, input_width)
    y, y_mask = pad(targets, target_width)
    dec_ids = np.zeros_like(y)
    dec_ids[:, 1:] = y[:, :-1]
    rows = len(inputs)
    if prompt_ids is None:
        prompt_ids = np.zeros((rows,), np.int32)
    weight = y_mask.astype(np.float32)
    if weights is not None:
        weight = weight * np.asarray(weights, np.float32)[:, None]
    x = {
        "encoder_token_ids": enc_ids,
        "encoder_padding_mask": enc_mask,
        "decoder_token_ids": dec_ids,
        "decoder_padding_mask": y_mask,
        "prompt_ids": np.asarray(prompt_ids, np.int32),
    }
    return x, y, weight


class TrainBatches:
    """The seeded, endless stream of fixed-shape training batches.

    Args:
        encoded: the tokenized training pairs (every target non-empty).
        batch_size: rows per batch.
        seed: shuffling seed; epoch ``e`` uses ``(seed, e)``.
        target_length: the fixed target width (the longest target by default).
        buckets: encoder bucket lengths (default: `bucket_lengths` of the
            longest input).

    Example:
        >>> stream = TrainBatches(encoded, batch_size=32, seed=0)
        >>> x, y, w = stream.batch(step)          # the same arrays for the same step, always
    """

    def __init__(self, encoded: Encoded, batch_size: int, seed: int = 0,
                 target_length: int | None = None, buckets: Sequence[int] | None = None):
        if len(encoded) == 0:
            raise ValueError("no training examples")
        empty = [i for i, t in enumerate(encoded.targets) if not t]
        if empty:
            raise ValueError(
                f"training example {empty[0]} has an empty target ({len(empty)} such examples): "
                "every training example needs a label"
            )
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.encoded = encoded
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        longest_in = max(len(r) for r in encoded.inputs)
        self.buckets = tuple(buckets) if buckets else bucket_lengths(longest_in)
        self.target_length = int(target_length or max(len(t) for t in encoded.targets))
        lengths = [len(r) for r in encoded.inputs]
        members: list[list[int]] = [[] for _ in self.buckets]
        for i, n in enumerate(lengths):
            members[bucket_index(n, self.buckets)].append(i)
        # Only the buckets the data uses: leftovers move up to the next of these.
        self._groups = [(w, np.asarray(m, np.int64)) for w, m in zip(self.buckets, members) if m]
        self.batches_per_epoch = len(self.plan(0))
        self._cached_epoch: int | None = None
        self._cached_plan: list[tuple[int, np.ndarray]] = []

    def plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """The batches of `epoch`, in order: ``(input_width, example indices)``."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        batches: list[tuple[int, np.ndarray]] = []
        carry = np.zeros((0,), np.int64)
        for width, members in self._groups:
            pool = np.concatenate([carry, rng.permutation(members)])
            full = len(pool) // self.batch_size * self.batch_size
            for start in range(0, full, self.batch_size):
                batches.append((width, pool[start : start + self.batch_size]))
            carry = pool[full:]
        if len(carry):
            batches.append((self._groups[-1][0], carry))
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, index within the epoch)`` of batch `step` (0-based)."""
        return divmod(int(step), self.batches_per_epoch)

    def indices(self, step: int) -> tuple[int, np.ndarray]:
        """``(input_width, example indices)`` of batch `step`."""
        epoch, index = self.position(step)
        if self._cached_epoch != epoch:
            self._cached_plan = self.plan(epoch)
            self._cached_epoch = epoch
        return self._cached_plan[index]

    def batch(self, step: int):
        """``(x, y, sample_weight)`` of batch `step`, always ``batch_size`` rows."""
        width, idx = self.indices(step)
        weights = np.ones((self.batch_size,), np.float32)
        if len(idx) < self.batch_size:  # fill with zero-weight copies of real rows
            weights[len(idx):] = 0.0
            idx = np.resize(idx, self.batch_size)
        inputs = [self.encoded.inputs[i] for i in idx]
        targets = [self.encoded.targets[i] for i in idx]
        return seq2seq_batch(inputs, targets, width, self.target_length, weights)

    def shapes(self) -> list[tuple[int, int, int]]:
        """The ``(rows, input_width, target_width)`` shapes the stream can produce."""
        return [(self.batch_size, w, self.target_length) for w, _ in self._groups]

    def fingerprint(self) -> str:
        """A hash of the data and of everything that orders it (for resume checks)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.batch_size, self.seed, list(self.buckets),
                             self.target_length]).encode())
        for row in self.encoded.inputs:
            h.update(np.asarray(row, np.int32).tobytes() + b"|")
        for row in self.encoded.targets:
            h.update(np.asarray(row, np.int32).tobytes() + b"|")
        return h.hexdigest()[:16]

    def state(self, step: int) -> dict:
        """The data order at `step`, as recorded in a checkpoint."""
        epoch, index = self.position(step)
        return {"step": int(step), "epoch": epoch, "index": index, "seed": self.seed,
                "batches_per_epoch": self.batches_per_epoch,
                "fingerprint": self.fingerprint()}


def inference_plan(lengths: Sequence[int], batch_size: int,
                   buckets: Sequence[int]) -> list[tuple[int, np.ndarray]]:
    """Batches for inference: ``(input_width, example indices)``, shortest inputs first.

    Examples are grouped by bucket (in input order within a bucket) so a batch
    carries little padding; batches may be short (inference runs eagerly).
    """
    groups: list[list[int]] = [[] for _ in buckets]
    for i, n in enumerate(lengths):
        groups[bucket_index(n, buckets)].append(i)
    plan = []
    for width, members in zip(buckets, groups):
        for start in range(0, len(members), batch_size):
            plan.append((width, np.asarray(members[start : start + batch_size], np.int64)))
    return plan
