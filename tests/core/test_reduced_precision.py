"""The bfloat16 path (``--dtype bfloat16`` / ``mixed_bfloat16``) tracks float32 on the same weights.

The frozen backbone computes in bfloat16 (matrix products through `Adapter.matmul`,
layer norms and softmax in float32, float32 logits); the prompt, its gradient and the
optimizer stay float32. Compared with the float32 model loaded from the same preset:
logits, loss, the prompt's gradient (read off one SGD step), and a few Adafactor steps.
The tolerances are bfloat16's (8 significand bits, relative rounding 2^-9 = 2e-3 per
operation), far below the differences a wrong computation makes (a float32 model with
another seed's prompt differs by > 10 %).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from softprompt import backends
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.training.adafactor import Adafactor

P = 4


def _batch(vocabulary_size, batch=3, source=9, target=4, seed=0):
    rng = np.random.default_rng(seed)
    enc = rng.integers(2, vocabulary_size, (batch, source)).astype("int32")
    enc_mask = np.ones_like(enc)
    enc_mask[1, 6:] = 0
    labels = rng.integers(2, vocabulary_size, (batch, target)).astype("int32")
    label_mask = np.ones_like(labels)
    label_mask[2, 3:] = 0
    decoder = np.concatenate([np.zeros((batch, 1), "int32"), labels[:, :-1]], axis=1)
    x = {"encoder_token_ids": enc, "encoder_padding_mask": enc_mask,
         "decoder_token_ids": decoder, "decoder_padding_mask": label_mask}
    return x, labels, label_mask.astype("float32")


def _models(preset, dtype):
    full = PromptedT5.from_preset(preset, prompt_length=P, init="sampled-vocab", seed=0)
    reduced = PromptedT5.from_preset(preset, prompt_length=P, init="sampled-vocab", seed=0,
                                     dtype=dtype)
    return full, reduced


def _gradient(model, x, y, w):
    """The prompt's loss gradient, read off one plain SGD step (float64 difference)."""
    before = ops.convert_to_numpy(model.prompt.embeddings).astype(np.float64)
    lr = 1e3
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), z_loss=0.0)
    loss = float(model.train_on_batch(x, y, sample_weight=w))
    after = ops.convert_to_numpy(model.prompt.embeddings).astype(np.float64)
    return loss, ((before - after) / lr).ravel()


def _relative(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("dtype", ["bfloat16", "mixed_bfloat16"])
def test_reduced_precision_tracks_float32(preset, dtype):
    full, reduced = _models(preset, dtype)
    assert reduced.backbone.compute_dtype == "bfloat16"
    assert reduced.prompt.embeddings.dtype == "float32"
    # the same starting prompt (sampled-vocab init read the bfloat16 vocabulary)
    reduced.prompt.embeddings.assign(ops.convert_to_numpy(full.prompt.embeddings))
    x, y, w = _batch(full.backbone.vocabulary_size)

    logits_full = ops.convert_to_numpy(full(x)).astype(np.float64)
    logits_reduced = reduced(x)
    assert keras.backend.standardize_dtype(logits_reduced.dtype) == "float32"  # the LM head runs in float32
    assert _relative(ops.convert_to_numpy(logits_reduced), logits_full) < 3e-2

    loss_full, grad_full = _gradient(full, x, y, w)
    loss_reduced, grad_reduced = _gradient(reduced, x, y, w)
    assert abs(loss_reduced - loss_full) < 1e-2 * abs(loss_full)
    cosine = grad_full @ grad_reduced / (np.linalg.norm(grad_full) * np.linalg.norm(grad_reduced))
    assert cosine > 0.99, cosine
    assert _relative(grad_reduced, grad_full) < 0.1


def test_reduced_precision_trains_like_float32(preset_v11):
    """Five Adafactor steps (the paper's settings) in bfloat16 follow the float32 losses."""
    full, reduced = _models(preset_v11, "bfloat16")
    reduced.prompt.embeddings.assign(ops.convert_to_numpy(full.prompt.embeddings))
    x, y, w = _batch(full.backbone.vocabulary_size, seed=3)
    frozen = [ops.convert_to_numpy(v) for v in reduced.backbone.weights]
    losses = {}
    for name, model in (("float32", full), ("bfloat16", reduced)):
        model.compile(optimizer=Adafactor(learning_rate=0.3))
        losses[name] = [float(model.train_on_batch(x, y, sample_weight=w)) for _ in range(5)]
    assert losses["bfloat16"][-1] < losses["bfloat16"][0]
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=2e-2)
    assert reduced.prompt.embeddings.dtype == "float32"
    for before, variable in zip(frozen, reduced.backbone.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(variable))


def test_reduced_precision_decodes_and_scores(preset_v11):
    """Greedy decoding (cached) and rank scores run in bfloat16 and stay close to float32."""
    from softprompt.core.inference.batched import generate, score

    full, reduced = _models(preset_v11, "bfloat16")
    texts = ["the red fox ran.", "two blue boxes near the lake."]
    outputs = generate(reduced, texts, max_length=5)
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    candidates = ["red", "blue", "green"]
    scores_full = np.asarray(score(full, texts, candidates))
    scores_reduced = np.asarray(score(reduced, texts, candidates))
    assert scores_reduced.shape == scores_full.shape
    np.testing.assert_allclose(scores_reduced, scores_full, rtol=3e-2, atol=5e-2)


def test_adapter_matmul_of_bfloat16_is_the_float32_product_of_its_values():
    """`Adapter.matmul` on bfloat16 operands: the exact product, rounded once to bfloat16."""
    rng = np.random.default_rng(0)
    adapter = backends.current()
    for a_shape, b_shape in [((2, 5, 16), (16, 7)), ((2, 3, 5, 16), (2, 3, 16, 6))]:
        a = ops.cast(rng.standard_normal(a_shape).astype("float32"), "bfloat16")
        b = ops.cast(rng.standard_normal(b_shape).astype("float32"), "bfloat16")
        exact = np.matmul(ops.convert_to_numpy(ops.cast(a, "float32")).astype(np.float64),
                          ops.convert_to_numpy(ops.cast(b, "float32")).astype(np.float64))
        got = adapter.matmul(a, b)
        assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
        got = ops.convert_to_numpy(ops.cast(got, "float32")).astype(np.float64)
        # one bfloat16 rounding of the result (2^-8 relative) plus the accumulation's
        np.testing.assert_allclose(got, exact, rtol=2 ** -7, atol=2 ** -7 * np.abs(exact).max())


def test_a_bfloat16_prompt_belongs_to_the_float32_model(preset_v10, tmp_path):
    """Same checkpoint, either dtype: same fingerprint, so the prompt loads without a warning."""
    import warnings

    full, reduced = _models(preset_v10, "bfloat16")
    assert reduced.identity() == full.identity()
    path = reduced.save_prompt(tmp_path / "prompt.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the fingerprint warning
        full.load_prompt(path)
    np.testing.assert_array_equal(ops.convert_to_numpy(full.prompt.embeddings),
                                  ops.convert_to_numpy(reduced.prompt.embeddings))
