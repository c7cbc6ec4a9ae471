"""A child process of ``test_only_backend.py``: what it is asked, with or without
``SOFTPROMPT_ONLY_BACKEND`` (the test sets the environment).

``python only_backend_worker.py train PRESET``: loads the preset, trains two steps, decodes;
prints one JSON line (the frameworks loaded, the losses, the ids, the decoded text).

``python only_backend_worker.py tokenize PRESET keras-hub|tensorflow-text``: prints a JSON
line when ready, then answers each JSON line of texts on stdin with their ids and the text
the ids decode to: with keras-hub's `T5Tokenizer` from the preset, or with tensorflow-text's
own SentencePiece op over the preset's proto.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FRAMEWORKS = ("tensorflow", "tensorflow_text", "jax", "jaxlib", "torch")


def loaded() -> list[str]:
    return [m for m in FRAMEWORKS if sys.modules.get(m) is not None]


def train(preset: str) -> dict:
    import softprompt  # isort: skip - first: it applies SOFTPROMPT_ONLY_BACKEND
    import keras

    from softprompt.core.text import batching
    from softprompt.core.text import tokens as tok

    model = softprompt.PromptedT5.from_preset(preset, prompt_length=3, init_labels=["yes", "no"],
                                              seed=0)
    model.compile(optimizer=softprompt.Adafactor(learning_rate=0.3))
    inputs = tok.tokenize(model.tokenizer, ["the quick brown fox", "a lazy dog sat on the mat"])
    targets = tok.tokenize(model.tokenizer, ["yes", "no"])
    x, y, w = batching.seq2seq_batch(inputs, targets, 16, 4)
    losses = [float(model.train_on_batch(x, y, sample_weight=w)) for _ in range(2)]
    generated = softprompt.generate(model, ["the red fox ran"], max_length=4)
    keras_optional = [m for m in ("pandas", "matplotlib") if sys.modules.get(m) is not None]
    import pandas  # what datasets imports: still importable outside keras

    return {"frameworks": loaded(), "keras_optional": keras_optional,
            "pandas_after": pandas.__name__, "losses": losses, "ids": inputs, "generated": generated,
            "prompt": keras.ops.convert_to_numpy(model.prompt.embeddings).tolist()}


def tokenizer(preset: str, kind: str):
    """``(encode, decode)`` over lists."""
    if kind == "keras-hub":
        import softprompt  # noqa: F401  # isort: skip - first: it applies SOFTPROMPT_ONLY_BACKEND
        import keras_hub

        from softprompt.core.text import tokens as tok

        t5 = keras_hub.models.T5Tokenizer.from_preset(preset)
        return (lambda texts: tok.tokenize(t5, texts, add_eos=False),
                lambda ids: [str(t5.detokenize(row)) for row in ids])
    import tensorflow as tf
    import tensorflow_text as tf_text

    proto = Path(preset, "assets", "tokenizer", "vocabulary.spm").read_bytes()
    sp = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
    return (lambda texts: sp.tokenize(tf.constant(texts, tf.string)).to_list(),
            lambda ids: [sp.detokenize(tf.constant(row, tf.int32)).numpy().decode("utf-8")
                         for row in ids])


def main(argv: list[str]) -> int:
    if argv[0] == "train":
        print(json.dumps(train(argv[1])), flush=True)
        return 0
    encode, decode = tokenizer(argv[1], argv[2])
    print(json.dumps({"ready": True, "frameworks": loaded()}), flush=True)
    for line in sys.stdin:
        ids = encode(json.loads(line))
        print(json.dumps({"ids": ids, "text": decode(ids)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
