"""Convert a Hugging Face T5 checkpoint directory into a keras-hub T5 preset.

The source is what ``save_pretrained`` writes for ``T5ForConditionalGeneration``
(or ``MT5ForConditionalGeneration``): ``config.json``, the weights as
``model.safetensors``, sharded safetensors with ``model.safetensors.index.json``,
or ``pytorch_model.bin`` (read with ``torch.load(weights_only=True)``; never an
arbitrary unpickle), and the sentencepiece model ``spiece.model``. The output is
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
    >>> from softprompt.core.convert_hf import convert_hf_t5
    >>> convert_hf_t5("checkpoints/t5-base-lm-adapt", "presets/t5-base-lm-adapt")
    >>> backbone = keras_hub.models.T5Backbone.from_preset("presets/t5-base-lm-adapt")
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: Written into the preset directory beside keras-hub's files.
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
_RELATIVE_BUCKETS = 32
_RELATIVE_MAX_DISTANCE = 128
#: Tensors HF writes or tolerates that the network does not use.
_IGNORED = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
)


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
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"Hugging Face model directory {src} does not exist")
    path = src / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{src} has no config.json: not a Hugging Face model directory")
    try:
        config = json.loads(path.read_bytes().decode("utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno})") from None
    except (ValueError, RecursionError) as err:  # not UTF-8, nested too deeply, huge numbers
        raise ValueError(f"{path} is not valid JSON ({type(err).__name__})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} holds a {type(config).__name__}, expected a JSON object")
    return backbone_args(config, where=str(path))


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
    buckets = _number(config, "relative_attention_num_buckets", where, default=_RELATIVE_BUCKETS)
    if buckets != _RELATIVE_BUCKETS:
        raise ValueError(
            f"{where}: relative_attention_num_buckets={buckets} is not supported "
            f"(keras-hub's T5Backbone fixes {_RELATIVE_BUCKETS})"
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


# --------------------------------------------------------------------------- checkpoints


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

    def _handle(self, key):
        path = self._key_file[key]
        if path not in self._open:
            self._open[path] = _open_file(path, self.kind)
        return self._open[path]

    def shape(self, key: str) -> tuple[int, ...]:
        handle = self._handle(key)
        if self.kind == "safetensors":
            return tuple(handle.get_slice(key).get_shape())
        return tuple(handle[key].shape)

    def get(self, key: str) -> np.ndarray:
        handle = self._handle(key)
        if self.kind == "safetensors":
            if handle.get_slice(key).get_dtype() == "BF16":
                return _read_bf16(self._key_file[key], key)
            return np.asarray(handle.get_tensor(key), dtype=np.float32)
        tensor = handle[key]
        return tensor.detach().to("cpu").float().numpy()

    def close(self):
        self._open.clear()


def open_checkpoint(src: str | os.PathLike) -> Checkpoint:
    """Find the weights in a HF model directory: safetensors (one file or sharded), else .bin."""
    src = Path(src)
    for name, kind in (("model.safetensors", "safetensors"), ("pytorch_model.bin", "bin")):
        single, index = src / name, src / f"{name}.index.json"
        if single.is_file():
            handle = _open_file(single, kind)
            return Checkpoint({k: single for k in handle.keys()}, kind, {single: handle})
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


def _open_file(path: Path, kind: str):
    if kind == "safetensors":
        from safetensors import safe_open

        try:
            return safe_open(str(path), framework="np")
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"{path} is not a readable safetensors file ({err})") from None
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{path} is a PyTorch pickle: reading it needs torch (pip install torch), or convert "
            "it to safetensors first (transformers: from_pretrained(SRC).save_pretrained(DIR))"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - weights_only refusals come in several types
        raise ValueError(
            f"{path} cannot be loaded as plain tensors with torch.load(weights_only=True) ({err})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a flat dict of tensors")
    return state


def _read_bf16(path: Path, key: str) -> np.ndarray:
    """Read one bfloat16 tensor from a safetensors file (numpy has no bfloat16)."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
        info = header[key]
        start, end = info["data_offsets"]
        f.seek(8 + header_len + start)
        raw = np.frombuffer(f.read(end - start), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


# --------------------------------------------------------------------------- mapping


def _expected_tensors(args: dict) -> dict[str, tuple[int, ...]]:
    """HF tensor name -> shape, for the network `args` describes (LM head excluded)."""
    d, ff, v = args["hidden_dim"], args["intermediate_dim"], args["vocabulary_size"]
    inner = args["num_heads"] * args["key_value_dim"]
    shapes = {"shared.weight": (v, d)}

    def attention(prefix, with_bias):
        for name in "qkv":
            shapes[f"{prefix}.{name}.weight"] = (inner, d)
        shapes[f"{prefix}.o.weight"] = (d, inner)
        if with_bias:
            shapes[f"{prefix}.relative_attention_bias.weight"] = (_RELATIVE_BUCKETS, args["num_heads"])

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
    expected = _expected_tensors(args)
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
    unexpected = sorted(keys - set(expected) - set(_IGNORED))
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise ValueError(
            f"checkpoint has {len(unexpected)} tensor(s) a T5 of this config does not have: "
            f"{', '.join(unexpected[:3])}{more}"
        )


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
        from keras_hub.src.utils.keras_utils import gelu_approximate

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
    import keras
    import keras_hub

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
        >>> convert_hf_t5("checkpoints/t5-base-lm-adapt", "presets/t5-base-lm-adapt")
        >>> model = PromptedT5.from_preset("presets/t5-base-lm-adapt", prompt_length=100)
    """
    import keras_hub

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

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        backbone.save_to_preset(str(tmp))
        tokenizer.save_to_preset(str(tmp))
        record = {k: v for k, v in info.items() if k != "tied"}
        record.update(source=str(src.resolve()), tie_embedding_weights=info["tied"])
        (tmp / CONVERSION_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace_dir(new: Path, target: Path) -> None:
    """Move the finished directory `new` onto `target` (renames only; old contents dropped)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def conversion_record(preset: str | os.PathLike) -> dict:
    """The ``conversion.json`` of a converted preset directory ({} when there is none)."""
    path = Path(preset) / CONVERSION_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
