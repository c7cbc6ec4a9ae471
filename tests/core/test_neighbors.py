"""Nearest vocabulary tokens of prompt vectors."""

from __future__ import annotations

import numpy as np
import pytest

from softprompt.core.inference.neighbors import cosine_top_k, nearest_tokens


def test_cosine_top_k_ranks_by_angle_not_length():
    matrix = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    ids, sims = cosine_top_k(np.array([[2.0, 0.0]]), matrix, k=3)
    assert ids.tolist() == [[0, 1, 2]]
    np.testing.assert_allclose(sims[0], [1.0, 10 / np.sqrt(101), 0.0], atol=1e-12)
    ids, _ = cosine_top_k(np.array([[2.0, 0.0]]), matrix, k=2, exclude=[0])
    assert ids.tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="last dimension"):
        cosine_top_k(np.zeros((1, 3)), matrix)


def test_label_words_are_found(preset_v11):
    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.core.text.tokens import tokenize

    model = PromptedT5.from_preset(preset_v11, prompt_length=2, init="uniform", seed=0)
    emb = model.embedding_matrix()
    word = tokenize(model.tokenizer, ["positive"], add_eos=False)[0][0]
    prompt = np.stack([emb[word], np.ones(emb.shape[1], np.float32)])
    rows = nearest_tokens(prompt, emb, model.tokenizer, k=3, labels=["positive", "negative"])
    assert rows[0]["ids"][0] == word and rows[0]["similarities"][0] == pytest.approx(1.0)
    assert rows[0]["labels"] == ["positive"]
    assert len(rows) == 2 and len(rows[1]["tokens"]) == 3
    special = {0, 1, 2}
    assert not special & set(rows[0]["ids"] + rows[1]["ids"])
