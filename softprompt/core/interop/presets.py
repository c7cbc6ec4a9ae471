"""Where a preset name points: keras-hub names, local dirs, and presets shipped with softprompt.

A preset converted from a Hugging Face checkpoint (`softprompt.core.interop.hf_t5`)
records where it came from in ``conversion.json`` (`hf_t5.conversion_record`); a model-tuned
preset how it was trained and evaluated in ``softprompt.json`` (`training_record`).
The larger members of the embedded family (``softprompt_small``, ``softprompt_base``)
are built into softprompt's cache (`cache_dir`) and resolve by name from there.

Example:
    >>> resolve_preset("softprompt_tiny")   # a directory inside the installed package
    >>> resolve_preset("softprompt_base")   # built into the cache by build_embedded.py
    >>> resolve_preset("./my_preset")       # a local directory, checked to exist
    >>> resolve_preset("hf://google/t5-base-lm-adapt")  # a Hugging Face T5, converted once
    >>> resolve_preset("t5_base_multi")     # left to keras-hub (built-in / kaggle:// / hf://)
"""

from __future__ import annotations

import os
from pathlib import Path

from softprompt.core.interop.cache import cache_dir
from softprompt.core.io.json_files import read_object_or_nothing

PACKAGE_PRESETS = Path(__file__).resolve().parents[2] / "presets"
#: Written into a model-tuned preset: how it was trained and evaluated.
TRAINING_FILE = "softprompt.json"
#: The names of softprompt's own presets (shipped or built into the cache).
OWN_PREFIX = "softprompt_"


def embedded_presets() -> dict[str, Path]:
    """softprompt's own presets by name: built into the cache, and shipped in the package."""
    found = {}
    for folder in (cache_dir() / "presets", PACKAGE_PRESETS):
        if folder.is_dir():
            found.update({p.name: p for p in sorted(folder.iterdir())
                          if p.name.startswith(OWN_PREFIX) and (p / "config.json").is_file()})
    return found


def _keras_hub_names() -> set[str]:
    # Only names that are neither embedded nor local need keras-hub (and with it TensorFlow).
    import keras_hub

    try:
        return set(keras_hub.models.T5Backbone.presets)
    except Exception:  # noqa: BLE001 - an old keras-hub without the registry
        return set()


def resolve_preset(preset: str | os.PathLike) -> str:
    """Return what to hand keras-hub's ``from_preset`` for `preset`.

    A Hugging Face T5 (``hf://ORG/NAME`` or a transformers folder) becomes the
    keras-hub preset converted from it in softprompt's cache
    (`softprompt.core.interop.hf_hub.resolve_hf_t5`).

    Raises `FileNotFoundError` (one line) for a local path that does not exist
    or is not a preset directory, `ValueError` for a Hugging Face checkpoint
    that cannot be fetched or is not a T5.
    """
    from softprompt.core.interop.hf_hub import resolve_hf_t5

    text = str(preset)
    embedded = embedded_presets()
    if text in embedded:
        return str(embedded[text])
    converted = resolve_hf_t5(text)
    if converted is not None:
        return str(converted)
    if "://" in text or text in _keras_hub_names():
        return text
    path = Path(text).expanduser()
    if not path.exists() and text.startswith(OWN_PREFIX) and "/" not in text:
        size = text[len(OWN_PREFIX):]
        raise FileNotFoundError(
            f"preset {text!r} is not built yet: build it into {cache_dir() / 'presets'} with "
            f"`python scripts/build_embedded.py --size {size}` (docs/comparison.md)")
    if not path.exists():
        known = ", ".join(sorted(embedded)) or "none"
        raise FileNotFoundError(
            f"preset {text!r} is neither a local directory nor a known preset "
            f"(embedded: {known}; keras-hub T5 names; kaggle:// or hf:// handles)"
        )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise FileNotFoundError(f"preset directory {text} has no config.json (not a keras-hub preset)")
    return str(path)


def training_record(preset: str | os.PathLike) -> dict:
    """The ``softprompt.json`` of a model-tuned preset ({} when there is none).

    Example:
        >>> training_record("runs/mt/best")["metrics"]
        {'accuracy': 71.5, 'f1_multiclass': 70.9}
    """
    return read_object_or_nothing(preset, TRAINING_FILE)
