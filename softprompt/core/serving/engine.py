"""The one module of the server that touches the model; it calls softprompt's inference path.

Every model call the server makes goes through `Engine`, and `Engine` only calls what
``softprompt predict`` calls: `PromptedT5.from_preset` and `PromptedT5.with_prompts`
(every served prompt in one variable, a ``prompt_ids`` entry per row, so a batch mixes
tasks freely) and the one batched inference path, `softprompt.core.inference.batched`:
`tokenize_inputs`, `score_ids` (rank classification) and, for greedy decoding, the
kernel `generate_ids` runs per bucket, `softprompt.core.inference.decoding.greedy_tokens`
(called directly: the engine picks the decoding length bucket and needs the tokens to
count them). So a row's answer is what ``softprompt predict`` gives for the same prompt
and input.

Shapes (`softprompt.core.serving.shapes`): a batch is padded to a row bucket with copies
of its first row, its inputs to their width bucket (`softprompt.core.text.batching`), and
decoding runs to a length bucket, each row cut to the tokens it asked for. Compiled
backends therefore see a few fixed shapes and never compile per request; `shapes` lists
those run so far.

Prompts: `Engine` serves the `PromptTable` each batch brings (`PromptRegistry.current`,
taken when the batch starts): a new table is copied into the same prompt variable when
its slots and lengths allow (`PromptSlots`), else into a new one over the same frozen
backbone. Call `Engine` from one thread (the batcher's model thread): a batch then
always runs with the prompts it started with.

Example:
    >>> engine = Engine.from_preset("softprompt_tiny", max_batch_size=8, max_input_length=64)
    >>> ids = engine.encode(["the cat sat"])[0]
    >>> results, stats = engine.generate(table, [DecodeRow("boolq", ids, 4)])
    >>> results[0].text, stats.shape
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from softprompt.core.inference import batched
from softprompt.core.inference.decoding import greedy_tokens
from softprompt.core.inference.ensemble import combine_scores, majority
from softprompt.core.inference.evaluate import DEFAULT_TARGET_LENGTH
from softprompt.core.serving.shapes import bucket_for, length_buckets, row_buckets, rows_for
from softprompt.core.serving.slots import PromptSlots
from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import bucket_index, bucket_lengths, pad

#: Models with fewer parameters run CPU ops on one thread (`Adapter.small_model_threads`).
SMALL_MODEL_PARAMETERS = 10_000_000


@dataclasses.dataclass(frozen=True)
class DecodeRow:
    """One input under one prompt, decoded greedily to at most `max_new_tokens` tokens."""

    task: str
    ids: tuple[int, ...]
    max_new_tokens: int


@dataclasses.dataclass(frozen=True)
class RankRow:
    """One input under one prompt, scored against `labels` (rank classification)."""

    task: str
    ids: tuple[int, ...]
    labels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded row: its text, how many tokens it took, whether it ended with ``</s>``,
    and the SHA-256 of the prompt file it ran with."""

    text: str
    tokens: int
    stopped: bool
    prompt_sha256: str


@dataclasses.dataclass(frozen=True)
class Scored:
    """A ranked row: float64 log-likelihood per label, and the prompt file's SHA-256."""

    scores: np.ndarray
    prompt_sha256: str


@dataclasses.dataclass(frozen=True)
class BatchStats:
    """What one model call ran: real and padded rows, the shape, the padding share."""

    rows: int
    padded_rows: int
    shape: tuple
    padding: float


class TaskGone(LookupError):
    """The row's task was removed between its request and its batch."""


class Engine:
    """The frozen model, the served prompts and the fixed shapes (see the module docstring).

    Args:
        model: a `PromptedT5` (its own prompt is not used).
        max_batch_size: the largest row bucket.
        max_input_length: the longest input in tokens; `encode` marks longer ones.
        max_new_tokens_limit: the largest decoding length bucket.
    """

    def __init__(self, model, *, max_batch_size: int = 32, max_input_length: int = 512,
                 max_new_tokens_limit: int = 256):
        self.base = model
        self.max_input_length = int(max_input_length)
        self.max_new_tokens_limit = int(max_new_tokens_limit)
        self.row_buckets = row_buckets(max_batch_size)
        self.widths = bucket_lengths(self.max_input_length)
        self.length_buckets = length_buckets(self.max_new_tokens_limit)
        self.shapes: set[tuple] = set()
        self._slots = PromptSlots()
        self._model = None
        self._table = None

    #: An ensemble's answers combined as ``softprompt ensemble`` combines them: the most
    #: frequent answers (several when tied), and labels by their mean log-likelihood.
    majority = staticmethod(majority)
    mean_vote = staticmethod(combine_scores)

    @classmethod
    def from_preset(cls, preset: str, **limits) -> Engine:
        """Load the frozen model of `preset` (keras-hub's ``from_preset``, as `predict` does)."""
        from softprompt import backends
        from softprompt.core.model.prompted_t5 import PromptedT5

        model = PromptedT5.from_preset(preset, prompt_length=1, init="uniform", seed=0)
        if model.backbone.count_params() < SMALL_MODEL_PARAMETERS:
            backends.current().small_model_threads()
        return cls(model, **limits)

    # ------------------------------------------------------------------ requests
    @property
    def tokenizer(self):
        return self.base.tokenizer

    def identity(self) -> dict:
        """The served model's identity (preset, hidden size, embedding fingerprint)."""
        return self.base.identity()

    def encode(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """``</s>``-terminated ids per text; an input over `max_input_length` comes back one
        id longer than the limit (so the caller can refuse it) and is never cut silently."""
        rows = batched.tokenize_inputs(self.base, list(texts), self.max_input_length + 1)
        return [tuple(r) for r in rows]

    def width(self, length: int) -> int:
        """The input width bucket of an input of `length` tokens."""
        return self.widths[bucket_index(length, self.widths)]

    def decode_length(self, max_new_tokens: int) -> int:
        """The decoding length bucket for `max_new_tokens`."""
        return bucket_for(max_new_tokens, self.length_buckets)

    def default_new_tokens(self, entry) -> int:
        """Tokens to decode when a request does not say: the prompt's training setting
        (its sidecar), else `predict`'s default, at most the limit."""
        length = entry.max_target_length or DEFAULT_TARGET_LENGTH
        return min(int(length), self.max_new_tokens_limit)

    # ------------------------------------------------------------------ batches
    def generate(self, table, rows: Sequence[DecodeRow]):
        """Greedy-decode `rows` in one call; returns ``(results, stats)``.

        A result is a `Decoded`, or a `TaskGone` for a row whose task `table` lacks.
        """
        model, slots, results, live = self._prepare(table, rows)
        if not live:
            return results, None
        chosen = [rows[i] for i in live]
        width = self.width(max(len(r.ids) for r in chosen))
        length = self.decode_length(max(r.max_new_tokens for r in chosen))
        count = rows_for(len(chosen), self.row_buckets)
        filled = chosen + [chosen[0]] * (count - len(chosen))
        ids, mask = pad([r.ids for r in filled], width)
        prompt_ids = np.asarray([slots[r.task] for r in filled], np.int32)
        tokens = greedy_tokens(model, ids, mask, prompt_ids, max_length=length)
        cut = [list(tokens[j][: r.max_new_tokens]) for j, r in enumerate(chosen)]
        texts = tok.detokenize(self.tokenizer, cut)
        eos = tok.end_token_id(self.tokenizer)
        for j, i in enumerate(live):
            stopped = eos in cut[j]
            results[i] = Decoded(texts[j], cut[j].index(eos) if stopped else len(cut[j]),
                                 stopped, table[rows[i].task].sha256)
        return results, self._stats(("decode", count, width, length), chosen, count, width)

    def rank(self, table, rows: Sequence[RankRow]):
        """Rank classification of `rows` in one call (rows share their number of labels).

        Returns ``(results, stats)``: a `Scored` per row, or a `TaskGone`.
        """
        model, slots, results, live = self._prepare(table, rows)
        if not live:
            return results, None
        chosen = [rows[i] for i in live]
        if len({len(r.labels) for r in chosen}) != 1:
            raise ValueError("rows of one rank batch must have the same number of labels")
        width = self.width(max(len(r.ids) for r in chosen))
        count = rows_for(len(chosen), self.row_buckets)
        filled = chosen + [chosen[0]] * (count - len(chosen))
        scores = batched.score_ids(
            model, [list(r.ids) for r in filled], [list(r.labels) for r in filled],
            np.asarray([slots[r.task] for r in filled], np.int32), batch_size=count,
            max_input_length=self.max_input_length,
        )
        for j, i in enumerate(live):
            results[i] = Scored(np.asarray(scores[j][0], np.float64),
                                table[rows[i].task].sha256)
        shape = ("rank", count, width, len(chosen[0].labels))
        return results, self._stats(shape, chosen, count, width)

    def warmup(self, table) -> None:
        """Run the commonest shapes once (compiled backends compile them now): one row and a
        full batch, the smallest width, the first task's decoding length (and its labels)."""
        if not len(table):
            return
        entry = table[table.names[0]]
        ids = self.encode(["warm up"])[0]
        for count in sorted({1, self.row_buckets[-1]}):
            self.generate(table, [DecodeRow(entry.name, ids, self.default_new_tokens(entry))]
                          * count)
            if entry.labels:
                self.rank(table, [RankRow(entry.name, ids, tuple(entry.labels))] * count)

    # ------------------------------------------------------------------ prompts
    def _prepare(self, table, rows):
        if table is not self._table:
            self._serve(table)
        slots = self._slots.slots
        results: list = [None] * len(rows)
        live = []
        for i, row in enumerate(rows):
            if row.task in table and row.task in slots:
                live.append(i)
            else:
                results[i] = TaskGone(f"task {row.task!r} was removed while the request waited")
        return self._model, slots, results, live

    def _serve(self, table) -> None:
        """Hold `table`'s prompts: in the current variable when shapes allow, else a new one."""
        self._table = table
        if not len(table):
            return
        slots = self._slots.assign(table.names)
        width = max(table[n].prompt_length for n in slots)
        filler = np.zeros((width, int(self.base.backbone.hidden_dim)), np.float32)
        arrays = [filler] * self._slots.capacity
        for name, slot in slots.items():
            arrays[slot] = table[name].array
        fresh = self.base.with_prompts(arrays)
        current = self._model
        if (current is not None and current.num_prompts == fresh.num_prompts
                and current.prompt_lengths == fresh.prompt_lengths):
            current.prompt.embeddings.assign(fresh.prompt.embeddings.value)  # same shapes
        else:
            self._model = fresh  # a new shape: compiled backends compile it on first use

    def _stats(self, shape, chosen, count, width) -> BatchStats:
        self.shapes.add(shape)
        real = sum(len(r.ids) for r in chosen)
        return BatchStats(len(chosen), count, shape, 1.0 - real / float(count * width))
