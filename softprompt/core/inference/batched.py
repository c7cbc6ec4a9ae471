"""The one batched inference path: texts or token ids in, decoded strings or candidate scores out.

Inputs are tokenized once (``</s>``-terminated, cut to `max_input_length`),
grouped by length into buckets (powers of two, as in training:
`softprompt.core.text.batching.bucket_lengths`), and run bucket by bucket through
the compiled kernels of `softprompt.core.inference.decoding`: `greedy_tokens`
(greedy decoding with the key/value cache) or `score_tokens` (the log-likelihood
of each candidate target: rank classification). A compiled backend therefore
sees a few fixed shapes, whoever calls.

Each example picks its prompt with `prompt_ids` (default: prompt 0), so
examples for different prompts share batches (the paper's multi-task serving).
With ``replicas=R`` every input runs under prompts ``0..R-1`` of the model in
the same batch: an ensemble in one pass.

`softprompt.generate` and `softprompt.score`, evaluation, ensembles, request
prediction and serving all call these functions.

Example:
    >>> generate(model, ["review: a fine film"], prompt_ids=[1], max_length=4)
    ['good']
    >>> score(model, ["review: a fine film"], ["good", "bad"])   # (1, 2) log-likelihoods
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from softprompt.core.inference import decoding
from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import bucket_lengths, inference_plan, pad

#: The longest bucket when no `max_input_length` is given (the paper's input length).
DEFAULT_BUCKET_LIMIT = 512


def tokenize_inputs(model, texts: Sequence[str],
                    max_input_length: int | None = None) -> list[list[int]]:
    """``</s>``-terminated encoder ids of `texts`, cut to `max_input_length` (None: not cut)."""
    return tok.tokenize(model.tokenizer, list(texts), add_eos=True, max_length=max_input_length)


def candidate_lists(candidates, count: int) -> list[list[str]]:
    """One candidate list per input from one shared list or one list per input.

    Example:
        >>> candidate_lists(["yes", "no"], 2)
        [['yes', 'no'], ['yes', 'no']]
    """
    if candidates and isinstance(candidates[0], str):
        lists = [list(candidates)] * count
    else:
        lists = [list(c) for c in candidates]
    if len(lists) != count:
        raise ValueError(f"got {len(lists)} candidate lists for {count} inputs")
    for i, c in enumerate(lists):
        if not c:
            raise ValueError(f"input {i} has no candidates to rank")
    return lists


def _plan(inputs, batch_size: int, max_input_length: int | None):
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    longest = max((len(r) for r in inputs), default=1)
    buckets = bucket_lengths(max(max_input_length or DEFAULT_BUCKET_LIMIT, longest))
    return inference_plan([len(r) for r in inputs], batch_size, buckets)


def _replicate(ids, mask, prompt_ids, replicas: int):
    """Repeat each row `replicas` times with prompt ids ``0..R-1`` (or the given ids)."""
    if replicas == 1:
        return ids, mask, prompt_ids
    if prompt_ids is not None:
        raise ValueError("prompt_ids and replicas > 1 cannot be combined")
    rows = ids.shape[0]
    pids = np.tile(np.arange(replicas, dtype=np.int32), rows)
    return np.repeat(ids, replicas, axis=0), np.repeat(mask, replicas, axis=0), pids


def generate_ids(model, inputs: Sequence[Sequence[int]], prompt_ids=None, *, max_length,
                 batch_size: int = 32, max_input_length: int | None = None,
                 replicas: int = 1) -> list[list[str]]:
    """Greedy-decode token-id inputs; returns ``[input][replica]`` strings.

    Inputs are padded to their length bucket; `batch_size` counts inputs, so
    a batch holds ``batch_size * replicas`` rows. `max_length` is one number
    or one per input (a batch decodes to its longest and cuts each row to its
    own, so mixed batches give what separate runs give).
    """
    inputs = [list(r) for r in inputs]
    pids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    lengths = np.broadcast_to(np.asarray(max_length, np.int64), (len(inputs),))
    out: list[list[str]] = [[] for _ in inputs]
    for width, idx in _plan(inputs, batch_size, max_input_length):
        ids, mask = pad([inputs[i] for i in idx], width)
        pids = None if pids_all is None else pids_all[idx]
        ids, mask, pids = _replicate(ids, mask, pids, replicas)
        tokens = decoding.greedy_tokens(model, ids, mask, pids,
                                        max_length=int(lengths[idx].max()))
        cut = np.repeat(lengths[idx], replicas)
        tokens = [row[: int(n)] for row, n in zip(tokens, cut)]
        texts = tok.detokenize(model.tokenizer, tokens)
        for j, i in enumerate(idx):
            out[i] = texts[j * replicas : (j + 1) * replicas]
    return out


def score_ids(model, inputs: Sequence[Sequence[int]], candidates: Sequence[Sequence[str]],
              prompt_ids=None, *, batch_size: int = 32, max_input_length: int | None = None,
              replicas: int = 1) -> list[np.ndarray]:
    """Log-likelihood of each candidate per token-id input: ``[input] -> (replicas, C_i)``.

    `candidates` is one list of strings per input (sizes may differ). Inputs
    with the same number of candidates share batches (one decoder pass scores
    all candidates of a batch).
    """
    inputs = [list(r) for r in inputs]
    candidates = candidate_lists(candidates, len(inputs))
    pids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    cand_ids = [tok.tokenize(model.tokenizer, c, add_eos=True) for c in candidates]
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
            scores = decoding.score_tokens(model, ids, mask, cands, pids)
            for j, i in enumerate(idx):
                out[i] = scores[j * replicas : (j + 1) * replicas]
    return out


def generate(model, texts: Sequence[str], prompt_ids=None, *, max_length=32,
             batch_size: int = 32, max_input_length: int | None = None) -> list[str]:
    """Greedy-decode each text under its prompt (`prompt_ids`); returns one string per text.

    Example:
        >>> generate(model, ["passage: ... question: ..."], max_length=4)
        ['True']
    """
    inputs = tokenize_inputs(model, texts, max_input_length)
    rows = generate_ids(model, inputs, prompt_ids, max_length=max_length,
                        batch_size=batch_size, max_input_length=max_input_length)
    return [r[0] for r in rows]


def score(model, texts: Sequence[str], candidates, prompt_ids=None, *, batch_size: int = 32,
          max_input_length: int | None = None) -> np.ndarray:
    """Rank classification: the log-likelihood of each candidate string for each text.

    `candidates` is one list of strings shared by all texts (e.g. the task's
    labels) or one list per text, all of the same size (`score_ids` takes
    lists of different sizes). Returns a float64 array ``(len(texts),
    num_candidates)``; ``argmax`` picks the prediction.

    Example:
        >>> scores = score(model, ["hypothesis: ... premise: ..."],
        ...                ["entailment", "not_entailment"])
        >>> labels[scores.argmax(-1)[0]]
    """
    texts = list(texts)
    lists = candidate_lists(candidates, len(texts))
    if len({len(c) for c in lists}) > 1:
        raise ValueError("every text must have the same number of candidates "
                         "(score_ids scores lists of different sizes)")
    rows = score_ids(model, tokenize_inputs(model, texts, max_input_length), lists, prompt_ids,
                     batch_size=batch_size, max_input_length=max_input_length)
    if not rows:
        return np.zeros((0, 0))
    return np.stack([r[0] for r in rows]).astype(np.float64)
