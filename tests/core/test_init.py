"""The paper's prompt initializers."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from softprompt.core.io.prompt_files import save_prompt
from softprompt.core.model.init import TOP_VOCAB, frequent_ids, initial_prompt
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text import tokens


@pytest.fixture(scope="module")
def parts(preset_v10):
    model = PromptedT5.from_preset(preset_v10, prompt_length=1, init="uniform", seed=0)
    return model.embedding_matrix(), model.tokenizer


def test_uniform_range_and_seed(parts):
    emb, tok = parts
    a = initial_prompt("uniform", emb, length=50, num_prompts=2, seed=7)
    b = initial_prompt("uniform", emb, length=50, num_prompts=2, seed=7)
    c = initial_prompt("uniform", emb, length=50, num_prompts=2, seed=8, init_range=0.1)
    assert a.shape == (2, 50, emb.shape[1]) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -0.5 and a.max() <= 0.5 and a.max() > 0.4
    assert np.abs(c).max() <= 0.1


def test_sampled_vocab_rows_are_distinct_frequent_tokens(parts):
    emb, tok = parts
    pool = frequent_ids(tok, emb.shape[0])
    assert not set(pool.tolist()) & tokens.special_ids(tok)
    assert {0, 1, 2} <= tokens.special_ids(tok)
    assert len(pool) == min(TOP_VOCAB, emb.shape[0] - len(tokens.special_ids(tok)))
    out = initial_prompt("sampled-vocab", emb, tok, length=20, seed=0)[0]
    rows = [int(np.where((emb == r).all(axis=1))[0][0]) for r in out]
    assert len(set(rows)) == 20  # without replacement
    assert set(rows) <= set(pool.tolist())
    # more positions than tokens: falls back to sampling with replacement
    big = initial_prompt("sampled-vocab", emb, tok, length=len(pool) + 5, seed=0)
    assert big.shape[1] == len(pool) + 5


def test_class_labels_rows_are_mean_subword_embeddings(parts):
    emb, tok = parts
    labels = ["positive", "negative", "neutral"]
    out = initial_prompt("class-labels", emb, tok, length=8, num_prompts=2, labels=labels, seed=0)
    for i, ids in enumerate(tokens.tokenize(tok, labels, add_eos=False)):
        for p in range(2):
            np.testing.assert_allclose(out[p, i], emb[ids].mean(axis=0), rtol=1e-6)
    pool = set(frequent_ids(tok, emb.shape[0]).tolist())
    for r in out[0, 3:]:  # the rest is sampled vocabulary
        match = np.where((emb == r).all(axis=1))[0]
        assert len(match) and int(match[0]) in pool


def test_text_is_cut_or_repeated(parts):
    emb, tok = parts
    ids = tokens.tokenize(tok, ["red green blue"], add_eos=False)[0]
    out = initial_prompt("text", emb, tok, length=len(ids) * 2 + 1, text="red green blue")[0]
    expected = (ids * 3)[: len(ids) * 2 + 1]
    np.testing.assert_array_equal(out, emb[expected])
    cut = initial_prompt("text", emb, tok, length=1, text="red green blue")[0]
    np.testing.assert_array_equal(cut, emb[ids[:1]])


def test_file_init(parts, tmp_path):
    emb, tok = parts
    prompt = np.random.default_rng(0).normal(size=(4, emb.shape[1])).astype(np.float32)
    save_prompt(tmp_path / "p.npy", prompt)
    out = initial_prompt("file", emb, tok, length=4, num_prompts=2, file=tmp_path / "p.npy")
    np.testing.assert_array_equal(out[1], prompt)
    with pytest.raises(ValueError, match=r"has shape \(2, 4, \d+\), expected \(2, 5, \d+\)"):
        initial_prompt("file", emb, tok, length=5, num_prompts=2, file=tmp_path / "p.npy")


def test_model_initializer_is_seeded(preset_v11):
    a = PromptedT5.from_preset(preset_v11, prompt_length=6, init_labels=["yes", "no"], seed=5)
    b = PromptedT5.from_preset(preset_v11, prompt_length=6, init_labels=["yes", "no"], seed=5)
    assert a.init == "class-labels"
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(a.prompt.embeddings),
        keras.ops.convert_to_numpy(b.prompt.embeddings),
    )
    tok = keras_hub.models.T5Tokenizer.from_preset(preset_v11)
    assert tok.vocabulary_size() == a.backbone.vocabulary_size
