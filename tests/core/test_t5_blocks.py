"""`t5_blocks.transformer_layer` computes what keras-hub's T5TransformerLayer computes.

Both attention cores (written out, and the adapter's own `attention_kernel`: torch's
fused scaled-dot-product attention, JAX's written-out backward) are compared with the
keras-hub layer's own call on the same weights: encoder layers with a padding mask,
decoder layers with the causal mask, and one cached decoding step with self- and
cross-attention caches (a single query: `single_query_attention`, which is also
compared with both cores directly).
"""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from softprompt import backends
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.model.t5_blocks import (
    attention_core,
    single_query_attention,
    transformer_layer,
)


@pytest.fixture(params=["written-out", "adapter"])
def attention_path(request, monkeypatch):
    """The attention core: written out, or the adapter's own kernel (where it has one)."""
    if request.param == "written-out":
        monkeypatch.setattr(type(backends.current()), "attention_kernel",
                            lambda self, dtype: None)
    return request.param


def _inputs(dim, batch=3, length=7, seed=0):
    rng = np.random.default_rng(seed)
    x = ops.convert_to_tensor(rng.standard_normal((batch, length, dim)).astype("f4"))
    mask = np.ones((batch, length), "int32")
    mask[1, 4:] = 0
    mask[2, :2] = 0
    return x, ops.convert_to_tensor(mask)


def _close(a, b, atol=2e-5):
    np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=atol)


def test_encoder_layers_equal_keras_hub(preset, attention_path):
    bb = PromptedT5.from_preset(preset, prompt_length=2).backbone
    x, mask = _inputs(bb.hidden_dim)
    ours, theirs, bias_ours, bias_theirs = x, x, None, None
    for layer in bb.encoder_transformer_layers:
        ours, bias_ours = transformer_layer(layer, ours, attention_mask=mask[:, None, :],
                                            position_bias=bias_ours)
        theirs, bias_theirs = layer(theirs, attention_mask=mask[:, None, :],
                                    position_bias=bias_theirs)
    _close(ours, theirs)
    _close(bias_ours, bias_theirs)


def test_decoder_layers_equal_keras_hub(preset, attention_path):
    bb = PromptedT5.from_preset(preset, prompt_length=2).backbone
    enc, enc_mask = _inputs(bb.hidden_dim, seed=1)
    x, _ = _inputs(bb.hidden_dim, length=5, seed=2)
    ours, theirs, bias_ours, bias_theirs = x, x, None, None
    for layer in bb.decoder_transformer_layers:
        kwargs = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask[:, None, :],
                      use_causal_mask=True)
        ours, bias_ours = transformer_layer(layer, ours, position_bias=bias_ours, **kwargs)
        theirs, bias_theirs = layer(theirs, position_bias=bias_theirs, **kwargs)
    _close(ours, theirs)


def test_cached_decoder_step_equals_keras_hub(preset, attention_path):
    bb = PromptedT5.from_preset(preset, prompt_length=2).backbone
    layer = bb.decoder_transformer_layers[0]
    att = layer.self_attention
    enc, enc_mask = _inputs(bb.hidden_dim, seed=3)
    step, _ = _inputs(bb.hidden_dim, length=1, seed=4)
    rng = np.random.default_rng(5)
    shape = (3, 2, 6, att.num_heads, att.key_value_dim)
    self_cache = ops.convert_to_tensor(rng.standard_normal(shape).astype("f4"))
    cross_cache = ops.convert_to_tensor(np.zeros((3, 2, 7, att.num_heads, att.key_value_dim),
                                                 "f4"))
    kwargs = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask[:, None, :],
                  use_causal_mask=True, self_attention_cache=self_cache,
                  self_attention_cache_update_index=3, cross_attention_cache=cross_cache,
                  cross_attention_cache_update_index=0)
    ours = transformer_layer(layer, step, **kwargs)
    theirs = layer(step, **kwargs)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs):
        _close(a, b)



@pytest.mark.parametrize("bias_batch", [1, 3])
def test_single_query_attention_equals_the_cores(attention_path, bias_batch):
    """One query: what the general cores give for it (run on that query twice, since they
    would take the single-query path themselves), with the bias broadcast over the batch
    or per row, one row masked down to a single key."""
    rng = np.random.default_rng(6)
    q = rng.standard_normal((3, 1, 4, 8)).astype("f4")
    k, v = (rng.standard_normal((3, 9, 4, 8)).astype("f4") for _ in range(2))
    bias = rng.standard_normal((bias_batch, 4, 1, 9)).astype("f4")
    if bias_batch == 3:
        bias[1, :, :, 1:] -= 1e9
    one = single_query_attention(*(ops.convert_to_tensor(a) for a in (q, k, v, bias)))
    assert tuple(one.shape) == (3, 1, 4, 8)
    twice = attention_core(*(ops.convert_to_tensor(a) for a in (
        np.concatenate([q, q], axis=1), k, v, np.concatenate([bias, bias], axis=2))))
    _close(one, ops.convert_to_numpy(twice)[:, :1], atol=1e-5)
