"""Properties inside each backend: prompt mixing, padding, batch order, determinism.

Every case goes to all workers at once (they run in parallel); each backend
is checked against itself, and the table shows one column per backend.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import agreement_settings
from .harness import max_abs, rel_scalar
from .strategies import VOCAB, cases

pytestmark = pytest.mark.agreement

#: Same shapes, rows computed independently: nothing may differ but the
#: order of float32 operations inside a kernel, which should not change.
SAME_SHAPE_ABS = 1e-6
#: Padding changes reduction lengths (softmax over more, exactly zero, terms).
PADDED_ABS = 1e-5
ENC_PADDED_WIDTH = 32
DEC_PADDED_WIDTH = 8

BATCH_KEYS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
              "decoder_padding_mask", "labels", "prompt_ids")


def forward(pool, case, **extra):
    return pool.run({"op": "forward", "case": case, **extra})


@agreement_settings(in_backend=True)
@given(case=cases(min_prompts=2))
def test_mixed_prompts_equal_single_prompt_runs(pool, report, case):
    """Rows of a mixed ``prompt_ids`` batch equal a one-prompt model's run of the batch."""
    mixed = forward(pool, case)
    spec = case["model"]
    worst = {b: 0.0 for b in mixed}
    for k in np.unique(case["prompt_ids"]):
        single = dict(case, model=dict(spec, num_prompts=1), prompt=case["prompt"][k:k + 1],
                      prompt_ids=np.zeros_like(case["prompt_ids"]))
        alone = forward(pool, single)
        rows = case["prompt_ids"] == k
        for b in mixed:
            d = max_abs(mixed[b]["logits"][rows], alone[b]["logits"][rows])
            worst[b] = max(worst[b], d)
    for b, d in worst.items():
        report.add("in-backend: mixed prompt_ids = single-prompt runs", b, d, SAME_SHAPE_ABS)
        assert d <= SAME_SHAPE_ABS, f"{b}: mixed vs single prompt {d:.3g}"


@agreement_settings(in_backend=True)
@given(case=cases(), data=st.data())
def test_right_padding_and_masked_ids_change_nothing(pool, report, case, data):
    """More right padding (encoder and decoder), and other ids under the mask: same logits."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    batch, width = case["encoder_token_ids"].shape
    target = case["labels"].shape[1]
    enc_ids = rng.integers(2, VOCAB, (batch, ENC_PADDED_WIDTH)).astype(np.int32)
    enc_mask = np.zeros_like(enc_ids)
    enc_mask[:, :width] = case["encoder_padding_mask"]
    real = case["encoder_padding_mask"] == 1
    enc_ids[:, :width][real] = case["encoder_token_ids"][real]  # new ids only under the mask
    dec_ids = rng.integers(2, VOCAB, (batch, DEC_PADDED_WIDTH)).astype(np.int32)
    labels = rng.integers(2, VOCAB, (batch, DEC_PADDED_WIDTH)).astype(np.int32)
    dec_mask = np.zeros_like(dec_ids)
    dec_ids[:, :target] = case["decoder_token_ids"]
    labels[:, :target] = case["labels"]
    dec_mask[:, :target] = case["decoder_padding_mask"]
    padded = dict(case, encoder_token_ids=enc_ids, encoder_padding_mask=enc_mask,
                  decoder_token_ids=dec_ids, decoder_padding_mask=dec_mask, labels=labels)
    plain, more = forward(pool, case), forward(pool, padded)
    dec_real = case["decoder_padding_mask"] == 1
    for b in plain:
        d = max_abs(plain[b]["logits"][dec_real], more[b]["logits"][:, :target][dec_real])
        d_loss = rel_scalar(plain[b]["loss"], more[b]["loss"])
        report.add("in-backend: right padding / masked ids (logits)", b, d, PADDED_ABS)
        report.add("in-backend: right padding / masked ids (loss, rel)", b, d_loss, PADDED_ABS)
        assert d <= PADDED_ABS, f"{b}: padding changed real logits by {d:.3g}"
        assert d_loss <= PADDED_ABS, f"{b}: padding changed the loss by {d_loss:.3g}"


@agreement_settings(in_backend=True)
@given(case=cases(), data=st.data())
def test_batch_permutation_permutes_outputs(pool, report, case, data):
    batch = case["labels"].shape[0]
    perm = np.asarray(data.draw(st.permutations(range(batch))), np.int64)
    shuffled = dict(case, **{k: case[k][perm] for k in BATCH_KEYS})
    plain, moved = forward(pool, case), forward(pool, shuffled)
    for b in plain:
        d = max_abs(plain[b]["logits"][perm], moved[b]["logits"])
        d_loss = rel_scalar(plain[b]["loss"], moved[b]["loss"])
        report.add("in-backend: batch permutation (logits)", b, d, SAME_SHAPE_ABS)
        report.add("in-backend: batch permutation (loss, rel)", b, d_loss, SAME_SHAPE_ABS)
        assert d <= SAME_SHAPE_ABS, f"{b}: permuted logits differ by {d:.3g}"
        assert d_loss <= SAME_SHAPE_ABS, f"{b}: permuted loss differs by {d_loss:.3g}"


@agreement_settings(in_backend=True, examples=10)
@given(case=cases())
def test_deterministic(pool, report, case):
    """Bit-identical: a repeated call, a model rebuilt from the same seed, a repeated training run."""
    first, again = forward(pool, case), forward(pool, case)
    fresh = forward(pool, case, fresh=True)
    train = {"op": "train", "case": case, "steps": 2, "optimizer": {"name": "adafactor"}}
    t1, t2 = pool.run(train), pool.run(train)
    cached = pool.run({"op": "weights", "model": case["model"]})
    for b in first:
        d = max(max_abs(first[b]["logits"], again[b]["logits"]),
                max_abs(first[b]["logits"], fresh[b]["logits"]),
                max_abs(t1[b]["prompts"], t2[b]["prompts"]))
        report.add("in-backend: determinism (repeat, rebuild, retrain)", b, d, 0.0)
        assert np.array_equal(first[b]["logits"], again[b]["logits"]), f"{b}: repeated call"
        assert np.array_equal(first[b]["logits"], fresh[b]["logits"]), f"{b}: rebuilt model"
        assert np.array_equal(t1[b]["prompts"], t2[b]["prompts"]), f"{b}: repeated training"
        assert fresh[b]["backbone"] == cached[b]["backbone"], f"{b}: rebuilt weights differ"
