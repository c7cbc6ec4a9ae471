"""Move prompts to and from PEFT prompt-tuning adapters.

A PEFT prompt-tuning adapter is a directory with ``adapter_config.json``
(``peft_type: PROMPT_TUNING``) and ``adapter_model.safetensors`` holding one
tensor, ``prompt_embeddings``, of shape ``(num_virtual_tokens *
num_transformer_submodules, token_dim)``. PEFT's default for seq2seq models is
``num_transformer_submodules: 2``: the tensor has ``2P`` rows, of which prompt
tuning feeds only the first ``P`` to the encoder (the rest is never used). We
export with ``num_transformer_submodules: 1`` (exactly ``P`` rows) and, on
import, keep the first ``P`` rows of a ``2P`` tensor and say so.

Our sidecar metadata travels inside the safetensors header (key
``softprompt``), which PEFT ignores, so ours -> PEFT -> ours keeps both the
array (bit for bit) and the backbone identity the prompt was trained on.
The official implementation's layout is `softprompt.core.interop.official`.

Example:
    >>> export_peft("runs/boolq/best.npy", "adapters/boolq")
    >>> # PeftModel.from_pretrained(T5ForConditionalGeneration.from_pretrained(...), "adapters/boolq")
    >>> path, info = import_peft("adapters/boolq", "boolq.npy")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from softprompt.backends.torch_pickle import read_torch_weights
from softprompt.core.interop.hf_t5 import conversion_record
from softprompt.core.interop.official import carried_metadata, prompt_and_meta, select_prompt
from softprompt.core.interop.weights import SafetensorsWeights
from softprompt.core.io.atomic import atomic_write
from softprompt.core.io.json_files import read_directory_json
from softprompt.core.io.prompt_files import (
    OWN_KEYS,
    check_finite,
    check_sidecar,
    save_prompt,
)

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
WEIGHTS_FILE_BIN = "adapter_model.bin"
TENSOR = "prompt_embeddings"
#: Key of our sidecar metadata inside the safetensors header.
METADATA_KEY = "softprompt"


def _base_model_name(meta: dict) -> str | None:
    """The best name for PEFT's ``base_model_name_or_path`` that the metadata offers."""
    imported = meta.get("imported_from")
    if isinstance(imported, dict) and imported.get("base_model_name_or_path"):
        return imported["base_model_name_or_path"]
    backbone = meta.get("backbone")
    preset = backbone.get("preset") if isinstance(backbone, dict) else None
    if preset:
        # A preset converted from Hugging Face names the checkpoint PEFT's T5 loads.
        record = conversion_record(preset) if Path(str(preset)).is_dir() else {}
        if str(preset).startswith("hf://"):  # hf://ORG/NAME[@REV] is ORG/NAME to transformers
            return str(preset)[len("hf://"):].split("@")[0]
        return record.get("name_or_path") or str(preset)
    return None


def export_peft(prompt, out_dir: str | os.PathLike, base_model: str | None = None,
                prompt_index: int | None = None) -> Path:
    """Write `prompt` as a PEFT prompt-tuning adapter that ``PeftModel.from_pretrained`` loads.

    Args:
        prompt: a prompt file path (its sidecar is carried along) or an array.
        out_dir: the adapter directory to write (created if needed).
        base_model: ``base_model_name_or_path`` for the config; default: the
            Hugging Face checkpoint the sidecar's preset was converted from,
            else the sidecar's preset name.
        prompt_index: which prompt of an ``(N, P, d)`` file (N > 1) to export.

    Returns:
        `out_dir` as a `Path`.

    Example:
        >>> export_peft("best.npy", "adapters/boolq")
        >>> peft_model = PeftModel.from_pretrained(t5, "adapters/boolq")
    """
    array, meta, where = prompt_and_meta(prompt)
    chosen = np.ascontiguousarray(select_prompt(array, meta, prompt_index, where))
    length, dim = chosen.shape
    config = {
        "auto_mapping": None,
        "base_model_name_or_path": base_model or _base_model_name(meta),
        "inference_mode": True,
        "modules_to_save": None,
        "num_attention_heads": None,  # PEFT fills these from the base model on load
        "num_layers": None,
        "num_transformer_submodules": 1,
        "num_virtual_tokens": int(length),
        "peft_type": "PROMPT_TUNING",
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "revision": None,
        "task_type": "SEQ_2_SEQ_LM",
        "token_dim": int(dim),
        "tokenizer_kwargs": None,
        "tokenizer_name_or_path": None,
    }
    carried = carried_metadata(meta, prompt_index)
    header = {"format": "pt", METADATA_KEY: json.dumps(carried, sort_keys=True)}
    payload = save({TENSOR: chosen}, metadata=header)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output {out_dir} exists and is not a directory")
    with atomic_write(out_dir / WEIGHTS_FILE) as f:
        f.write(payload)
    with atomic_write(out_dir / CONFIG_FILE, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    return out_dir


def read_peft(adapter_dir: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read the prompt of a PEFT prompt-tuning adapter directory.

    Returns ``(array, info)``: ``array`` is float32 ``(P, d)``; ``info`` holds
    ``num_virtual_tokens``, ``token_dim``, ``rows`` (in the file),
    ``dropped_rows`` (rows beyond P that prompt tuning never uses, e.g. PEFT's
    default seq2seq layout of 2P rows), ``task_type``,
    ``base_model_name_or_path`` and ``metadata`` (our sidecar when the adapter
    was written by `export_peft`, else ``{}``).

    Raises `FileNotFoundError` for a missing directory, config or weights and a
    one-line `ValueError` for an adapter of another type (LoRA, prefix tuning,
    ...) or a tensor of the wrong name or shape.
    """
    adapter_dir = Path(adapter_dir)
    if adapter_dir.is_file():
        raise ValueError(
            f"{adapter_dir} is a file, expected a PEFT adapter directory (official .npy prompts "
            "need no import: load them directly)"
        )
    config = read_directory_json(adapter_dir, CONFIG_FILE, "PEFT adapter")
    config_path = adapter_dir / CONFIG_FILE
    peft_type = config.get("peft_type")
    if peft_type != "PROMPT_TUNING":
        raise ValueError(
            f"{adapter_dir} is a {peft_type or 'untyped'} adapter; only PROMPT_TUNING adapters "
            "hold a soft prompt"
        )
    for key in ("num_virtual_tokens", "token_dim"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{config_path} lacks a positive integer {key!r}")
    length, dim = config["num_virtual_tokens"], config["token_dim"]

    array, header = _read_tensor(adapter_dir)
    check_finite(array, f"{adapter_dir}: {TENSOR}")
    rows = array.shape[0] if array.ndim == 2 else None
    if array.ndim != 2 or array.shape[1] != dim or rows % length or rows < length:
        raise ValueError(
            f"{adapter_dir}: {TENSOR} has shape {tuple(array.shape)}, expected "
            f"(k*{length}, {dim}) for num_virtual_tokens={length}, token_dim={dim}"
        )
    submodules = config.get("num_transformer_submodules")
    if isinstance(submodules, int) and rows != length * submodules:
        raise ValueError(
            f"{adapter_dir}: {TENSOR} has {rows} rows, expected {length * submodules} "
            f"(num_virtual_tokens={length} x num_transformer_submodules={submodules})"
        )
    metadata = {}
    if header.get(METADATA_KEY):
        try:
            metadata = json.loads(header[METADATA_KEY])
        except (ValueError, RecursionError):  # not ours, or damaged: carry nothing
            metadata = {}
        try:
            check_sidecar(metadata if isinstance(metadata, dict) else {})
        except ValueError:  # fields a prompt file could not carry: carry nothing
            metadata = {}
    info = dict(
        num_virtual_tokens=length,
        token_dim=dim,
        rows=rows,
        dropped_rows=rows - length,
        task_type=config.get("task_type"),
        base_model_name_or_path=config.get("base_model_name_or_path"),
        metadata=metadata if isinstance(metadata, dict) else {},
    )
    # Prompt tuning feeds only the first P rows to the encoder (PeftModelForSeq2SeqLM).
    return np.ascontiguousarray(array[:length]), info


def _read_tensor(adapter_dir: Path) -> tuple[np.ndarray, dict]:
    """The prompt tensor (float32) and the safetensors header metadata."""
    path = adapter_dir / WEIGHTS_FILE
    if path.is_file():
        weights = SafetensorsWeights(path)
        header = weights.metadata()
    else:
        path = adapter_dir / WEIGHTS_FILE_BIN
        if not path.is_file():
            raise FileNotFoundError(
                f"{adapter_dir} has neither {WEIGHTS_FILE} nor {WEIGHTS_FILE_BIN}")
        weights, header = read_torch_weights(path), {}
    keys = weights.keys()
    if TENSOR not in keys:
        raise ValueError(f"{path} has no {TENSOR!r} tensor (found: {', '.join(keys) or 'none'})")
    return weights.get(TENSOR), header


def import_peft(adapter_dir: str | os.PathLike, out: str | os.PathLike,
                **metadata) -> tuple[Path, dict]:
    """Write the prompt of a PEFT prompt-tuning adapter as our prompt file ``(P, d)``.

    The sidecar is the one `export_peft` carried along (when there is one),
    plus ``imported_from`` (format, directory, base model) and `metadata`.
    Returns ``(path, info)`` with `read_peft`'s ``info``; ``info["dropped_rows"]``
    tells whether rows beyond P were left out.

    Example:
        >>> path, info = import_peft("adapters/boolq", "boolq.npy")
        >>> info["dropped_rows"]      # 100 for PEFT's default seq2seq layout with P = 100
    """
    array, info = read_peft(adapter_dir)
    meta = {k: v for k, v in info["metadata"].items() if k not in OWN_KEYS}
    meta.pop("prompt_index", None)
    meta["imported_from"] = {
        "format": "peft",
        "path": str(Path(adapter_dir).resolve()),
        "base_model_name_or_path": info["base_model_name_or_path"],
        "dropped_rows": info["dropped_rows"],
    }
    meta.update(metadata)
    return save_prompt(out, array, **meta), info
