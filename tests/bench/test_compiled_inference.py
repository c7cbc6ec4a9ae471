"""Guards for the compiled inference paths (decoding and scoring).

`greedy_tokens` and `score_tokens` run through functions the backend adapter compiles
(JAX: jit with the weights passed in; TensorFlow: a graph), cached on the model. They
must see a prompt assigned after the first call, must not reuse a trace made for other
prompt masks, and the shared cross-attention keys/values of rank classification must
give what projecting the encoder output again gives.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from softprompt.core.inference.decoding import greedy_tokens, score_tokens
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text.batching import pad

ENC, MASK = pad([[7, 8, 9, 10, 1], [11, 1]])
CANDIDATES = [[[5, 1], [6, 7, 1]], [[8, 1], [5, 5, 1]]]


def fresh(preset, prompt):
    model = PromptedT5.from_preset(preset, prompt_length=prompt.shape[0], init="zeros")
    model.load_prompt(prompt)
    return model


def test_a_prompt_assigned_later_is_used(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=3, init="uniform", seed=0)
    greedy_tokens(model, ENC, MASK, max_length=4)
    score_tokens(model, ENC, MASK, CANDIDATES)  # compiled functions now exist
    new = np.random.default_rng(1).uniform(-3, 3, (3, model.backbone.hidden_dim)).astype("f4")
    model.load_prompt(new)
    reference = fresh(preset_v10, new)
    np.testing.assert_array_equal(greedy_tokens(model, ENC, MASK, max_length=4),
                                  greedy_tokens(reference, ENC, MASK, max_length=4,
                                                use_cache=False))
    np.testing.assert_allclose(score_tokens(model, ENC, MASK, CANDIDATES),
                               score_tokens(reference, ENC, MASK, CANDIDATES), atol=1e-5)


def test_the_no_prompt_view_is_not_served_the_prompted_trace(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=2, init="uniform", seed=0)
    dim = model.backbone.hidden_dim
    one = model.with_prompts([np.ones((1, dim), "f4")])
    with_prompt = score_tokens(one, ENC, MASK, CANDIDATES)  # compiled for a visible prompt
    bare = one.without_prompt()
    # Same backbone and prompt shape; only the prompt mask differs.
    assert bare.backbone is one.backbone
    assert bare.prompt.embeddings.shape == one.prompt.embeddings.shape
    without = score_tokens(bare, ENC, MASK, CANDIDATES)
    first = fresh(preset_v11, np.ones((1, dim), "f4")).without_prompt()  # compiled first here
    np.testing.assert_allclose(without, score_tokens(first, ENC, MASK, CANDIDATES), atol=1e-5)
    assert np.abs(without - with_prompt).max() > 1e-4
    np.testing.assert_array_equal(greedy_tokens(bare, ENC, MASK, max_length=4),
                                  greedy_tokens(first, ENC, MASK, max_length=4, use_cache=False))


def test_shared_cross_attention_caches_equal_projecting_again(preset):
    model = PromptedT5.from_preset(preset, prompt_length=2, init="uniform", seed=3)
    encoder_output, mask = model.call_encoder(ops.convert_to_tensor(ENC), ops.convert_to_tensor(MASK))
    dec = ops.convert_to_tensor(np.asarray([[0, 5, 6], [0, 8, 9]], np.int32))
    plain = model.call_decoder(encoder_output, mask, dec)
    cached = model.call_decoder(encoder_output, mask, dec,
                          cross_attention_caches=model.cross_attention_caches(encoder_output))
    np.testing.assert_allclose(ops.convert_to_numpy(cached), ops.convert_to_numpy(plain),
                               atol=1e-5)
