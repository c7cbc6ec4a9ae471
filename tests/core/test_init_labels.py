"""Class-label init on the embedded model and the built-in demo task.

Pins down that the prompt the learning bar's class-label runs start from is the
paper's construction on this model: row i is the mean of the embeddings of
label i's sentencepieces (the 256-piece vocabulary splits most food words,
``meat`` -> ``▁me`` + ``at``), the remaining rows are sampled vocabulary, and
a prompt shorter than the label list keeps the first labels.
"""

from __future__ import annotations

import numpy as np
import pytest

from softprompt.core import demo
from softprompt.core.model.init import frequent_ids, initial_prompt
from softprompt.core.model.prompted_t5 import PromptedT5
from softprompt.core.text import tokens


@pytest.fixture(scope="module")
def embedded():
    model = PromptedT5.from_preset(demo.PRESET, prompt_length=1, init="zeros")
    return model.embedding_matrix(), model.tokenizer


def test_demo_labels_are_averaged_pieces_placed_first_then_sampled_vocab(embedded):
    emb, tok = embedded
    labels = demo.TASK_ARGS["labels"]
    ids = tokens.tokenize(tok, labels, add_eos=False)
    # each label's pieces spell the label, and its training target is those pieces, then </s>
    assert ["".join(tok.id_to_token(i) for i in row) == "▁" + label
            for row, label in zip(ids, labels)] == [True] * len(labels)
    assert tokens.tokenize(tok, labels) == [row + [tokens.EOS_ID] for row in ids]
    pool = set(frequent_ids(tok, emb.shape[0]).tolist())
    for seed in range(3):
        prompt = initial_prompt("class-labels", emb, tok, length=20, seed=seed, labels=labels)[0]
        expected = np.stack([emb[row].mean(axis=0) for row in ids])
        np.testing.assert_allclose(prompt[: len(labels)], expected, rtol=1e-6, atol=1e-7)
        rest = [np.flatnonzero((emb == r).all(axis=1)) for r in prompt[len(labels):]]
        assert all(len(m) == 1 and int(m[0]) in pool for m in rest)


def test_a_prompt_shorter_than_the_labels_keeps_the_first_ones(embedded):
    emb, tok = embedded
    labels = demo.TASK_ARGS["labels"]
    full = initial_prompt("class-labels", emb, tok, length=20, seed=0, labels=labels)[0]
    for length in (1, 5):
        with pytest.warns(UserWarning, match=f"initializing with the first {length}"):
            short = initial_prompt("class-labels", emb, tok, length=length, seed=0,
                                   labels=labels)[0]
        np.testing.assert_array_equal(short, full[:length])
