"""Inference over examples: greedy decoding or rank classification, batched by length.

Every function here takes token-id inputs grouped into length buckets (the
same fixed widths as training, `softprompt.core.text.batching`) and an optional
per-example ``prompt_ids``, so examples for different prompts share batches
(the paper's multi-task serving). With ``replicas=R`` every input runs under
prompts ``0..R-1`` of the model in the same batch: an ensemble in one pass.

Example:
    >>> metrics, predictions = evaluate(model, tasks.get("boolq"), dev_examples)
    >>> decode_texts(model, ["review: fine"], prompt_ids=[1], max_length=4)
    ['good']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import bucket_lengths, inference_plan, pad

METHODS = ("decode", "rank")
#: Decoding length when nothing tells us how long targets are.
DEFAULT_TARGET_LENGTH = 32


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected decode or rank")
    return method


def encode_inputs(model, texts: Sequence[str], max_input_length: int) -> list[list[int]]:
    """``</s>``-terminated encoder ids of `texts`, cut to `max_input_length`."""
    return tok.encode(model.tokenizer, list(texts), add_eos=True, max_length=max_input_length)


def _plan(inputs, batch_size, max_input_length):
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    buckets = bucket_lengths(max(max_input_length, max((len(r) for r in inputs), default=1)))
    return inference_plan([len(r) for r in inputs], batch_size, buckets)


def _replicate(ids, mask, prompt_ids, replicas):
    """Repeat each row `replicas` times with prompt ids ``0..R-1`` (or the given ids)."""
    if replicas == 1:
        return ids, mask, prompt_ids
    if prompt_ids is not None:
        raise ValueError("prompt_ids and replicas > 1 cannot be combined")
    rows = ids.shape[0]
    pids = np.tile(np.arange(replicas, dtype=np.int32), rows)
    return np.repeat(ids, replicas, axis=0), np.repeat(mask, replicas, axis=0), pids


def decode_ids(model, inputs: Sequence[Sequence[int]], prompt_ids=None, *, max_length,
               batch_size: int = 32, max_input_length: int = 512,
               replicas: int = 1) -> list[list[str]]:
    """Greedy-decode each input; returns ``[input][replica]`` strings.

    Inputs are padded to their length bucket; `batch_size` counts inputs, so
    a batch holds ``batch_size * replicas`` rows. `max_length` is one number
    or one per input (a batch decodes to its longest and cuts each row to its
    own, so mixed batches give what separate runs give).
    """
    from softprompt.core.inference.decoding import greedy_tokens

    inputs = [list(r) for r in inputs]
    pids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    lengths = np.broadcast_to(np.asarray(max_length, np.int64), (len(inputs),))
    out: list[list[str]] = [[] for _ in inputs]
    for width, idx in _plan(inputs, batch_size, max_input_length):
        ids, mask = pad([inputs[i] for i in idx], width)
        pids = None if pids_all is None else pids_all[idx]
        ids, mask, pids = _replicate(ids, mask, pids, replicas)
        tokens = greedy_tokens(model, ids, mask, pids, max_length=int(lengths[idx].max()))
        cut = np.repeat(lengths[idx], replicas)
        tokens = [row[: int(n)] for row, n in zip(tokens, cut)]
        texts = tok.decode(model.tokenizer, tokens)
        for j, i in enumerate(idx):
            out[i] = texts[j * replicas : (j + 1) * replicas]
    return out


def rank_ids(model, inputs: Sequence[Sequence[int]], candidates: Sequence[Sequence[str]],
             prompt_ids=None, *, batch_size: int = 32, max_input_length: int = 512,
             replicas: int = 1) -> list[np.ndarray]:
    """Log-likelihood of each candidate per input; returns ``[input] -> (replicas, C_i)``.

    Inputs with the same number of candidates share batches (one decoder
    pass scores all candidates of a batch).
    """
    from softprompt.core.inference.decoding import score_tokens

    inputs = [list(r) for r in inputs]
    if len(candidates) != len(inputs):
        raise ValueError(f"got {len(candidates)} candidate lists for {len(inputs)} inputs")
    for i, c in enumerate(candidates):
        if not c:
            raise ValueError(f"input {i} has no candidates to rank")
    pids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    cand_ids = [tok.encode(model.tokenizer, list(c), add_eos=True) for c in candidates]
    out: list[np.ndarray] = [np.zeros((0, 0))] * len(inputs)
    by_count: dict[int, list[int]] = {}
    for i, c in enumerate(candidates):
        by_count.setdefault(len(c), []).append(i)
    for members in by_count.values():
        sub = [inputs[i] for i in members]
        for width, local in _plan(sub, batch_size, max_input_length):
            idx = np.asarray(members)[local]
            ids, mask = pad([inputs[i] for i in idx], width)
            pids = None if pids_all is None else pids_all[idx]
            ids, mask, pids = _replicate(ids, mask, pids, replicas)
            cands = [cand_ids[i] for i in idx for _ in range(replicas)]
            scores = score_tokens(model, ids, mask, cands, pids)
            for j, i in enumerate(idx):
                out[i] = scores[j * replicas : (j + 1) * replicas]
    return out


def decode_texts(model, texts: Sequence[str], prompt_ids=None, *, max_length: int,
                 batch_size: int = 32, max_input_length: int = 512) -> list[str]:
    """Greedy-decode texts (one prompt each, by `prompt_ids`); returns one string per text."""
    inputs = encode_inputs(model, texts, max_input_length)
    rows = decode_ids(model, inputs, prompt_ids, max_length=max_length, batch_size=batch_size,
                      max_input_length=max_input_length)
    return [r[0] for r in rows]


def rank_texts(model, texts: Sequence[str], candidates, prompt_ids=None, *,
               batch_size: int = 32, max_input_length: int = 512) -> list[np.ndarray]:
    """Rank classification of texts; `candidates` is one shared list or one list per text.

    Returns one float64 array of candidate log-likelihoods per text.
    """
    texts = list(texts)
    if candidates and isinstance(candidates[0], str):
        candidates = [list(candidates)] * len(texts)
    inputs = encode_inputs(model, texts, max_input_length)
    rows = rank_ids(model, inputs, candidates, prompt_ids, batch_size=batch_size,
                    max_input_length=max_input_length)
    return [r[0] for r in rows]


# ---------------------------------------------------------------------- tasks


def task_candidates(task, examples) -> list[list[str]]:
    """The candidates rank classification scores for each example of `task`."""
    out = []
    for i, ex in enumerate(examples):
        cands = task.candidates(ex)
        if not cands:
            raise ValueError(
                f"task {task.name!r} has free-form targets (example {i} has no candidates): "
                "rank classification needs candidates; use the decode method"
            )
        out.append(list(cands))
    return out


def target_length(tokenizer, task, examples=()) -> int:
    """How many tokens to decode for `task`: its longest label or gold target, ``</s>`` included."""
    texts = list(task.labels or [])
    for ex in examples:
        target = task.format(ex)[1]
        if target:
            texts.append(target)
    if not texts:
        return DEFAULT_TARGET_LENGTH
    return max(len(r) for r in tok.encode(tokenizer, texts, add_eos=True))


@dataclasses.dataclass
class Predictions:
    """What a model said for each example.

    Attributes:
        texts: ``[example][replica]`` raw strings: decoded text, or with rank
            classification the best candidate.
        scores: with rank classification, ``[example] -> (replicas, C)``
            log-likelihoods of the candidates; else `None`.
        candidates: with rank classification, the candidate strings per example.
    """

    texts: list[list[str]]
    scores: list[np.ndarray] | None = None
    candidates: list[list[str]] | None = None

    def replica(self, r: int = 0) -> list[str]:
        return [t[r] for t in self.texts]


def predict_inputs(model, inputs: Sequence[str], method: str = "decode", *,
                   prompt_ids=None, candidates=None, replicas: int = 1, batch_size: int = 32,
                   max_input_length: int = 512,
                   max_target_length=DEFAULT_TARGET_LENGTH) -> Predictions:
    """Run formatted input strings through the model with decode or rank classification.

    `prompt_ids` picks each input's prompt (mixed prompts share batches);
    `candidates` (rank) is one list per input; `max_target_length` is one
    number or one per input.
    """
    check_method(method)
    ids = encode_inputs(model, inputs, max_input_length)
    if method == "decode":
        texts = decode_ids(model, ids, prompt_ids, max_length=max_target_length,
                           batch_size=batch_size, max_input_length=max_input_length,
                           replicas=replicas)
        return Predictions(texts)
    if candidates is None:
        raise ValueError("rank classification needs candidates")
    scores = rank_ids(model, ids, candidates, prompt_ids, batch_size=batch_size,
                      max_input_length=max_input_length, replicas=replicas)
    texts = [[cands[int(k)] for k in s.argmax(-1)] for cands, s in zip(candidates, scores)]
    return Predictions(texts, scores, [list(c) for c in candidates])


def predict(model, task, examples, method: str = "decode", *, batch_size: int = 32,
            max_input_length: int = 512, max_target_length: int | None = None,
            replicas: int = 1, prompt_ids=None) -> Predictions:
    """Format `examples` with `task` and predict them (see `predict_inputs`)."""
    examples = list(examples)
    check_method(method)
    inputs = [task.format(ex)[0] for ex in examples]
    candidates = task_candidates(task, examples) if method == "rank" else None
    if max_target_length is None:
        max_target_length = target_length(model.tokenizer, task, examples)
    return predict_inputs(model, inputs, method, prompt_ids=prompt_ids, candidates=candidates,
                          replicas=replicas, batch_size=batch_size,
                          max_input_length=max_input_length, max_target_length=max_target_length)


def evaluate(model, task, examples, method: str = "decode", *, batch_size: int = 32,
             max_input_length: int = 512,
             max_target_length: int | None = None) -> tuple[dict[str, float], list[str]]:
    """The task's metrics for the model's predictions on `examples`.

    Returns ``(metrics, predictions)``; predictions are the raw strings the
    task's `evaluate` scored.

    Example:
        >>> metrics, _ = evaluate(model, tasks.get("rte"), dev, method="rank")
        >>> metrics["accuracy"]
    """
    preds = predict(model, task, examples, method, batch_size=batch_size,
                    max_input_length=max_input_length, max_target_length=max_target_length)
    texts = preds.replica(0)
    return task.evaluate(examples, texts), texts


# ---------------------------------------------------------------------- prompts → model


def model_for_prompts(prompts: Sequence, preset: str | None = None,
                      allow_mismatch: bool = False):
    """The frozen model the prompt files were trained on, holding those prompts.

    Args:
        prompts: prompt file paths (their sidecars name the model).
        preset: use this model instead of the one the sidecars name (needed
            for files without a sidecar, e.g. the official implementation's).
        allow_mismatch: accept a model whose embedding fingerprint differs
            from the one a sidecar records (a warning instead of an error).

    Returns:
        ``(model, arrays, metadata)``: a `PromptedT5` whose prompt ``i`` is
        file ``i`` (``prompt_ids`` select them), the ``(P, d)`` arrays and
        the sidecars.

    Raises:
        ValueError: no model can be determined, the sidecars name different
            models, or a prompt does not fit the model.
    """
    import warnings

    from softprompt.core.io.prompt_files import load_prompt

    if not prompts:
        raise ValueError("no prompt files given")
    arrays, metas = [], []
    for path in prompts:
        array, meta = load_prompt(path)
        if array.ndim == 3:
            if array.shape[0] != 1:
                raise ValueError(
                    f"prompt file {path} holds {array.shape[0]} prompts; give one prompt per file"
                )
            array = array[0]
        arrays.append(array)
        metas.append(meta)
    named = {str(m.get("backbone", {}).get("preset")) for m in metas
             if m.get("backbone", {}).get("preset")}
    if preset is None:
        missing = [str(p) for p, m in zip(prompts, metas) if not m.get("backbone", {}).get("preset")]
        if missing:
            raise ValueError(
                f"prompt file {missing[0]} has no sidecar naming its model: pass --preset"
            )
        if len(named) > 1:
            raise ValueError(
                f"the prompts were trained on different models ({', '.join(sorted(named))}): "
                "pass --preset to choose one"
            )
        preset = named.pop()
    from softprompt.core.model.prompted_t5 import (
        PromptedT5,  # keras loads here, after the cheap checks
    )

    model = PromptedT5.from_preset(preset, prompt_length=arrays[0].shape[0], init="uniform",
                                   seed=0)
    ours = model.identity()["embedding_fingerprint"]
    for path, array, meta in zip(prompts, arrays, metas):
        model.check_compatible(array, {}, f"prompt file {path}")
        backbone = meta.get("backbone", {})
        theirs = backbone.get("embedding_fingerprint")
        if theirs and theirs != ours:
            message = (
                f"prompt file {path} was trained on model {backbone.get('preset')!r} "
                f"(fingerprint {theirs}), but {preset!r} is another model (fingerprint {ours})"
            )
            if not allow_mismatch:
                raise ValueError(message + "; pass --allow-mismatch to use it anyway")
            warnings.warn(message, stacklevel=2)
    if len(arrays) == 1:
        model.prompt.embeddings.assign(arrays[0][None].astype(np.float32))
        return model, arrays, metas
    return model.with_prompts(arrays), arrays, metas
