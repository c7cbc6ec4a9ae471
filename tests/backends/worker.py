"""Train a prompt for a few steps under one distribution; the tests run it as a script.

Usage: ``python worker.py OUT_DIR INFO_DIR KIND[:MESH][@OPT] ...``

For each ``KIND`` (``none``, ``data``, ``model:2x2`` ...) the script trains
twice (once with ``@sgd`` or ``@adafactor``), each time on a fresh model (a
tiny random T5 1.1 backbone, the same in every process because it is built
from a fixed seed) made inside ``Distribution.scope()`` and prepared with
``Distribution.prepare``:

- ``sgd``: plain SGD, 5 ``train_on_batch`` steps on ``Distribution.shard_batch``;
- ``adafactor``: softprompt's Adafactor (the paper's settings), ``fit`` for
  one epoch of 5 batches on ``Distribution.dataset``.

Both see the same 5 global batches. The writer (rank 0) alone saves the
prompt to ``OUT_DIR/<kind>-<optimizer>.npy`` and the logits of the trained
model for the first batch, computed inside the scope as evaluation does, to
``OUT_DIR/<kind>-<optimizer>-logits.npy``; every process leaves its
bookkeeping in ``INFO_DIR/rank<rank>.json``. The backend is whatever
``KERAS_BACKEND`` says; devices come from ``SOFTPROMPT_CPU_DEVICES`` or
torchrun, through the backends package only.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

STEPS = 5
BATCH = 8
SOURCE_LEN = 7
TARGET_LEN = 5
VOCAB = 96  # even, so that a 2-way model axis splits the embeddings


def global_batch(step: int):
    """One deterministic global batch whose rows hold different numbers of target tokens."""
    rng = np.random.default_rng(100 + step)
    tokens = rng.integers(3, VOCAB, size=(BATCH, SOURCE_LEN)).astype("int32")
    source_len = rng.integers(2, SOURCE_LEN + 1, size=BATCH)
    source_mask = (np.arange(SOURCE_LEN)[None] < source_len[:, None]).astype("int32")
    labels = rng.integers(3, VOCAB, size=(BATCH, TARGET_LEN)).astype("int32")
    target_len = rng.integers(1, TARGET_LEN + 1, size=BATCH)
    target_mask = (np.arange(TARGET_LEN)[None] < target_len[:, None]).astype("int32")
    decoder_in = np.concatenate([np.zeros((BATCH, 1), "int32"), labels[:, :-1]], axis=1)
    x = {
        "encoder_token_ids": tokens * source_mask,
        "encoder_padding_mask": source_mask,
        "decoder_token_ids": decoder_in * target_mask,
        "decoder_padding_mask": target_mask,
    }
    return x, labels * target_mask, target_mask.astype("float32")


def train(adapter, out_dir: str, spec: str, opt: str) -> dict:
    import keras

    from softprompt import PromptedT5
    from softprompt.core.pretraining.scratch import build_backbone
    from softprompt.core.training.adafactor import Adafactor

    start = time.perf_counter()
    kind, _, mesh = spec.partition(":")
    dist = adapter.distribute(kind, mesh=mesh or None)
    adapter.seed(0)
    batches = [global_batch(step) for step in range(STEPS)]
    with dist.scope():
        backbone = build_backbone(VOCAB, "test", "t5.1.1", seed=0)
        model = PromptedT5(backbone, prompt_length=4, init="uniform", seed=0)
        dist.prepare(model)
        initial = np.asarray(model.prompt.embeddings.numpy())
        if opt == "sgd":
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
            losses = [float(np.asarray(model.train_on_batch(*dist.shard_batch(*b))))
                      for b in batches]
        else:
            model.compile(optimizer=Adafactor())
            history = model.fit(dist.dataset(batches), epochs=1, shuffle=False, verbose=0)
            losses = history.history["loss"]
        prompt = np.asarray(model.prompt.embeddings.numpy())
        # Inference inside the scope, as evaluation during training does it.
        logits = np.asarray(keras.ops.convert_to_numpy(model(batches[0][0])))
        if dist.is_writer:
            np.save(os.path.join(out_dir, f"{kind}-{opt}.npy"), prompt)
            np.save(os.path.join(out_dir, f"{kind}-{opt}-logits.npy"), logits)
        dist.barrier()
    dist.close()
    return {
        "spec": spec, "optimizer": opt, "kind": dist.kind, "replicas": dist.num_replicas,
        "processes": dist.num_processes, "rank": dist.rank, "writer": dist.is_writer,
        "losses": losses, "moved": float(np.abs(prompt - initial).max()),
        "sharded": sharded_variables(model), "prompt_devices": prompt_devices(model),
        "seconds": round(time.perf_counter() - start, 2),
    }


def sharded_variables(model) -> list[str]:
    """Paths of variables whose local pieces are smaller than the whole (JAX arrays only)."""
    out = []
    for v in model.weights:
        shards = getattr(v.value, "addressable_shards", None)
        if shards and tuple(shards[0].data.shape) != tuple(v.shape):
            out.append(v.path)
    return out


def prompt_devices(model) -> int | None:
    """How many devices hold the prompt (JAX arrays only)."""
    sharding = getattr(model.prompt.embeddings.value, "sharding", None)
    return None if sharding is None else len(sharding.device_set)


def main(argv: list[str]) -> None:
    from softprompt import backends

    out_dir, info_dir, *specs = argv
    adapter = backends.current()
    adapter.configure()  # SOFTPROMPT_CPU_DEVICES from the environment
    runs = []
    for spec in specs:
        spec, _, only = spec.partition("@")
        for opt in (only,) if only else ("sgd", "adafactor"):
            runs.append(train(adapter, out_dir, spec, opt))
    info = {"backend": adapter.name, "devices": len(adapter.devices()), "runs": runs}
    with open(os.path.join(info_dir, f"rank{runs[0]['rank']}.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main(sys.argv[1:])
