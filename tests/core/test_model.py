"""PromptedT5: the network contract."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text import tokens
from softprompt.core.text.batching import pad
from softprompt.core.training.adafactor import Adafactor


def _inputs(enc_rows, dec_rows, prompt_ids=None):
    enc, enc_mask = pad(enc_rows)
    dec, dec_mask = pad(dec_rows)
    x = {
        "encoder_token_ids": enc,
        "encoder_padding_mask": enc_mask,
        "decoder_token_ids": dec,
        "decoder_padding_mask": dec_mask,
    }
    if prompt_ids is not None:
        x["prompt_ids"] = np.asarray(prompt_ids, np.int32)
    return x


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_text_prompt_equals_tokens_in_front(preset):
    """A prompt made of the embeddings of "a b c" is exactly those tokens in the input."""
    tokenizer = keras_hub.models.T5Tokenizer.from_preset(preset)
    prefix = tokens.tokenize(tokenizer, ["a b c"], add_eos=False)[0]
    model = PromptedT5.from_preset(preset, prompt_length=len(prefix), init="text", init_text="a b c")
    enc = [[7, 8, 9, 1], [10, 1]]
    dec = [[0, 5, 6], [0, 9, 4]]
    ours = _np(model(_inputs(enc, dec)))

    lm = keras_hub.models.T5Seq2SeqLM(backbone=model.backbone, preprocessor=None)
    reference = _np(lm(_inputs([prefix + r for r in enc], dec)))
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_only_the_prompt_is_trainable(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=5, num_prompts=2, seed=0)
    assert [v.path for v in model.trainable_weights] == [model.prompt.embeddings.path]
    assert tuple(model.prompt.embeddings.shape) == (2, 5, model.backbone.hidden_dim)
    assert model.backbone.trainable is False
    assert model.tokenizer is not None


def test_mixed_prompt_batch_equals_separate_runs(preset):
    model = PromptedT5.from_preset(preset, prompt_length=4, num_prompts=2, init="uniform", seed=3)
    enc = [[7, 8, 9, 1], [10, 1], [11, 12, 1]]
    dec = [[0, 5, 6], [0, 9, 4], [0, 3, 3]]
    mixed = _np(model(_inputs(enc, dec, [0, 1, 0])))
    only0 = _np(model(_inputs(enc, dec, [0, 0, 0])))
    only1 = _np(model(_inputs(enc, dec, [1, 1, 1])))
    np.testing.assert_allclose(mixed[[0, 2]], only0[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(mixed[1], only1[1], atol=1e-6)
    assert np.abs(only0[1] - only1[1]).max() > 1e-4  # the prompts really differ


def test_prompt_ids_default_to_zero(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=3, num_prompts=2, seed=1)
    x = _inputs([[7, 8, 1]], [[0, 4]])
    np.testing.assert_array_equal(_np(model(x)), _np(model(x | {"prompt_ids": np.zeros(1, np.int32)})))


def test_prompts_of_different_lengths_share_a_batch(preset):
    """A short prompt right-aligned and masked gives exactly its own result (relative positions)."""
    base = PromptedT5.from_preset(preset, prompt_length=6, num_prompts=1, init="uniform", seed=0)
    long = np.asarray(_np(base.prompt.embeddings)[0])
    short = long[:2] * 0.5
    both = base.with_prompts([long, short])
    enc = [[7, 8, 9, 1], [10, 11, 1]]
    dec = [[0, 5, 6], [0, 9, 4]]
    mixed = _np(both(_inputs(enc, dec, [0, 1])))
    alone_long = _np(base.with_prompts([long])(_inputs(enc, dec)))
    alone_short = _np(base.with_prompts([short])(_inputs(enc, dec)))
    np.testing.assert_allclose(mixed[0], alone_long[0], atol=1e-5)
    np.testing.assert_allclose(mixed[1], alone_short[1], atol=1e-5)


def test_training_flag_applies_backbone_dropout(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=3, seed=0)
    x = _inputs([[7, 8, 9, 1]], [[0, 5, 6]])
    np.testing.assert_array_equal(_np(model(x)), _np(model(x)))
    model.set_dropout(0.5)
    a, b = _np(model(x, training=True)), _np(model(x, training=True))
    assert np.abs(a - b).max() > 0
    np.testing.assert_array_equal(_np(model(x)), _np(model(x)))


def test_fit_changes_only_the_prompt(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=4, seed=0)
    model.compile(optimizer=Adafactor(learning_rate=0.3))  # the paper's, + z-loss
    backbone_before = [_np(w).copy() for w in model.backbone.weights]
    prompt_before = _np(model.prompt.embeddings).copy()
    x = _inputs([[7, 8, 9, 1], [10, 1]] * 2, [[0, 5, 6], [0, 9, 4]] * 2)
    y = np.array([[5, 6, 1], [9, 4, 1]] * 2, np.int32)
    history = model.fit(x, y, sample_weight=np.ones_like(y, np.float32), batch_size=2, epochs=2,
                        verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for before, w in zip(backbone_before, model.backbone.weights):
        np.testing.assert_array_equal(before, _np(w), err_msg=w.path)
    assert np.abs(_np(model.prompt.embeddings) - prompt_before).max() > 0


def test_loss_is_masked_cross_entropy_plus_z_loss(preset_v10):
    from softprompt.core.model.loss import seq2seq_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype(np.float32)
    labels = np.array([[1, 2, 3], [4, 5, 0]])
    weight = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    log_z = np.log(np.exp(logits).sum(-1))
    ce = log_z - np.take_along_axis(logits, labels[..., None], -1)[..., 0]
    expected = ((ce + 1e-4 * log_z**2) * weight).sum() / weight.sum()
    got = float(_np(seq2seq_loss(labels, logits, weight, z_loss=1e-4)))
    assert got == pytest.approx(expected, rel=1e-6)
    no_z = float(_np(seq2seq_loss(labels, logits, weight, z_loss=0.0)))
    assert no_z == pytest.approx((ce * weight).sum() / weight.sum(), rel=1e-6)


def test_config_round_trip(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=3, num_prompts=2, seed=0)
    clone = PromptedT5.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    x = _inputs([[7, 8, 1]], [[0, 4]])
    np.testing.assert_allclose(_np(clone(x)), _np(model(x)), atol=1e-6)


def test_bad_inputs_are_one_line_errors(preset_v10, tmp_path):
    with pytest.raises(ValueError, match="unknown prompt init 'bogus'"):
        PromptedT5.from_preset(preset_v10, prompt_length=3, init="bogus")
    with pytest.raises(ValueError, match="needs init_labels"):
        PromptedT5.from_preset(preset_v10, prompt_length=3, init="class-labels")
    with pytest.raises(FileNotFoundError, match="no/such/preset"):
        PromptedT5.from_preset(str(tmp_path / "no/such/preset"), prompt_length=3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        PromptedT5.from_preset(str(tmp_path / "empty"), prompt_length=3)


def test_class_labels_beyond_the_prompt_length_are_dropped_with_a_warning(preset_v10):
    with pytest.warns(UserWarning, match="3 class labels do not fit a prompt of length 2: "
                                         "initializing with the first 2"):
        short = PromptedT5.from_preset(preset_v10, prompt_length=2, init_labels=["a", "b", "c"],
                                       seed=0)
    full = PromptedT5.from_preset(preset_v10, prompt_length=3, init_labels=["a", "b", "c"],
                                  seed=0)
    np.testing.assert_array_equal(_np(short.prompt.embeddings)[:, :2],
                                  _np(full.prompt.embeddings)[:, :2])


def test_from_preset_dropout_override(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=2, dropout=0.3, seed=0)
    assert model.backbone.dropout == 0.3
    x = _inputs([[7, 8, 9, 1]], [[0, 5, 6]])
    assert np.abs(_np(model(x, training=True)) - _np(model(x, training=True))).max() > 0
