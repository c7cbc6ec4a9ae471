"""The tensors of a Hugging Face T5 checkpoint: finding them, reading them, checking them.

A checkpoint is ``model.safetensors``, sharded safetensors with
``model.safetensors.index.json``, or ``pytorch_model.bin`` (read as plain tensors,
never an arbitrary unpickle: `softprompt.core.interop.weights`). `check_checkpoint`
compares the tensors with those the config's T5 needs before any weight is used.

Example:
    >>> checkpoint = open_checkpoint("checkpoints/t5-small")
    >>> check_checkpoint(checkpoint, read_hf_config("checkpoints/t5-small"))
    >>> checkpoint.get("shared.weight").shape
    (32128, 512)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from softprompt.core.interop.weights import open_weights

#: keras-hub's T5 fixes the relative attention buckets (and their maximum distance, 128).
RELATIVE_BUCKETS = 32
#: Tensors HF writes or tolerates that the network does not use.
IGNORED = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
)


class Checkpoint:
    """Lazy, read-only access to the tensors of a HF checkpoint (one file or shards).

    ``keys()``, ``shape(key)`` read only headers; ``get(key)`` returns one tensor
    as a float32 numpy array. Use `open_checkpoint` to find the files.
    """

    def __init__(self, files: dict[str, Path], kind: str, opened: dict | None = None):
        self.kind = kind  # "safetensors" | "bin"
        self._key_file = files
        self._open: dict[Path, object] = dict(opened or {})

    def keys(self) -> list[str]:
        return list(self._key_file)

    def __contains__(self, key) -> bool:
        return key in self._key_file

    def _weights(self, key):
        path = self._key_file[key]
        if path not in self._open:
            self._open[path] = open_weights(path, self.kind)
        return self._open[path]

    def shape(self, key: str) -> tuple[int, ...]:
        return self._weights(key).shape(key)

    def get(self, key: str) -> np.ndarray:
        return self._weights(key).get(key)

    def close(self):
        self._open.clear()


def open_checkpoint(src: str | os.PathLike) -> Checkpoint:
    """Find the weights in a HF model directory: safetensors (one file or sharded), else .bin."""
    src = Path(src)
    for name, kind in (("model.safetensors", "safetensors"), ("pytorch_model.bin", "bin")):
        single, index = src / name, src / f"{name}.index.json"
        if single.is_file():
            weights = open_weights(single, kind)
            return Checkpoint({k: single for k in weights.keys()}, kind, {single: weights})
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{index} is not a valid index (no 'weight_map')") from None
            files = {}
            for key, shard in weight_map.items():
                path = src / shard
                if not path.is_file():
                    raise FileNotFoundError(f"{index} names shard {shard}, which is missing")
                files[key] = path
            return Checkpoint(files, kind)
    others = sorted(
        p.name for p in src.iterdir() if p.name in ("tf_model.h5", "flax_model.msgpack")
    )
    hint = (
        f" (found {', '.join(others)}: re-save it with transformers' "
        "T5ForConditionalGeneration.from_pretrained(SRC, from_tf=True or from_flax=True)"
        ".save_pretrained(DIR))"
        if others
        else ""
    )
    raise FileNotFoundError(
        f"{src} has no model.safetensors, sharded safetensors index or pytorch_model.bin{hint}"
    )


def expected_tensors(args: dict) -> dict[str, tuple[int, ...]]:
    """HF tensor name -> shape, for the network `args` describes (LM head excluded)."""
    d, ff, v = args["hidden_dim"], args["intermediate_dim"], args["vocabulary_size"]
    inner = args["num_heads"] * args["key_value_dim"]
    shapes = {"shared.weight": (v, d)}

    def attention(prefix, with_bias):
        for name in "qkv":
            shapes[f"{prefix}.{name}.weight"] = (inner, d)
        shapes[f"{prefix}.o.weight"] = (d, inner)
        if with_bias:
            shapes[f"{prefix}.relative_attention_bias.weight"] = (RELATIVE_BUCKETS, args["num_heads"])

    def feed_forward(prefix):
        names = ("wi_0", "wi_1") if args["use_gated_activation"] else ("wi",)
        for name in names:
            shapes[f"{prefix}.DenseReluDense.{name}.weight"] = (ff, d)
        shapes[f"{prefix}.DenseReluDense.wo.weight"] = (d, ff)
        shapes[f"{prefix}.layer_norm.weight"] = (d,)

    for stack in ("encoder", "decoder"):
        for i in range(args["num_layers"]):
            block = f"{stack}.block.{i}.layer"
            attention(f"{block}.0.SelfAttention", i == 0)
            shapes[f"{block}.0.layer_norm.weight"] = (d,)
            if stack == "decoder":
                attention(f"{block}.1.EncDecAttention", False)
                shapes[f"{block}.1.layer_norm.weight"] = (d,)
            feed_forward(f"{block}.{2 if stack == 'decoder' else 1}")
        shapes[f"{stack}.final_layer_norm.weight"] = (d,)
    return shapes


def check_checkpoint(checkpoint: Checkpoint, args: dict) -> None:
    """Raise a one-line `ValueError` for missing, misshapen or unexpected tensors."""
    expected = expected_tensors(args)
    keys = set(checkpoint.keys())
    ff_names = {k.rsplit(".", 2)[-2] for k in keys if ".DenseReluDense.wi" in k}
    if args["use_gated_activation"] and "wi" in ff_names:
        raise ValueError(
            "config.json says the feed-forward block is gated (wi_0, wi_1) but the checkpoint "
            "holds an ungated one (wi)"
        )
    if not args["use_gated_activation"] and ff_names & {"wi_0", "wi_1"}:
        raise ValueError(
            "config.json says the feed-forward block is ungated (wi) but the checkpoint "
            "holds a gated one (wi_0, wi_1)"
        )
    missing = [k for k in expected if k not in keys]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(
            f"checkpoint lacks {len(missing)} tensor(s) T5 needs: {', '.join(missing[:3])}{more}"
        )
    expected["lm_head.weight"] = expected["shared.weight"]
    for key, shape in expected.items():
        if key in keys and checkpoint.shape(key) != shape:
            raise ValueError(
                f"tensor {key} has shape {checkpoint.shape(key)}, expected {shape} from config.json"
            )
    unexpected = sorted(keys - set(expected) - set(IGNORED))
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise ValueError(
            f"checkpoint has {len(unexpected)} tensor(s) a T5 of this config does not have: "
            f"{', '.join(unexpected[:3])}{more}"
        )
