"""What a checkpoint leaves for the user: prompt files or keras-hub presets.

The loop (`softprompt.core.training.loop.Run`) is the same for every method;
what it writes at a checkpoint depends on what trained:

- `PromptFiles` (prompt tuning): ``checkpoints/step-N.npy`` with its sidecar
  (the backbone's identity, the task, the dev metrics, how they were measured),
  and ``best.npy``. Every step's file is kept (they are small).
- `PresetFiles` (model tuning, LM adaptation): ``checkpoints/step-N/``, a
  keras-hub preset (backbone + tokenizer) with the same record in
  ``softprompt.json`` (`softprompt.core.interop.presets.training_record`), and
  ``best/``. Only the committed step's and the best step's presets are kept.

The product holds the trained weights; the optimizer's state, the dropout
seeds and the loop's counters are the resume state (`softprompt.core.training.state`).
A resume restores both. Every write is atomic (a file or a whole directory).
Before a resume builds anything, ``check(out, step)`` reads a step's product
the way the restore will (`softprompt.core.training.checkpoint_recovery`), and
``prune`` keeps the steps the loop names: the committed one, the complete one
before it (the fallback for an unreadable checkpoint) and the best.

Example:
    >>> product = PresetFiles("runs/mt", model.backbone, model.tokenizer)
    >>> product.save(300, {"metrics": {"accuracy": 71.5}})
    >>> product.copy_best(300)          # runs/mt/best/, loadable by from_preset
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from softprompt.core.interop.presets import TRAINING_FILE
from softprompt.core.io.atomic import atomic_directory
from softprompt.core.io.json_files import read_directory_json
from softprompt.core.io.prompt_files import load_prompt, save_prompt
from softprompt.core.training.state import checkpoint_dir, prompt_path

#: keras-hub's weights file in a preset directory.
WEIGHTS_FILE = "model.weights.h5"


class PromptFiles:
    """The prompt of a `PromptedT5` as prompt files (`softprompt.core.io.prompt_files`)."""

    best_name = "best.npy"

    def __init__(self, out, model):
        self.out = Path(out)
        self.model = model

    @staticmethod
    def saved(out, step: int) -> Path:
        """Where the product of `step` lies in the run directory `out`."""
        return prompt_path(out, step)

    @classmethod
    def check(cls, out, step: int) -> None:
        """Read the prompt file of `step` (and its sidecar); `ValueError` or
        `FileNotFoundError` naming the file when it does not read."""
        load_prompt(cls.saved(out, step))

    def path(self, step: int) -> Path:
        return self.saved(self.out, step)

    def save(self, step: int, record: dict) -> Path:
        return self.model.save_prompt(self.path(step), **record)

    def restore(self, step: int) -> None:
        self.model.load_prompt(str(self.path(step)))

    def nbytes(self) -> int:
        """About how many bytes one product adds on disk: the array, its header and sidecar."""
        return array_bytes([self.model.prompt.embeddings]) + 4096

    def copy_best(self, step: int) -> None:
        array, meta = load_prompt(self.path(step))
        save_prompt(self.out / self.best_name, array,
                    **{k: v for k, v in meta.items() if k != "shape"})

    def prune(self, keep) -> None:
        """Prompt files stay: they are small, and each is a usable prompt."""


class PresetFiles:
    """A backbone and its tokenizer as keras-hub presets, with a training record.

    Args:
        out: the run directory.
        backbone, tokenizer: what a preset holds (the backbone's weights train).
        record_file: the record's file name in each preset.
    """

    best_name = "best"

    def __init__(self, out, backbone, tokenizer, record_file: str = TRAINING_FILE):
        self.out = Path(out)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.record_file = record_file

    @staticmethod
    def saved(out, step: int) -> Path:
        """Where the product of `step` lies in the run directory `out`."""
        return checkpoint_dir(out) / f"step-{int(step)}"

    @classmethod
    def check(cls, out, step: int) -> None:
        """Read the preset of `step` (its config and every weight array); `ValueError` or
        `FileNotFoundError` naming the file when it does not read."""
        folder = cls.saved(out, step)
        read_directory_json(folder, "config.json", "keras-hub preset")
        check_weights(folder / WEIGHTS_FILE)

    def path(self, step: int) -> Path:
        return self.saved(self.out, step)

    def save(self, step: int, record: dict) -> Path:
        return write_preset(self.path(step), self.backbone, self.tokenizer,
                            {self.record_file: record})

    def restore(self, step: int) -> None:
        weights = self.path(step) / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"checkpoint {weights} is missing: cannot resume exactly")
        self.backbone.load_weights(str(weights))

    def nbytes(self) -> int:
        """About how many bytes one product adds on disk: the weights, the tokenizer, configs."""
        return array_bytes(self.backbone.weights) + (1 << 20)

    def copy_best(self, step: int) -> None:
        with atomic_directory(self.out / self.best_name) as tmp:
            shutil.copytree(self.path(step), tmp, dirs_exist_ok=True)

    def prune(self, keep) -> None:
        """Delete the step presets other than those of the steps in `keep`."""
        keep = {self.path(s).name for s in keep if s is not None}
        for path in checkpoint_dir(self.out).glob("step-*"):
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


def array_bytes(variables) -> int:
    """The bytes of the values of `variables` (anything with ``shape`` and ``dtype``)."""
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def check_weights(path: Path) -> None:
    """Read every array of a keras weights file; `ValueError` naming it when one does not read
    (`FileNotFoundError` when it is missing)."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    try:
        with h5py.File(path, "r") as f:
            f.visititems(read)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(f"{path} is not a readable weights file ({reason})") from None


def write_preset(out, backbone, tokenizer, files: dict | None = None) -> Path:
    """Save `backbone` and `tokenizer` as a keras-hub preset at `out`, atomically.

    `files` maps extra file names to JSON records written into the preset
    (``softprompt.json``, ``adapt.json``). An existing preset at `out` is
    replaced only once the new one is complete.

    Example:
        >>> write_preset("my_t5", backbone, tokenizer, {"adapt.json": info})
    """
    out = Path(out)
    with atomic_directory(out) as tmp:
        backbone.save_to_preset(str(tmp))
        tokenizer.save_to_preset(str(tmp))
        for name, record in (files or {}).items():
            (tmp / name).write_text(json.dumps(record, indent=1, sort_keys=True,
                                               default=str) + "\n")
    return out
