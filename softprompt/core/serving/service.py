"""What each endpoint does: check a request, queue its rows, combine the answers.

A request becomes one row per (input, task): an ensemble (a list of tasks) puts every
input under each of its prompts, and the rows go into the same batches as everyone
else's. Greedy answers are combined by majority vote (ties to the highest summed
log-likelihood under all members, one more pass), label scores by their mean — as
``softprompt ensemble`` combines them. Checks happen before anything is queued, so a
bad request fails alone with a status (`APIError`); nothing here knows the framework.

Example:
    >>> service = Service(engine, registry, batcher)
    >>> await service.generate("animal_food", ["the cow walks to the barn."], None)
    {'task': 'animal_food', 'outputs': ['grass'], 'prompt_sha256': '…', 'usage': {…}}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np

from softprompt.core.serving.batcher import Closed, QueueFull, QueueTimeout
from softprompt.core.serving.engine import DecodeRow, RankRow, TaskGone
from softprompt.core.serving.errors import APIError

logger = logging.getLogger("softprompt.serve")

#: Labels a classification request may give at most.
MAX_LABELS = 64


class Service:
    """The endpoints' logic over an `Engine`, a `PromptRegistry` and a `Batcher`."""

    def __init__(self, engine, registry, batcher):
        self.engine = engine
        self.registry = registry
        self.batcher = batcher

    # ------------------------------------------------------------------ endpoints
    async def generate(self, task, inputs: Sequence[str], max_new_tokens: int | None) -> dict:
        """Greedy decoding of each input (an ensemble's majority answer)."""
        names, entries = self._tasks(task)
        if max_new_tokens is None:
            max_new_tokens = max(self.engine.default_new_tokens(e) for e in entries)
        self._check_new_tokens(max_new_tokens, "max_new_tokens")
        ids = await self._encode(inputs, len(names))
        decoded = await self._decode(names, ids, max_new_tokens)
        outputs = []
        tied: list[tuple[int, list[str]]] = []
        for i, row in enumerate(decoded):
            keys = [d.text.strip() for d in row]
            top = self.engine.majority(keys)
            outputs.append(top[0])
            if len(top) > 1:  # the raw text of the first member that said each
                tied.append((i, [row[keys.index(k)].text for k in top]))
        if tied:
            scored = await self._rank(names, [ids[i] for i, _ in tied],
                                      [tuple(raw) for _, raw in tied])
            for (i, raw), row in zip(tied, scored):
                summed = np.sum([x.scores for x in row], axis=0)
                outputs[i] = raw[int(summed.argmax())].strip()
        completion = sum(d.tokens for row in decoded for d in row)
        return {"task": task, "outputs": outputs, "prompt_sha256": _shas(task, decoded[0]),
                "usage": _usage(ids, len(names), completion)}

    async def classify(self, task, inputs: Sequence[str], labels: Sequence[str] | None) -> dict:
        """Rank classification of each input over `labels` (default: the task's)."""
        names, entries = self._tasks(task)
        labels = await self._labels(names, entries, labels)
        ids = await self._encode(inputs, len(names))
        scored = await self._rank(names, ids, [labels] * len(ids))
        results = []
        for row in scored:
            s = np.stack([x.scores for x in row])  # (tasks, labels)
            label = self.engine.mean_vote([s], [list(labels)])[0]
            mean = s.mean(axis=0)
            if not np.isfinite(mean).all():
                raise APIError(500, "the model gave non-finite scores")
            results.append({"label": label,
                            "scores": {lab: float(v) for lab, v in zip(labels, mean)}})
        return {"task": task, "results": results, "prompt_sha256": _shas(task, scored[0]),
                "usage": _usage(ids, len(names), 0)}

    async def complete(self, model: str, prompts: Sequence[str], max_tokens: int):
        """OpenAI completions: greedy decoding of each prompt under task `model`.

        Returns ``(decoded rows, usage)``.
        """
        names, _ = self._tasks(model, param="model")
        self._check_new_tokens(max_tokens, "max_tokens")
        ids = await self._encode(prompts, 1, param="prompt")
        decoded = await self._decode(names, ids, max_tokens)
        rows = [row[0] for row in decoded]
        return rows, _usage(ids, 1, sum(d.tokens for d in rows))

    # ------------------------------------------------------------------ checks
    def _tasks(self, task, param: str = "task"):
        names = [task] if isinstance(task, str) else list(task)
        if not names:
            raise APIError(422, "'task' is an empty list: name at least one task", param)
        if len(set(names)) != len(names):
            raise APIError(422, "'task' names a task twice", param)
        table = self.registry.current()
        for name in names:
            if name not in table:
                served = ", ".join(table.names[:20]) + (", ..." if len(table) > 20 else "")
                raise APIError(404, f"unknown task {name!r} (served: {served or 'none'})",
                               param)
        return names, [table[n] for n in names]

    def _check_new_tokens(self, value: int, param: str) -> None:
        limit = self.engine.max_new_tokens_limit
        if not 1 <= value <= limit:
            raise APIError(422, f"{param} must be in 1..{limit} (the server's "
                                f"--max-new-tokens-limit), got {value}", param)

    async def _labels(self, names, entries, labels) -> tuple[str, ...]:
        if labels is None:
            own = [tuple(e.labels or ()) for e in entries]
            if not own[0]:
                raise APIError(422, f"task {names[0]!r} records no labels: give 'labels'",
                               "labels")
            if any(x != own[0] for x in own):
                raise APIError(422, "the tasks have different labels: give 'labels'", "labels")
            return own[0]
        if not labels:
            raise APIError(422, "'labels' is empty", "labels")
        if len(labels) > MAX_LABELS:
            raise APIError(422, f"at most {MAX_LABELS} labels, got {len(labels)}", "labels")
        for i, label in enumerate(labels):
            if not label.strip():
                raise APIError(422, f"label {i} is empty", f"labels.{i}")
            _check_text(label, f"labels.{i}")
        if len(set(labels)) != len(labels):
            raise APIError(422, "a label is given twice", "labels")
        limit = self.engine.max_new_tokens_limit
        for i, row in enumerate(await asyncio.to_thread(self.engine.encode, list(labels))):
            if len(row) > limit:
                raise APIError(422, f"label {i} is {len(row)} tokens; at most {limit}",
                               f"labels.{i}")
        return tuple(labels)

    async def _encode(self, inputs: Sequence[str], members: int, param: str = "inputs"):
        if not inputs:
            raise APIError(422, f"'{param}' is empty: give at least one input", param)
        rows = len(inputs) * members
        if rows > self.batcher.max_queue:
            raise APIError(422, f"the request has {rows} rows (inputs x tasks); the server "
                                f"queues at most {self.batcher.max_queue}", param)
        for i, text in enumerate(inputs):
            if not text.strip():
                raise APIError(422, f"input {i} is empty", f"{param}.{i}")
            _check_text(text, f"{param}.{i}")
        ids = await asyncio.to_thread(self.engine.encode, list(inputs))
        limit = self.engine.max_input_length
        for i, row in enumerate(ids):
            if len(row) > limit:
                raise APIError(422, f"input {i} is over {limit} tokens (the server's "
                                    "--max-input-length)", f"{param}.{i}")
        return ids

    # ------------------------------------------------------------------ rows
    async def _decode(self, names, ids, max_new_tokens: int):
        """``[input][task]`` `Decoded` rows."""
        length = self.engine.decode_length(max_new_tokens)
        rows = [(("decode", self.engine.width(len(x)), length), name,
                 DecodeRow(name, x, max_new_tokens)) for x in ids for name in names]
        flat = await self._run(rows)
        k = len(names)
        return [flat[i * k:(i + 1) * k] for i in range(len(ids))]

    async def _rank(self, names, ids, labels):
        """``[input][task]`` `Scored` rows."""
        rows = [(("rank", self.engine.width(len(x)), len(lab)), name, RankRow(name, x, lab))
                for x, lab in zip(ids, labels) for name in names]
        flat = await self._run(rows)
        k = len(names)
        return [flat[i * k:(i + 1) * k] for i in range(len(ids))]

    async def _run(self, rows) -> list:
        try:
            futures = self.batcher.submit(rows)
        except QueueFull as err:
            raise APIError(429, str(err)) from None
        except Closed as err:
            raise APIError(503, str(err)) from None
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, QueueTimeout):
                raise APIError(504, f"the request {result}")
            if isinstance(result, TaskGone):
                raise APIError(404, str(result), "task")
            if isinstance(result, BaseException):
                logger.error("a request failed: %s: %s", type(result).__name__, result)
                raise APIError(500, f"the model failed on this request "
                                    f"({type(result).__name__})")
        return results



def _shas(task, row):
    """The prompt files one input ran with: a SHA-256, or one per ensemble member."""
    shas = [x.prompt_sha256 for x in row]
    return shas[0] if isinstance(task, str) else shas


def _check_text(text: str, param: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(400, f"{param} is not valid Unicode text (a lone surrogate)",
                       param) from None


def _usage(ids, members: int, completion: int) -> dict:
    prompt = sum(len(x) for x in ids) * members
    return {"prompt_tokens": prompt, "completion_tokens": int(completion),
            "total_tokens": prompt + int(completion)}
