"""Convert a Hugging Face T5 checkpoint directory into a keras-hub T5 preset.

The source is what ``save_pretrained`` writes for ``T5ForConditionalGeneration``
(or ``MT5ForConditionalGeneration``): ``config.json``, the weights as
``model.safetensors``, sharded safetensors with ``model.safetensors.index.json``,
or ``pytorch_model.bin`` (read as plain tensors, never an arbitrary unpickle:
`softprompt.core.interop.hf_checkpoint`), and the sentencepiece model ``spiece.model``. The output is
a keras-hub preset directory that ``keras_hub.models.T5Backbone.from_preset``,
``keras_hub.models.T5Tokenizer.from_preset`` and ``PromptedT5.from_preset`` load.

How Hugging Face's T5 maps onto keras-hub's `T5Backbone`:

- Linear weights ``(out, in)`` become Dense kernels ``(in, out)`` (transposed).
- ``feed_forward_proj``: ``relu`` (T5 1.0) has one ``wi``; ``gated-gelu``
  (T5 1.1, LM-adapted, Flan, mT5) has ``wi_0`` (activated, tanh-approximate
  GELU) -> ``input_projector`` and ``wi_1`` (linear) -> ``gate_projector``.
- The LM head: T5 1.0 ties it to the input embedding and scales the decoder
  output by ``d_model**-0.5`` -> a tied keras-hub backbone (our model applies
  the same scale). T5 1.1 has its own ``lm_head`` and no scale -> an untied
  backbone whose reverse embedding is ``lm_head.T``. transformers 5 writes
  every T5 config with ``tie_word_embeddings: true`` and records the scale
  separately in ``scale_decoder_outputs``; a head that is the input embedding
  but is NOT scaled is therefore stored untied (a copy of the embedding).
- The relative attention bias lives in layer 0 of each stack, 32 buckets,
  maximum distance 128: keras-hub fixes both, other values are refused.

Example:
    >>> from softprompt.core.interop.hf_t5 import convert_hf_t5
    >>> convert_hf_t5("path/to/t5-base-lm-adapt", "./my-t5-base-lm-adapt")
    >>> backbone = keras_hub.models.T5Backbone.from_preset("./my-t5-base-lm-adapt")
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import keras
import keras_hub
import numpy as np
from keras_hub.src.utils.keras_utils import gelu_approximate

from softprompt.core.interop.hf_checkpoint import (
    RELATIVE_BUCKETS,
    check_checkpoint,
    open_checkpoint,
)
from softprompt.core.io.atomic import atomic_directory
from softprompt.core.io.json_files import read_directory_json, read_object_or_nothing

#: Written into a converted preset directory beside keras-hub's files.
CONVERSION_FILE = "conversion.json"

_ACCEPTED_MODEL_TYPES = ("t5", "mt5")  # mT5 is the T5 1.1 architecture with another vocabulary.
#: HF activation name (``dense_act_fn``) -> keras activation name.
_ACTIVATIONS = {
    "relu": "relu",
    "gelu_new": "gelu_approximate",  # what HF's "gated-gelu" means: the tanh approximation
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu": "gelu",  # exact (erf) GELU
    "silu": "silu",
    "swish": "silu",
}
_RELATIVE_MAX_DISTANCE = 128
# --------------------------------------------------------------------------- config


def read_hf_config(src: str | os.PathLike) -> dict:
    """Read ``config.json`` of a Hugging Face T5 directory and turn it into backbone arguments.

    Returns a dict with the `keras_hub.models.T5Backbone` keyword arguments
    (``activation`` as a name: ``"relu"``, ``"gelu_approximate"``, ...) plus
    ``scale_decoder_outputs`` (whether HF scales the decoder output by
    ``d_model**-0.5`` before the LM head). Raises `FileNotFoundError` when the
    directory or its config is missing and `ValueError`, one line, for a model
    the backbone cannot express.
    """
    config = read_directory_json(src, "config.json", "Hugging Face model")
    return backbone_args(config, where=str(Path(src) / "config.json"))


def _number(config: dict, key: str, where: str, kind=int, default=None, minimum=1):
    """``config[key]`` as a `kind` no smaller than `minimum` (`default` when absent), or a
    one-line `ValueError` naming the key and its value."""
    value = config.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"{where}: missing {key!r}")
        return default
    fine = (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= minimum
            and (kind is float or float(value).is_integer()))
    if not fine:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{where}: {key}={value!r:.40} must be {what} of at least {minimum}")
    return kind(value)


def backbone_args(config: dict, where: str = "config") -> dict:
    """Map a Hugging Face T5 config dict to `T5Backbone` arguments (see `read_hf_config`)."""
    model_type = config.get("model_type")
    if model_type == "umt5":
        raise ValueError(
            f"{where}: umt5 is not supported: it has a relative attention bias in every layer, "
            "keras-hub's T5Backbone has one per stack"
        )
    if model_type not in _ACCEPTED_MODEL_TYPES:
        raise ValueError(
            f"{where}: model_type {model_type!r} is not a T5 model "
            f"(expected one of {', '.join(_ACCEPTED_MODEL_TYPES)})"
        )

    num_layers = _number(config, "num_layers", where)
    num_decoder_layers = _number(config, "num_decoder_layers", where, default=num_layers)
    if num_decoder_layers != num_layers:
        raise ValueError(
            f"{where}: num_decoder_layers={num_decoder_layers} differs from num_layers={num_layers}; "
            "keras-hub's T5Backbone has one layer count for both stacks"
        )
    buckets = _number(config, "relative_attention_num_buckets", where, default=RELATIVE_BUCKETS)
    if buckets != RELATIVE_BUCKETS:
        raise ValueError(
            f"{where}: relative_attention_num_buckets={buckets} is not supported "
            f"(keras-hub's T5Backbone fixes {RELATIVE_BUCKETS})"
        )
    distance = _number(config, "relative_attention_max_distance", where,
                       default=_RELATIVE_MAX_DISTANCE)
    if distance != _RELATIVE_MAX_DISTANCE:
        raise ValueError(
            f"{where}: relative_attention_max_distance={distance} is not supported "
            f"(keras-hub's T5Backbone fixes {_RELATIVE_MAX_DISTANCE})"
        )

    # The feed-forward block, derived exactly as transformers' T5Config does.
    proj = str(config.get("feed_forward_proj", "relu"))
    parts = proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ValueError(f"{where}: feed_forward_proj {proj!r} is not 'ACT' or 'gated-ACT'")
    gated = parts[0] == "gated"
    act = "gelu_new" if proj == "gated-gelu" else parts[-1]
    if "is_gated_act" in config and bool(config["is_gated_act"]) != gated:
        raise ValueError(
            f"{where}: is_gated_act={config['is_gated_act']} contradicts feed_forward_proj={proj!r}"
        )
    if config.get("dense_act_fn") not in (None, act):
        raise ValueError(
            f"{where}: dense_act_fn={config['dense_act_fn']!r} contradicts "
            f"feed_forward_proj={proj!r} (which means {act!r})"
        )
    if act not in _ACTIVATIONS:
        raise ValueError(
            f"{where}: activation {act!r} is not supported "
            f"(expected one of {', '.join(sorted(_ACTIVATIONS))})"
        )

    # transformers < 5 scales iff the head is tied; transformers 5 always ties in the config
    # and keeps the old meaning in `scale_decoder_outputs`. Its mT5 never scales (every
    # released mT5 has a separate, unscaled head).
    scale = config.get("scale_decoder_outputs")
    if scale is None:
        scale = model_type == "t5" and config.get("tie_word_embeddings", True) is not False

    hidden_dim = _number(config, "d_model", where)
    num_heads = _number(config, "num_heads", where)
    dropout = _number(config, "dropout_rate", where, float, 0.1, minimum=0)
    if dropout >= 1:
        raise ValueError(f"{where}: dropout_rate={dropout} must be below 1")
    return dict(
        vocabulary_size=_number(config, "vocab_size", where),
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=_number(config, "d_ff", where),
        key_value_dim=_number(config, "d_kv", where, default=max(hidden_dim // num_heads, 1)),
        dropout=dropout,
        activation=_ACTIVATIONS[act],
        use_gated_activation=gated,
        layer_norm_epsilon=_number(config, "layer_norm_epsilon", where, float, 1e-6,
                                   minimum=0),
        scale_decoder_outputs=bool(scale),
    )


# --------------------------------------------------------------------------- mapping


def _assignments(backbone, num_layers: int, gated: bool) -> Iterator[tuple[str, object, bool]]:
    """(HF tensor name, keras variable, transpose?) for every backbone weight but the LM head."""
    yield "shared.weight", backbone.token_embedding.embeddings, False

    def attention(prefix, layer):
        yield f"{prefix}.q.weight", layer.query_projector.kernel, True
        yield f"{prefix}.k.weight", layer.key_projector.kernel, True
        yield f"{prefix}.v.weight", layer.value_projector.kernel, True
        yield f"{prefix}.o.weight", layer.output_projector.kernel, True
        if layer.use_relative_attention_bias:
            yield f"{prefix}.relative_attention_bias.weight", layer.relative_attention_bias, False

    def feed_forward(prefix, layer):
        ff = f"{prefix}.DenseReluDense"
        if gated:
            yield f"{ff}.wi_0.weight", layer.input_projector.kernel, True  # activated
            yield f"{ff}.wi_1.weight", layer.gate_projector.kernel, True  # linear
        else:
            yield f"{ff}.wi.weight", layer.input_projector.kernel, True
        yield f"{ff}.wo.weight", layer.output_projector.kernel, True
        yield f"{prefix}.layer_norm.weight", layer.layer_norm.weight, False

    stacks = (
        ("encoder", backbone.encoder_transformer_layers, backbone.encoder_layer_norm),
        ("decoder", backbone.decoder_transformer_layers, backbone.decoder_layer_norm),
    )
    for stack, layers, final_norm in stacks:
        assert len(layers) == num_layers
        for i, layer in enumerate(layers):
            block = f"{stack}.block.{i}.layer"
            yield from attention(f"{block}.0.SelfAttention", layer.self_attention)
            yield f"{block}.0.layer_norm.weight", layer.self_attention_layer_norm.weight, False
            if stack == "decoder":
                yield from attention(f"{block}.1.EncDecAttention", layer.cross_attention)
                yield f"{block}.1.layer_norm.weight", layer.cross_attention_layer_norm.weight, False
            yield from feed_forward(f"{block}.{2 if stack == 'decoder' else 1}", layer)
        yield f"{stack}.final_layer_norm.weight", final_norm.weight, False


def _activation(name: str):
    if name == "gelu_approximate":
        return gelu_approximate
    return name


def load_hf_t5(src: str | os.PathLike, dtype: str | None = None):
    """Build a keras-hub `T5Backbone` holding the weights of the HF T5 directory `src`.

    Returns ``(backbone, info)``; ``info`` has ``tied`` (whether the backbone
    ties its LM head to the embedding, i.e. the T5 1.0 scaled head),
    ``name_or_path``, ``model_type``, ``feed_forward_proj``,
    ``scale_decoder_outputs``, ``weights`` (the checkpoint kind) and the sizes.

    Example:
        >>> backbone, info = load_hf_t5("checkpoints/t5-small")
    """
    src = Path(src)
    args = read_hf_config(src)
    config = json.loads((src / "config.json").read_text())
    checkpoint = open_checkpoint(src)
    try:
        check_checkpoint(checkpoint, args)
        scale = args.pop("scale_decoder_outputs")
        embedding = checkpoint.get("shared.weight")
        head = checkpoint.get("lm_head.weight") if "lm_head.weight" in checkpoint else None
        shares_embedding = head is None or np.array_equal(head, embedding)
        # keras-hub's tied head is the embedding with the hidden states scaled by d**-0.5
        # (in our model and in keras-hub's Seq2SeqLM), which is T5 1.0's head exactly.
        tied = bool(scale and shares_embedding)
        if not tied:
            head = embedding if head is None else head
            if scale:  # a separate head that HF still scales: fold the scale into it
                head = head * np.float32(args["hidden_dim"] ** -0.5)
        del embedding
        backbone = keras_hub.models.T5Backbone(
            **{**args, "activation": _activation(args["activation"])},
            tie_embedding_weights=tied,
            dtype=dtype,
        )
        filled = set()
        for key, variable, transpose in _assignments(
            backbone, args["num_layers"], args["use_gated_activation"]
        ):
            value = checkpoint.get(key)
            variable.assign(keras.ops.cast(value.T if transpose else value, variable.dtype))
            filled.add(id(variable))
        if not tied:
            variable = backbone.token_embedding.reverse_embeddings
            variable.assign(keras.ops.cast(head.T, variable.dtype))
            filled.add(id(variable))
        left = [w.path for w in backbone.weights if id(w) not in filled]
        if left:  # keras-hub changed its T5 layout: never hand out random weights silently
            raise RuntimeError(f"converter does not fill T5Backbone weights {', '.join(left)}")
    finally:
        checkpoint.close()
    info = dict(
        tied=tied,
        # transformers 5 no longer writes _name_or_path; the source path then loads the same model.
        name_or_path=config.get("_name_or_path") or str(src.resolve()),
        model_type=config.get("model_type"),
        feed_forward_proj=config.get("feed_forward_proj", "relu"),
        scale_decoder_outputs=scale,
        weights=checkpoint.kind,
        **{k: args[k] for k in ("num_layers", "hidden_dim", "num_heads", "vocabulary_size")},
    )
    return backbone, info


# --------------------------------------------------------------------------- preset


def convert_hf_t5(src: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                  dtype: str | None = None) -> Path:
    """Convert the Hugging Face T5 directory `src` into the keras-hub preset directory `out`.

    Writes the backbone (``config.json``, ``model.weights.h5``), the tokenizer
    (``tokenizer.json``, ``assets/tokenizer/vocabulary.spm``, copied from
    ``spiece.model``), keras-hub's ``metadata.json`` and ``conversion.json``
    (where it came from). The directory appears complete or not at all; an
    existing non-empty `out` is an error unless ``overwrite=True``.

    Args:
        src: a directory written by transformers' ``save_pretrained`` for T5.
        out: the preset directory to create.
        overwrite: replace `out` if it exists and is not empty.
        dtype: the backbone's dtype policy (default: keras' float32).

    Returns:
        `out` as a `Path`.

    Example:
        >>> convert_hf_t5("path/to/t5-base-lm-adapt", "./my-t5-base-lm-adapt")
        >>> model = PromptedT5.from_preset("./my-t5-base-lm-adapt", prompt_length=100)
    """
    src, out = Path(src), Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output directory {out} is not empty (use overwrite=True / --overwrite)")
    args = read_hf_config(src)  # fail on the config before touching the weights
    spiece = src / "spiece.model"
    if not spiece.is_file():
        raise FileNotFoundError(
            f"{src} has no spiece.model: the keras-hub tokenizer needs the sentencepiece model"
        )
    try:
        tokenizer = keras_hub.models.T5Tokenizer(proto=spiece.read_bytes())
    except Exception:  # noqa: BLE001 - sentencepiece/tf raise assorted types
        raise ValueError(f"{spiece} is not a readable sentencepiece model") from None
    if tokenizer.vocabulary_size() > args["vocabulary_size"]:
        raise ValueError(
            f"spiece.model has {tokenizer.vocabulary_size()} pieces but the model embeds only "
            f"vocab_size={args['vocabulary_size']}"
        )
    backbone, info = load_hf_t5(src, dtype=dtype)

    with atomic_directory(out) as tmp:
        backbone.save_to_preset(str(tmp))
        tokenizer.save_to_preset(str(tmp))
        record = {k: v for k, v in info.items() if k != "tied"}
        record.update(source=str(src.resolve()), tie_embedding_weights=info["tied"])
        (tmp / CONVERSION_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    return out


def conversion_record(preset: str | os.PathLike) -> dict:
    """The ``conversion.json`` of a converted preset directory ({} when there is none)."""
    return read_object_or_nothing(preset, CONVERSION_FILE)
