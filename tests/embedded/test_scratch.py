"""From-scratch models (`softprompt.core.pretraining.scratch`): T5's embedding init, sentencepiece options."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops


def test_every_from_scratch_backbone_gets_t5_token_embeddings():
    from softprompt.core.pretraining.scratch import build_backbone

    untied = build_backbone(300, "test", "t5.1.1", seed=0)
    emb = ops.convert_to_numpy(untied.token_embedding.embeddings)
    # N(0, 1), not keras-hub's TruncatedNormal(mean=1.0, stddev=0.05)
    assert abs(emb.mean()) < 0.1 and 0.9 < emb.std() < 1.1, (emb.mean(), emb.std())
    reverse = ops.convert_to_numpy(untied.token_embedding.reverse_embeddings)
    dim = untied.hidden_dim
    assert 0.9 * dim**-0.5 < reverse.std() < 1.1 * dim**-0.5
    again = build_backbone(300, "test", "t5.1.1", seed=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(again.token_embedding.embeddings), emb)
    other = build_backbone(300, "test", "t5.1.1", seed=1)
    assert not np.allclose(ops.convert_to_numpy(other.token_embedding.embeddings), emb)
    tied = build_backbone(300, "test", "t5.1.0", seed=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(tied.token_embedding.embeddings), emb)


def test_sentencepiece_model_types():
    import keras_hub

    from softprompt.core.pretraining.scratch import train_sentencepiece
    from softprompt.data import synthetic

    lines, _ = synthetic.pretraining_texts(300, 0, seed=0)
    bpe = keras_hub.models.T5Tokenizer(proto=train_sentencepiece(lines, 200, model_type="bpe"))
    unigram = keras_hub.models.T5Tokenizer(proto=train_sentencepiece(lines, 200))
    # BPE keeps the language's words whole; both are T5-compatible (pad 0, eos 1, unk 2)
    assert bpe.token_to_id("\u2581rabbit") > 2
    for tokenizer in (bpe, unigram):
        assert [tokenizer.id_to_token(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
        assert tokenizer.detokenize(tokenizer.tokenize("the red fox.")) == "the red fox."
    with pytest.raises(ValueError, match="unknown sentencepiece model type 'word2'"):
        train_sentencepiece(lines, 200, model_type="word2")
