"""Properties inside each backend: prompt mixing, padding, batch order, determinism.

Every case goes to all workers at once (they run in parallel); each backend
is checked against itself, and the table shows one column per backend. The
bounds come from float32's rounding-error model (`error_model`), per case: a
different batch width or order may make a kernel block and vectorise its sums
differently, which moves results by rounding and nothing else.
`test_a_leaking_mask_fails_the_padding_bound` shows that the padding bound still
catches a mask that leaks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import error_model
from .conftest import agreement_settings
from .harness import max_abs, record, rel_scalar
from .strategies import VOCAB, cases

pytestmark = pytest.mark.agreement

ENC_PADDED_WIDTH = 32
DEC_PADDED_WIDTH = 8

BATCH_KEYS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
              "decoder_padding_mask", "labels", "prompt_ids")


def forward(pool, case, **extra):
    return pool.run({"op": "forward", "case": case, **extra})


def forward_bounds(case, outputs, enc_width=None, dec_width=None) -> tuple[int, dict]:
    """``K`` of the case (at the given widths) and each backend's logits scale."""
    k = error_model.forward_reductions(
        case["model"], enc_width or case["encoder_token_ids"].shape[1],
        dec_width or case["labels"].shape[1])
    return k, {b: float(np.max(np.abs(o["logits"]))) for b, o in outputs.items()}


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
    k, scale = forward_bounds(case, mixed)
    for b, d in worst.items():
        limit = record(report, "in-backend: mixed prompt_ids = single-prompt runs", b, d,
                       error_model.logits_bound(k, scale[b]))
        assert d <= limit, f"{b}: mixed vs single prompt {d:.3g} > {limit:.3g}"


def padding_deviations(pool, case, seed, mask_floor=None) -> dict:
    """Per backend: how far more right padding moves the real positions, and the bounds.

    The case again with its encoder padded to 32 columns and its decoder to 8, other
    ids under every mask: ``{backend: (logits diff, logits bound, loss diff (rel),
    loss bound)}``. `mask_floor` injects a leaking mask (`worker.Worker.leaking_mask`).
    """
    rng = np.random.default_rng(seed)
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
    plain = forward(pool, case, mask_floor=mask_floor)
    more = forward(pool, padded, mask_floor=mask_floor)
    k, scale = forward_bounds(case, plain, ENC_PADDED_WIDTH, DEC_PADDED_WIDTH)
    dec_real = case["decoder_padding_mask"] == 1
    out = {}
    for b in plain:
        d = max_abs(plain[b]["logits"][dec_real], more[b]["logits"][:, :target][dec_real])
        d_loss = rel_scalar(plain[b]["loss"], more[b]["loss"])
        loss = max(abs(plain[b]["loss"]), abs(more[b]["loss"]))
        out[b] = (d, error_model.logits_bound(k, scale[b]), d_loss,
                  error_model.loss_rel_bound(k, scale[b], loss, VOCAB))
    return out


@agreement_settings(in_backend=True)
@given(case=cases(), data=st.data())
def test_right_padding_and_masked_ids_change_nothing(pool, report, case, data):
    """More right padding (encoder and decoder), and other ids under the mask: same logits."""
    seed = data.draw(st.integers(0, 2**31 - 1))
    for b, (d, bound, d_loss, loss_bound) in padding_deviations(pool, case, seed).items():
        limit = record(report, "in-backend: right padding / masked ids (logits)", b, d, bound)
        assert d <= limit, f"{b}: padding changed real logits by {d:.3g} > {limit:.3g}"
        limit = record(report, "in-backend: right padding / masked ids (loss, rel)", b, d_loss,
                       loss_bound)
        assert d_loss <= limit, f"{b}: padding changed the loss by {d_loss:.3g} > {limit:.3g}"


#: The injected bug: a mask bias of -10 instead of -1e9 leaves each masked key
#: exp(-10) = 4.5e-5 of the weight it would have had.
LEAKING_MASK_FLOOR = -10.0


@agreement_settings(in_backend=True, examples=5)
@given(case=cases(), data=st.data())
def test_a_leaking_mask_fails_the_padding_bound(pool, case, data):
    """The padding bound is tight enough to catch a real bug: a mask that leaks.

    The same comparison as the padding property, with every attention mask leaking
    ``exp(-10)`` of each masked key's weight (`worker.Worker.leaking_mask`): on every
    backend the real positions move beyond the error-model bound.
    """
    seed = data.draw(st.integers(0, 2**31 - 1))
    leaked = padding_deviations(pool, case, seed, mask_floor=LEAKING_MASK_FLOOR)
    for b, (d, bound, _, _) in leaked.items():
        assert d > bound, f"{b}: a mask leaking exp({LEAKING_MASK_FLOOR:g}) went unnoticed: " \
                          f"{d:.3g} <= {bound:.3g}"


@agreement_settings(in_backend=True)
@given(case=cases(), data=st.data())
def test_batch_permutation_permutes_outputs(pool, report, case, data):
    batch = case["labels"].shape[0]
    perm = np.asarray(data.draw(st.permutations(range(batch))), np.int64)
    shuffled = dict(case, **{k: case[k][perm] for k in BATCH_KEYS})
    plain, moved = forward(pool, case), forward(pool, shuffled)
    k, scale = forward_bounds(case, plain)
    for b in plain:
        d = max_abs(plain[b]["logits"][perm], moved[b]["logits"])
        d_loss = rel_scalar(plain[b]["loss"], moved[b]["loss"])
        loss = max(abs(plain[b]["loss"]), abs(moved[b]["loss"]))
        limit = record(report, "in-backend: batch permutation (logits)", b, d,
                       error_model.logits_bound(k, scale[b]))
        assert d <= limit, f"{b}: permuted logits differ by {d:.3g} > {limit:.3g}"
        limit = record(report, "in-backend: batch permutation (loss, rel)", b, d_loss,
                       error_model.loss_rel_bound(k, scale[b], loss, VOCAB))
        assert d_loss <= limit, f"{b}: permuted loss differs by {d_loss:.3g} > {limit:.3g}"


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
