"""Length-bucketed batching: fixed shapes, every example once per epoch, a pure function of step."""

from __future__ import annotations

import numpy as np
import pytest

from softprompt.core.text import batching
from softprompt.core.text.batching import Encoded, TrainBatches, bucket_lengths


def _encoded(n=50, seed=0, longest=40):
    rng = np.random.default_rng(seed)
    inputs = [list(rng.integers(3, 90, rng.integers(2, longest))) + [1] for _ in range(n)]
    targets = [list(rng.integers(3, 90, rng.integers(1, 4))) + [1] for _ in range(n)]
    return Encoded(inputs, targets)


def test_bucket_lengths():
    assert bucket_lengths(512) == (16, 32, 64, 128, 256, 512)
    assert bucket_lengths(100) == (16, 32, 64, 100)
    assert bucket_lengths(16) == (16,)
    assert bucket_lengths(10) == (10,)
    assert batching.bucket_index(17, (16, 32)) == 1
    assert batching.bucket_index(99, (16, 32)) == 1
    with pytest.raises(ValueError):
        bucket_lengths(0)


def test_encode_pairs_cuts_and_keeps_eos(preset_v10):
    """With a real T5 tokenizer: rows cut to the lengths, ``</s>`` kept last, no empty target."""
    import keras_hub

    from softprompt.core.text import tokens

    tokenizer = keras_hub.models.T5Tokenizer.from_preset(preset_v10)
    eos = tokens.end_token_id(tokenizer)
    long_text, short_text = "the quick brown fox jumps over the lazy dog", "cat"
    full = tokens.tokenize(tokenizer, [long_text, short_text, "good"], add_eos=True)
    assert len(full[0]) > 3 and len(full[1]) <= 3 and len(full[2]) <= 2
    enc = batching.encode_pairs(tokenizer, [(long_text, "good"), (short_text, "")], 3, 2)
    assert enc.inputs[0] == full[0][:2] + [eos]
    assert enc.inputs[1] == full[1]
    assert enc.targets == [full[2], []]
    assert enc.cut_inputs == 1 and enc.cut_targets == 0


def test_every_example_once_per_epoch_in_fixed_shapes():
    enc = _encoded()
    stream = TrainBatches(enc, batch_size=8, seed=3, target_length=4,
                          buckets=bucket_lengths(64))
    allowed = {(8, w, 4) for w in bucket_lengths(64)}
    for epoch in range(2):
        seen = []
        for index in range(stream.batches_per_epoch):
            step = epoch * stream.batches_per_epoch + index
            x, y, w = stream.batch(step)
            assert (x["encoder_token_ids"].shape + y.shape[1:]) in allowed
            width, idx = stream.indices(step)
            assert x["encoder_token_ids"].shape[1] == width
            real = w.sum(axis=1) > 0
            assert real.sum() == len(idx)
            seen.extend(idx.tolist())
            longest = max(len(enc.inputs[i]) for i in idx)
            assert longest <= width
        assert sorted(seen) == list(range(len(enc)))
    order0 = np.concatenate([i for _, i in stream.plan(0)])
    order1 = np.concatenate([i for _, i in stream.plan(1)])
    assert not np.array_equal(order0, order1)


def test_short_batch_is_padded_with_zero_weight_copies():
    enc = _encoded(n=11)
    stream = TrainBatches(enc, batch_size=4, seed=0, buckets=(64,))
    assert stream.batches_per_epoch == 3
    sizes = sorted(len(i) for _, i in stream.plan(0))
    assert sizes == [3, 4, 4]
    for step in range(3):
        x, y, w = stream.batch(step)
        assert x["encoder_token_ids"].shape[0] == 4
        assert np.isfinite(w).all()
    # the zero-weight rows are copies of real rows (no all-padding rows)
    assert all(stream.batch(s)[0]["encoder_padding_mask"].sum(axis=1).min() > 0 for s in range(3))


def test_batch_layout_is_seq2seq():
    stream = TrainBatches(_encoded(n=8), batch_size=8, seed=0, buckets=(64,))
    x, y, w = stream.batch(0)
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 0], 0)
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x["decoder_padding_mask"], (w > 0).astype(np.int32))
    np.testing.assert_array_equal(x["prompt_ids"], 0)
    assert x["encoder_token_ids"].dtype == np.int32


def test_a_step_is_a_pure_function_of_data_seed_and_step():
    enc = _encoded()
    a = TrainBatches(enc, batch_size=8, seed=1, buckets=bucket_lengths(64))
    b = TrainBatches(enc, batch_size=8, seed=1, buckets=bucket_lengths(64))
    for step in (0, 5, 17, 3):  # any order, any fresh instance
        xa, ya, wa = a.batch(step)
        xb, yb, wb = b.batch(step)
        for key in xa:
            np.testing.assert_array_equal(xa[key], xb[key])
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(wa, wb)
    assert a.fingerprint() == b.fingerprint()
    assert a.state(17)["epoch"] == 17 // a.batches_per_epoch


def test_fingerprint_sees_data_seed_and_batch_size():
    enc = _encoded()
    base = TrainBatches(enc, batch_size=8, seed=1).fingerprint()
    assert TrainBatches(enc, batch_size=8, seed=2).fingerprint() != base
    assert TrainBatches(enc, batch_size=4, seed=1).fingerprint() != base
    assert TrainBatches(_encoded(seed=9), batch_size=8, seed=1).fingerprint() != base


def test_leftovers_move_up_and_padding_stays_small():
    enc = _encoded(n=200, longest=120)
    stream = TrainBatches(enc, batch_size=16, seed=0, buckets=bucket_lengths(128))
    plan = stream.plan(0)
    short = [len(i) for _, i in plan if len(i) < 16]
    assert len(short) <= 1  # only the longest bucket in use may end short
    real = sum(len(enc.inputs[i]) for _, idx in plan for i in idx)
    padded = sum(w * len(idx) for w, idx in plan)
    assert real / padded > 0.5


def test_unlabeled_training_example_is_an_error():
    enc = Encoded([[5, 1], [6, 1]], [[4, 1], []])
    with pytest.raises(ValueError, match="example 1 has an empty target"):
        TrainBatches(enc, batch_size=2)


def test_inference_plan_covers_each_input_once():
    lengths = [3, 40, 17, 16, 2, 70]
    plan = batching.inference_plan(lengths, batch_size=2, buckets=(16, 32, 64, 128))
    seen = sorted(i for _, idx in plan for i in idx.tolist())
    assert seen == list(range(6))
    for width, idx in plan:
        assert all(lengths[i] <= width for i in idx) and len(idx) <= 2
