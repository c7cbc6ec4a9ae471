"""Hypothesis strategies for agreement cases.

A *case* is a plain dict: the model spec (`modelspec.model_spec`), the prompt
values ``(N, P, d)``, and one batch (token ids, padding masks, labels,
``prompt_ids``). The same case goes to every backend's worker.

Shapes versus contents. Under JAX every new combination of array shapes is
compiled anew (a jitted train step, or each eagerly executed primitive), which
costs seconds; the contents of the arrays cost nothing extra. So the ``ci``
profile draws the *shape* of a case from `SHAPE_CLASSES` (every edge of the
ranges appears: batch 1 and 4, encoder width 1 and 24, target width 1 and 6,
prompt length 1 and 20, one and three prompts; three model sizes) and draws
everything else freely: the real input length of each row (0 to the width,
so every length 1-24 and the fully padded row occur), the padding pattern
(right, left, scattered, none, all), token ids (also under the mask), real
target lengths (1 to the width, right padded), ``prompt_ids``, prompt values,
backbone seeds, both T5 styles. The ``thorough`` profile draws every size
freely as well (slower; for local runs).

Fully padded rows: the P prompt positions are always unmasked, so a row with
no real input token attends to the prompt alone and is well defined. The
strategies produce such rows on purpose.

Example:
    >>> from hypothesis import given
    >>> @given(case=cases())
    ... def test_something(case): ...
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import strategies as st

from . import modelspec

VOCAB = 64
SEEDS = (0, 1, 2)  # backbone seeds (weights are values: no new compile per seed)
MAX_BATCH, MAX_INPUT, MAX_TARGET, MAX_PROMPT, MAX_PROMPTS = 4, 24, 6, 20, 3
GREEDY_LENGTH = 6

#: (batch, encoder width, target width, prompt length, num_prompts, size)
SHAPE_CLASSES = (
    (1, 1, 1, 1, 1, "test"),        # every dimension at its minimum
    (4, 24, 6, 20, 3, "test"),      # every dimension at its maximum
    (2, 9, 3, 5, 2, "wide1"),       # one layer, four heads
    (3, 24, 1, 13, 1, "test"),      # single-token targets, long inputs
    (4, 6, 6, 1, 3, "wide1"),       # one-vector prompts, many prompts
    (2, 16, 4, 8, 2, "tiny"),       # d = 64
)


def profile_name() -> str:
    return os.environ.get("SOFTPROMPT_AGREEMENT_PROFILE", "ci")


@st.composite
def shapes(draw):
    """``(batch, enc_width, target_width, prompt_length, num_prompts, size)``."""
    if profile_name() != "thorough":
        return draw(st.sampled_from(SHAPE_CLASSES))
    return (
        draw(st.integers(1, MAX_BATCH)),
        draw(st.integers(1, MAX_INPUT)),
        draw(st.integers(1, MAX_TARGET)),
        draw(st.integers(1, MAX_PROMPT)),
        draw(st.integers(1, MAX_PROMPTS)),
        draw(st.sampled_from(tuple(modelspec.SIZES))),
    )


PATTERNS = ("right", "left", "scattered", "none", "all")


@st.composite
def padding_mask(draw, batch, width):
    """An int32 ``(batch, width)`` mask; each row has its own pattern and real length."""
    mask = np.zeros((batch, width), np.int32)
    for i in range(batch):
        pattern = draw(st.sampled_from(PATTERNS))
        if pattern == "all":  # a fully padded row (no real token)
            continue
        if pattern == "none":
            mask[i] = 1
            continue
        n = draw(st.integers(0, width))
        if pattern == "right":
            mask[i, :n] = 1
        elif pattern == "left":
            mask[i, width - n:] = 1
        else:
            bits = draw(st.lists(st.booleans(), min_size=width, max_size=width))
            mask[i] = np.asarray(bits, np.int32)
    return mask


#: How the prompt values are drawn. "uniform" is the paper's U[-0.5, 0.5];
#: "vocab" copies rows of the token embedding matrix (as ``sampled-vocab``
#: does); "small" is U[-0.05, 0.05]. Small prompts make training stiff:
#: T5's first RMS norm divides each prompt vector by its own norm, so the
#: loss curvature in the prompt grows like 1 / |p|^2 and a few optimizer
#: steps amplify float32 rounding by orders of magnitude (see README). The
#: training properties therefore draw "uniform" and "vocab" only.
PROMPT_KINDS = ("uniform", "vocab", "small")
TRAIN_PROMPT_KINDS = ("uniform", "vocab")


def prompt_values(spec, kind, rng) -> np.ndarray:
    n, p, d = spec["num_prompts"], spec["prompt_length"], modelspec.hidden_dim(spec)
    if kind == "uniform":
        return rng.uniform(-0.5, 0.5, (n, p, d)).astype(np.float32)
    if kind == "small":
        return rng.uniform(-0.05, 0.05, (n, p, d)).astype(np.float32)
    emb = modelspec.embedding_matrix(spec)
    return emb[rng.integers(2, spec["vocab"], (n, p))].astype(np.float32)


@st.composite
def cases(draw, min_prompts=1, styles=modelspec.STYLES, prompt_kinds=PROMPT_KINDS):
    """One batch for one prompted model (see the module docstring)."""
    batch, width, target, plen, nprompts, size = draw(shapes())
    nprompts = max(nprompts, min_prompts)
    style = draw(st.sampled_from(styles))
    seed = draw(st.sampled_from(SEEDS))
    spec = modelspec.model_spec(size, style, VOCAB, seed, plen, nprompts)
    values_seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(values_seed)
    prompt_kind = draw(st.sampled_from(prompt_kinds))
    prompt = prompt_values(spec, prompt_kind, rng)

    enc_mask = draw(padding_mask(batch, width))
    enc_ids = rng.integers(2, VOCAB, (batch, width)).astype(np.int32)
    # Most rows end with </s> at their last real position, as tokenized text does.
    for i in range(batch):
        real = np.flatnonzero(enc_mask[i])
        if real.size and rng.random() < 0.8:
            enc_ids[i, real[-1]] = modelspec.EOS_ID

    lengths = [draw(st.integers(1, target)) for _ in range(batch)]
    labels = np.zeros((batch, target), np.int32)
    dec_mask = np.zeros((batch, target), np.int32)
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(2, VOCAB, n)
        labels[i, n - 1] = modelspec.EOS_ID
        dec_mask[i, :n] = 1
    dec_ids = np.zeros_like(labels)  # teacher forcing: start token (pad) + labels shifted
    dec_ids[:, 1:] = labels[:, :-1]

    prompt_ids = np.asarray(
        draw(st.lists(st.integers(0, nprompts - 1), min_size=batch, max_size=batch)), np.int32
    )
    return {
        "model": spec,
        "prompt": prompt,
        "encoder_token_ids": enc_ids,
        "encoder_padding_mask": enc_mask,
        "decoder_token_ids": dec_ids,
        "decoder_padding_mask": dec_mask,
        "labels": labels,
        "prompt_ids": prompt_ids,
        "values_seed": values_seed,
        "prompt_kind": prompt_kind,
    }


@st.composite
def candidate_sets(draw, case):
    """Rank-classification candidates: ``[batch][num]`` id lists ending in ``</s>``.

    In the ``ci`` profile the number of candidates and the longest candidate
    follow the case's shape class (each shape class keeps one decoder shape);
    the other candidates' lengths and ids are free.
    """
    batch, target = case["labels"].shape
    thorough = profile_name() == "thorough"
    num = draw(st.integers(1, 3)) if thorough else 1 + (batch + target) % 3
    longest = draw(st.integers(1, MAX_TARGET)) if thorough else target
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    out = []
    for _ in range(batch):
        row = []
        for j in range(num):
            n = longest if j == 0 else draw(st.integers(1, longest))
            ids = [int(t) for t in rng.integers(2, VOCAB, n)]
            ids[-1] = modelspec.EOS_ID
            row.append(ids)
        out.append([row[k] for k in rng.permutation(num)])
    return out
