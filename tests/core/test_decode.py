"""Greedy decoding with the KV cache, and rank classification."""

from __future__ import annotations

import keras
import numpy as np

from softprompt.core.inference import decoding
from softprompt.core.inference.batched import generate, score
from softprompt.core.inference.decoding import greedy_tokens, score_tokens, top_token
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


def test_top_token_is_numpys_argmax_and_top_two_margin():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 300)).astype("f4")
    logits[1, [7, 40, 299]] = 9.0  # a three-way tie: the first wins, margin 0
    logits[2, [0, 299]] = [8.0, 7.5]
    token, margin = top_token(keras.ops.convert_to_tensor(logits), True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(token), logits.argmax(-1))
    top2 = np.sort(logits, axis=-1)[:, -2:]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(margin), top2[:, 1] - top2[:, 0])
    assert keras.ops.convert_to_numpy(margin)[1] == 0.0
    alone, none = top_token(keras.ops.convert_to_tensor(logits), False)
    assert none is None
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(alone), logits.argmax(-1))


def test_decoding_stops_at_the_end_token_as_the_reference_does(preset_v11, monkeypatch):
    """Rows end at `</s>` (here: a token the model emits mid-sequence, made the end token),
    are 0 after it with NaN margins, and the loop stops once every row has ended. (The tied
    T5 1.0 preset repeats the start token; the untied one's tokens vary.)"""
    model = PromptedT5.from_preset(preset_v11, prompt_length=3, init="uniform", seed=0)
    enc, mask = pad([[7, 8, 9, 10, 1], [11, 1], [12, 13, 1]])
    free = greedy_tokens(model, enc, mask, max_length=8)
    # a token row 0 emits first at position 1..5: it becomes the end token
    firsts = [(p, t) for p, t in enumerate(free[0]) if 1 <= p <= 5 and t not in free[0, :p]]
    assert firsts, f"the model repeats one token: {free[0]}"
    stop, end = firsts[0]
    monkeypatch.setattr(decoding.tok, "end_token_id", lambda tokenizer: int(end))
    for rows in (slice(0, 3), slice(0, 1)):  # one row: the whole decode stops early
        cached, cm = greedy_tokens(model, enc[rows], mask[rows], max_length=8,
                                   return_margins=True)
        plain, pm = greedy_tokens(model, enc[rows], mask[rows], max_length=8,
                                  use_cache=False, return_margins=True)
        np.testing.assert_array_equal(cached, plain)
        np.testing.assert_array_equal(cached[0, : stop + 1], free[0, : stop + 1])
        assert (cached[0, stop + 1 :] == 0).all() and np.isnan(cm[0, stop + 1 :]).all()
        np.testing.assert_array_equal(np.isnan(cm), np.isnan(pm))
        np.testing.assert_allclose(cm, pm, atol=1e-4)  # NaNs compare equal


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
