"""The options of `softprompt adapt` (`AdaptConfig`), their defaults and their checks.

Free of keras, so that the command line reads its defaults and choices from here.

Example:
    >>> AdaptConfig(out="my_t5", corpus=["wiki.txt"], from_config="tiny").peak_lr
    0.002
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from softprompt.core.pretraining import scratch

OPTIMIZERS = ("adam", "adafactor")
VOCAB_MODELS = scratch.MODEL_TYPES
#: Default peak learning rate per optimizer.
DEFAULT_LR = {"adam": 2e-3, "adafactor": 1e-2}
#: Options a resumed run may change.
RESUMABLE_CHANGES = ("steps",)


@dataclasses.dataclass
class AdaptConfig:
    """The options of one adaptation run.

    Args:
        out: the preset directory to write.
        corpus: corpus files (see the module docs).
        preset: the starting model (a preset `PromptedT5.from_preset` accepts).
        from_config: or start from random weights: a name in
            `softprompt.core.pretraining.scratch.CONFIGS` (``tiny``, ``small``, ...) or a
            dict of `T5Backbone` sizes (``hidden_dim``, ``num_layers``, ...).
        style: ``t5.1.1`` (gated GELU, untied) or ``t5.1.0`` (relu, tied),
            with `from_config`.
        vocab_size: sentencepiece vocabulary trained on the corpus, with
            `from_config` (a small corpus may give fewer pieces).
        vocab_model: the sentencepiece algorithm: ``unigram`` (T5's) or
            ``bpe``. On a tiny synthetic language sentencepiece's unigram
            trainer stops at a few dozen sub-word pieces; BPE keeps words whole.
        steps: optimizer steps in total.
        batch_size: examples per step.
        lr: peak learning rate (default per optimizer, `DEFAULT_LR`).
        optimizer: ``adam`` or ``adafactor``.
        warmup_steps: linear warm-up (default: min(1000, steps // 10)).
        max_input_length, max_target_length: token limits (prefixes keep
            their last tokens, targets their first).
        dropout: the backbone's dropout rate while training (the preset keeps
            its own rate otherwise; 0 for `from_config`).
        eval_every: steps between held-out evaluations and checkpoints.
        seed: seeds the vocabulary, the weights and the data order.
        workdir: the run directory (default ``<out>.adapt``).
    """

    out: str
    corpus: list = dataclasses.field(default_factory=list)
    preset: str | None = None
    from_config: str | dict | None = None
    style: str = "t5.1.1"
    vocab_size: int = 1000
    vocab_model: str = "unigram"
    steps: int = 10000
    batch_size: int = 64
    lr: float | None = None
    optimizer: str = "adam"
    warmup_steps: int | None = None
    max_input_length: int = 128
    max_target_length: int = 64
    dropout: float | None = None
    eval_every: int = 500
    seed: int = 0
    workdir: str | None = None

    def validate(self) -> AdaptConfig:
        """Raise a one-line `ValueError` for a bad option; return self."""
        for name in ("steps", "batch_size", "max_input_length", "max_target_length",
                     "eval_every", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_input_length < 2 or self.max_target_length < 2:
            raise ValueError("max_input_length and max_target_length must be at least 2")
        if self.warmup_steps is not None and (
                not isinstance(self.warmup_steps, int) or self.warmup_steps < 0):
            raise ValueError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if self.vocab_model not in VOCAB_MODELS:
            raise ValueError(f"unknown vocabulary model {self.vocab_model!r}: expected unigram or bpe")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: expected adam or adafactor")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if (self.preset is None) == (self.from_config is None):
            raise ValueError("give exactly one of a preset to adapt or --from-config "
                             "(tiny, small, ...) to start from random weights")
        if isinstance(self.from_config, str) and self.from_config not in scratch.CONFIGS:
            raise ValueError(f"unknown config {self.from_config!r}: expected one of "
                             f"{', '.join(scratch.CONFIGS)} (or a dict of T5Backbone sizes)")
        if self.style not in scratch.STYLES:
            raise ValueError(f"unknown T5 style {self.style!r}: expected one of "
                             f"{', '.join(scratch.STYLES)}")
        if not self.corpus:
            raise ValueError("no corpus given: name one or more text or JSONL files")
        for path in self.corpus:
            p = Path(path)
            if not p.exists():
                raise FileNotFoundError(f"corpus file {path} does not exist")
            if not p.is_file():
                raise ValueError(f"corpus path {path} is not a file")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.workdir) if self.workdir else Path(str(self.out).rstrip("/") + ".adapt")

    @property
    def peak_lr(self) -> float:
        return float(self.lr if self.lr is not None else DEFAULT_LR[self.optimizer])

    @property
    def warmup(self) -> int:
        return int(self.warmup_steps if self.warmup_steps is not None
                   else min(1000, self.steps // 10))


    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["corpus"] = [str(p) for p in self.corpus]
        return values
