"""Greedy decoding with the KV cache, and rank classification."""

from __future__ import annotations

import keras
import numpy as np

from softprompt.core.inference.batched import generate, score
from softprompt.core.inference.decoding import greedy_tokens, score_tokens
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text import tokens
from softprompt.core.text.batching import pad


def test_cached_greedy_equals_uncached_argmax(preset):
    model = PromptedT5.from_preset(preset, prompt_length=3, num_prompts=2, init="uniform", seed=0)
    enc, mask = pad([[7, 8, 9, 10, 1], [11, 1], [12, 13, 1]])
    cached = greedy_tokens(model, enc, mask, prompt_ids=[0, 1, 1], max_length=8)
    plain = greedy_tokens(model, enc, mask, prompt_ids=[0, 1, 1], max_length=8, use_cache=False)
    assert cached.shape == (3, 8)
    np.testing.assert_array_equal(cached, plain)


def test_greedy_step_is_argmax_of_full_logits(preset_v11):
    """Teacher-forcing the greedy output reproduces each argmax."""
    model = PromptedT5.from_preset(preset_v11, prompt_length=2, init="uniform", seed=4)
    enc, mask = pad([[7, 8, 9, 1]])
    out = greedy_tokens(model, enc, mask, max_length=5)[0]
    dec = np.concatenate([[0], out[:-1]])[None].astype(np.int32)
    logits = keras.ops.convert_to_numpy(model({
        "encoder_token_ids": enc, "encoder_padding_mask": mask,
        "decoder_token_ids": dec, "decoder_padding_mask": np.ones_like(dec),
    }))
    eos = np.where(out == 1)[0]
    stop = int(eos[0]) + 1 if len(eos) else len(out)
    np.testing.assert_array_equal(logits[0, :stop].argmax(-1), out[:stop])


def test_score_is_sum_of_target_log_probs(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=3, init="uniform", seed=2)
    tok = model.tokenizer
    texts = ["red green", "the quick brown fox"]
    labels = ["yes", "no good"]
    got = score(model, texts, labels)
    assert got.shape == (2, 2)
    for i, text in enumerate(texts):
        enc = np.asarray([tokens.tokenize(tok, [text])[0]], np.int32)
        for j, cand in enumerate(tokens.tokenize(tok, labels)):
            dec = np.asarray([[0] + cand[:-1]], np.int32)
            logits = keras.ops.convert_to_numpy(model({
                "encoder_token_ids": enc, "encoder_padding_mask": np.ones_like(enc),
                "decoder_token_ids": dec, "decoder_padding_mask": np.ones_like(dec),
            }))[0].astype(np.float64)
            logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            assert abs(got[i, j] - logp[np.arange(len(cand)), cand].sum()) < 1e-4


def test_score_per_text_candidates_and_prompt_ids(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=2, num_prompts=2, seed=0)
    enc, mask = pad([[7, 8, 1], [9, 1]])
    cands = [[[5, 1], [6, 7, 1]], [[8, 1], [5, 5, 5, 1]]]
    both = score_tokens(model, enc, mask, cands, prompt_ids=[0, 1])
    first = score_tokens(model, enc[:1], mask[:1], cands[:1], prompt_ids=[0])
    second = score_tokens(model, enc[1:, :2], mask[1:, :2], cands[1:], prompt_ids=[1])
    np.testing.assert_allclose(both, np.concatenate([first, second]), atol=1e-4)


def test_generate_returns_strings(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=2, seed=0)
    out = generate(model, ["the quick fox", "red"], max_length=4)
    assert len(out) == 2 and all(isinstance(s, str) for s in out)
