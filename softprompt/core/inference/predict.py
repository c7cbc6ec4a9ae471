"""Multi-task serving in one call: requests for different prompts share batches.

One frozen model holds every prompt (`PromptedT5.with_prompts`); each request
gets the ``prompt_ids`` of its prompt, so a batch mixes tasks freely — the
paper's argument for prompt tuning at serving time.

A request is a dict: ``{"prompt": NAME, "text": ...}`` (the model input as
is), or ``{"prompt": NAME, <task fields>}`` formatted by the request's
``"task"`` or else the task recorded in the prompt's sidecar. Rank
classification scores the request's ``"candidates"`` or else the task's.

Example:
    >>> results = predict_requests({"boolq": "boolq.npy", "rte": "rte.npy"},
    ...                            [("line 1", {"prompt": "rte", "premise": ..., "hypothesis": ...})])
    >>> results[0]["prediction"]
    'entailment'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from softprompt import tasks
from softprompt.core.inference import evaluate as ev
from softprompt.core.inference.methods import check_method
from softprompt.core.inference.prompts import model_for_prompts


def _task_for(record: dict, meta: dict, cache: dict, where: str):
    name = record.get("task") or meta.get("task")
    if not name:
        return None
    if not isinstance(name, str):
        raise ValueError(f"{where}: field 'task' must be a task name, found {name!r:.40}")
    args = dict(meta.get("task_args") or {}) if name == meta.get("task") else {}
    key = (name, repr(sorted(args.items())))
    if key not in cache:
        try:
            cache[key] = tasks.get(name, **args)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return cache[key]


def predict_requests(files: Mapping[str, str], requests: Sequence[tuple[str, dict]],
                     method: str = "decode", *, batch_size: int = 32, preset: str | None = None,
                     allow_mismatch: bool = False, max_input_length: int = 512,
                     max_target_length: int | None = None) -> list[dict]:
    """Answer `requests` (``(where, record)`` pairs) with the named prompt files.

    Returns one dict per request: the request's fields plus ``prediction``
    (postprocessed by the task when there is one) and, with ``method="rank"``,
    ``scores`` (log-likelihood per candidate).

    Raises:
        ValueError: a request names no or an unknown prompt, lacks a field its
            task needs, or has no candidates for rank classification.
    """
    check_method(method)
    names = list(files)
    for where, record in requests:  # cheap checks before the model loads
        _prompt_name(record, where, names)
    model, _, metas = model_for_prompts([files[n] for n in names], preset, allow_mismatch)
    return answer(model, names, metas, requests, method, batch_size=batch_size,
                  max_input_length=max_input_length, max_target_length=max_target_length)


def answer(model, names: Sequence[str], metas: Sequence[dict],
           requests: Sequence[tuple[str, dict]], method: str = "decode", *,
           batch_size: int = 32, max_input_length: int = 512,
           max_target_length: int | None = None) -> list[dict]:
    """`predict_requests` over a model already in memory (the serving path).

    `model` holds prompt ``i`` for ``names[i]`` (`PromptedT5.with_prompts`);
    `metas` are their sidecars (task, labels, lengths). Nothing is loaded.
    """
    inputs, pids, candidates, lengths, used_tasks = prepare(
        names, metas, requests, method, model.tokenizer, max_target_length)
    preds = ev.predict_inputs(
        model, inputs, method, prompt_ids=pids,
        candidates=candidates if method == "rank" else None, batch_size=batch_size,
        max_input_length=max_input_length, max_target_length=lengths,
    )
    results = []
    for i, (_, record) in enumerate(requests):
        raw = preds.texts[i][0]
        task = used_tasks[i]
        out = dict(record)
        out["prediction"] = task.postprocess(raw, record) if task is not None else raw.strip()
        if method == "rank":
            out["scores"] = {c: float(s) for c, s in zip(candidates[i], preds.scores[i][0])}
        results.append(out)
    return results


def prepare(names: Sequence[str], metas: Sequence[dict], requests: Sequence[tuple[str, dict]],
            method: str = "decode", tokenizer=None, max_target_length: int | None = None):
    """Check and format `requests` before any model runs (`answer`'s first half).

    Returns ``(inputs, prompt_ids, candidates, target_lengths, tasks)``, one entry per
    request; raises a `ValueError` starting with the request's ``where`` for a request
    that names no or an unknown prompt, lacks a field its task needs, or gives no
    usable candidates. `tokenizer` is needed only to size the targets of a task when
    neither `max_target_length` nor the prompt's sidecar gives a length.
    """
    check_method(method)
    names = list(names)
    cache: dict = {}
    inputs, pids, candidates, lengths, used_tasks = [], [], [], [], []
    for where, record in requests:
        name = _prompt_name(record, where, names)
        pid = names.index(name)
        meta = metas[pid]
        task = None if "text" in record and "task" not in record else _task_for(record, meta,
                                                                              cache, where)
        if "text" in record:
            text = record["text"]
            if not isinstance(text, str):
                raise ValueError(f"{where}: field 'text' must be a string, found "
                                 f"{type(text).__name__}")
        elif task is None:
            raise ValueError(
                f"{where}: no 'text' field, and neither the request nor prompt {name!r} "
                "names a task to format its fields"
            )
        else:
            try:
                text = task.format(record)[0]
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
        cands = record.get("candidates")
        if method == "rank" and cands is None:
            cands = task.candidates(record) if task is not None else meta.get("labels")
            if not cands:
                raise ValueError(
                    f"{where}: rank classification needs candidates: give 'candidates' "
                    "or use a prompt whose task has labels"
                )
        if cands is not None and (not isinstance(cands, list) or not cands
                                  or not all(isinstance(c, str) for c in cands)):
            raise ValueError(f"{where}: 'candidates' must be a non-empty list of strings")
        length = max_target_length or meta.get("max_target_length")
        if length is None:
            length = (ev.target_length(tokenizer, task) if task is not None
                      else ev.DEFAULT_TARGET_LENGTH)
        inputs.append(text)
        pids.append(pid)
        candidates.append([str(c) for c in cands] if cands is not None else None)
        lengths.append(int(length))
        used_tasks.append(task)
    return inputs, pids, candidates, lengths, used_tasks


def _prompt_name(record: dict, where: str, names: Sequence[str]) -> str:
    """The prompt a request names (the only one, when it names none)."""
    name = record.get("prompt")
    if name is None:
        if len(names) != 1:
            raise ValueError(f"{where}: missing field 'prompt' (one of {', '.join(names)})")
        return names[0]
    if name not in names:
        raise ValueError(f"{where}: unknown prompt {name!r} (loaded: {', '.join(names)})")
    return name
