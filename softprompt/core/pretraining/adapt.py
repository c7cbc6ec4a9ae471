"""LM adaptation / pretraining of a whole keras-hub T5 (the paper's "LM adaptation" ablation).

Unlike prompt tuning, every weight of the backbone trains here. The objective
is T5's prefix LM: each text is split at a uniformly random token; the
encoder reads the prefix, the decoder predicts the continuation. A corpus may
also hold supervised ``{"inputs", "targets"}`` pairs (a multi-task mixture,
as T5's pretraining mixed tasks into its span corruption); pairs are trained
as they are.

The result is a keras-hub preset directory (``save_to_preset`` for backbone and
tokenizer, plus ``adapt.json``: the options, the corpus, the steps and the
final losses, paths relative to the working directory, see `portable_path`),
written to a temporary directory beside `out` and renamed into place, so a
crash never leaves a half-written preset.

Corpus files (one mixture source each):

- ``*.jsonl``: one JSON object a line, ``{"text": ...}`` (prefix LM) or
  ``{"inputs": ..., "targets": ...}`` (a supervised pair);
- anything else: plain text, one example a line (prefix LM).

Mixing is examples-proportional: every step draws `batch_size` examples
uniformly from all sources together (with replacement), from a generator
seeded by ``(seed, step)``. Batch ``s`` is a pure function of the corpus, the
seed and ``s``, which makes ``resume`` exact.

Optimizer (``optimizer=``):

- ``adam`` (default): Adam with global-norm clipping at 1.0 — the fastest to
  train a small model from scratch on CPU;
- ``adafactor``: `softprompt.core.training.adafactor.Adafactor` with T5's pretraining
  setting (factored second moments for every large matrix, updates scaled by
  the parameter RMS, no weight decay).

Both use a linear warm-up over `warmup_steps`, then ``lr * sqrt(warmup / step)``
(T5's inverse square root), which does not depend on the total number of
steps, so a resumed run may train longer.

A run directory (`workdir`, default ``<out>.adapt/``) holds ``config.json``,
``train.csv``, ``metrics.jsonl`` (held-out loss every `eval_every` steps),
``curve.png``, the starting model (``init/``, so a resume rebuilds the same
vocabulary) and ``checkpoints/`` (weights + optimizer state per checkpoint,
committed by ``latest.json`` as in `softprompt.core.training.state`).

Example:
    >>> result = adapt(AdaptConfig(out="my_t5", corpus=["wiki.txt"], from_config="tiny",
    ...                            vocab_size=2000, steps=5000))
    >>> PromptedT5.from_preset("my_t5", prompt_length=20)

Why this module is long: it is a whole trainer of every weight (options,
corpus stream, loop, checkpoints, resume, the preset it writes). Once it runs
on the one training loop of `softprompt.core.training`, only the corpus
stream and the preset writing stay here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import keras_hub
import numpy as np
from keras import ops

from softprompt import backends
from softprompt.core.interop.presets import resolve_preset
from softprompt.core.io.atomic import atomic_directory, atomic_write
from softprompt.core.io.disk_space import DiskFull, is_full
from softprompt.core.io.numpy_files import UnreadableArray, read_npz
from softprompt.core.io.run_lock import LOCK_NAME, holding_run_folder
from softprompt.core.model.loss import seq2seq_loss, token_losses
from softprompt.core.model.t5_blocks import lm_head
from softprompt.core.pretraining import scratch
from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import bucket_index, bucket_lengths, seq2seq_batch
from softprompt.core.training import callbacks as tc
from softprompt.core.training.adafactor import Adafactor
from softprompt.core.training.run_dir import truncate_jsonl
from softprompt.tasks.readers import parse_json, text_lines

OPTIMIZERS = ("adam", "adafactor")
VOCAB_MODELS = scratch.MODEL_TYPES
#: Default peak learning rate per optimizer.
DEFAULT_LR = {"adam": 2e-3, "adafactor": 1e-2}
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
#: Options a resumed run may change.
RESUMABLE_CHANGES = ("steps",)
#: Held-out examples used for the evaluation loss (taken out of the training pool).
HELD_OUT = 256


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


@dataclasses.dataclass
class AdaptResult:
    """What an adaptation run ended with: the preset, the step, the losses, the time."""

    out: Path
    step: int
    train_loss: float
    eval_loss: float | None
    seconds: float


# ---------------------------------------------------------------------- corpus


@dataclasses.dataclass
class Corpus:
    """The tokenized corpus: prefix-LM texts and supervised pairs, one pool."""

    texts: list[list[int]]              # token ids (no </s>) of prefix-LM texts
    pairs: list[tuple[list[int], list[int]]]  # (input ids, target ids), each </s>-terminated
    sources: dict[str, int]             # file -> number of examples

    def __len__(self) -> int:
        return len(self.texts) + len(self.pairs)


def read_corpus_files(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]], dict]:
    """``(texts, pairs, counts)`` from corpus files; a malformed line is a one-line error."""
    texts: list[str] = []
    pairs: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for path in paths:
        path = Path(path)
        before = len(texts) + len(pairs)
        lines = (line for _, line in text_lines(path))  # UTF-8 (a BOM dropped), .gz too
        if path.name.endswith((".jsonl", ".json")):
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                record = parse_json(line, f"{path}:{n}")
                if isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts.append(record["text"])
                elif (isinstance(record, dict) and isinstance(record.get("inputs"), str)
                      and isinstance(record.get("targets"), str) and record["targets"]):
                    pairs.append((record["inputs"], record["targets"]))
                else:
                    raise ValueError(f'{path}:{n}: expected {{"text": ...}} or '
                                     f'{{"inputs": ..., "targets": ...}} with strings')
        else:
            texts.extend(line.strip() for line in lines if line.strip())
        counts[str(path)] = len(texts) + len(pairs) - before
        if counts[str(path)] == 0:
            raise ValueError(f"corpus file {path} holds no examples")
    return texts, pairs, counts


def tokenize_corpus(tokenizer, texts, pairs, counts) -> Corpus:
    text_ids = [r for r in tok.tokenize(tokenizer, texts, add_eos=False) if len(r) >= 2]
    if texts and not text_ids:
        raise ValueError("every corpus text is shorter than two tokens: nothing to split")
    inputs = tok.tokenize(tokenizer, [p[0] for p in pairs], add_eos=True)
    targets = tok.tokenize(tokenizer, [p[1] for p in pairs], add_eos=True)
    return Corpus(text_ids, list(zip(inputs, targets)), counts)


class AdaptBatches:
    """Seeded batches of the mixture; batch ``step`` depends only on ``(corpus, seed, step)``.

    The first `HELD_OUT` examples of a seeded permutation are kept out of
    training for the evaluation loss.
    """

    def __init__(self, corpus: Corpus, batch_size: int, max_input_length: int,
                 max_target_length: int, seed: int = 0):
        self.corpus = corpus
        self.batch_size = int(batch_size)
        self.max_input = int(max_input_length)
        self.max_target = int(max_target_length)
        self.seed = int(seed)
        order = np.random.default_rng([self.seed, 2**31 - 1]).permutation(len(corpus))
        held = min(HELD_OUT, len(corpus) // 10)
        self.held_out = order[:held]
        self.pool = np.sort(order[held:])
        n_texts = len(corpus.texts)
        self._texts_pool = self.pool[self.pool < n_texts]
        self._pairs_pool = self.pool[self.pool >= n_texts]
        self._text_share = len(self._texts_pool) / max(len(self.pool), 1)
        self.input_buckets = bucket_lengths(self.max_input, smallest=8)
        self.target_buckets = bucket_lengths(self.max_target, smallest=4)

    def _example(self, index: int, rng) -> tuple[list[int], list[int]]:
        n_texts = len(self.corpus.texts)
        if index >= n_texts:
            inputs, targets = self.corpus.pairs[index - n_texts]
        else:
            ids = self.corpus.texts[index]
            split = int(rng.integers(1, len(ids)))  # both sides non-empty
            inputs, targets = ids[:split] + [1], ids[split:] + [1]
        if len(inputs) > self.max_input:   # keep the end of the prefix, then </s>
            inputs = inputs[-(self.max_input - 1) - 1 : -1] + [inputs[-1]]
        if len(targets) > self.max_target:  # keep the start of the continuation
            targets = targets[: self.max_target - 1] + [targets[-1]]
        return inputs, targets

    def _batch(self, indices, rng):
        rows = [self._example(int(i), rng) for i in indices]
        width = self.input_buckets[bucket_index(max(len(r[0]) for r in rows), self.input_buckets)]
        twidth = self.target_buckets[bucket_index(max(len(r[1]) for r in rows),
                                                  self.target_buckets)]
        x, y, w = seq2seq_batch([r[0] for r in rows], [r[1] for r in rows], width, twidth)
        x.pop("prompt_ids")
        return x, y, w

    def batch(self, step: int):
        """``(x, y, sample_weight)`` of training step `step` (0-based).

        A step's examples all come from one kind (prefix-LM texts or pairs),
        the kind drawn with probability proportional to its share of the pool
        (so mixing stays examples-proportional); one kind per batch keeps the
        padded shapes, and so the compute, close to the examples' lengths.
        """
        rng = np.random.default_rng([self.seed, int(step)])
        pool = self._texts_pool if rng.random() < self._text_share else self._pairs_pool
        return self._batch(rng.choice(pool, self.batch_size, replace=True), rng)

    def held_out_batches(self):
        rng = np.random.default_rng([self.seed, 2**31 - 2])
        for start in range(0, len(self.held_out), self.batch_size):
            yield self._batch(self.held_out[start : start + self.batch_size], rng)


# ---------------------------------------------------------------------- model


@keras.saving.register_keras_serializable(package="softprompt")
class Seq2SeqLM(keras.Model):
    """A T5 that trains whole (encoder, decoder, embeddings) with T5's LM head.

    Inputs are keras-hub's four T5 keys; the output is the logits. The loss
    is `softprompt.core.model.loss.seq2seq_loss` (masked cross-entropy + z-loss).

    Example:
        >>> lm = Seq2SeqLM(keras_hub.models.T5Backbone.from_preset("softprompt_tiny"))
        >>> lm.compile(optimizer="adam")
        >>> lm.train_on_batch(x, y, sample_weight=target_mask)
    """

    def __init__(self, backbone, z_loss=1e-4, **kwargs):
        super().__init__(**kwargs)
        backbone.trainable = True
        self.backbone = backbone
        self.z_loss = float(z_loss)

    def call(self, inputs, training=False):
        bb = self.backbone
        return lm_head(bb, bb(inputs, training=training)["decoder_sequence_output"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return seq2seq_loss(y, y_pred, sample_weight, self.z_loss)

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "z_loss": self.z_loss, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="softprompt")
class WarmupRsqrt(keras.optimizers.schedules.LearningRateSchedule):
    """``lr * min(step / warmup, sqrt(warmup / step))``: linear warm-up, then T5's 1/sqrt."""

    def __init__(self, lr: float, warmup: int):
        self.lr = float(lr)
        self.warmup = int(warmup)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0
        warm = float(max(self.warmup, 1))
        return self.lr * ops.minimum(step / warm, ops.sqrt(warm / ops.maximum(step, warm)))

    def get_config(self):
        return {"lr": self.lr, "warmup": self.warmup}


def make_optimizer(config: AdaptConfig):
    schedule = WarmupRsqrt(config.peak_lr, config.warmup)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=1.0)
    return Adafactor(learning_rate=schedule, multiply_by_parameter_scale=True,
                     weight_decay_rate=None, never_factor=())


# ---------------------------------------------------------------------- checkpoints


def _checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"step-{int(step)}.npz"


def save_checkpoint(run_dir: Path, step: int, model, record: dict, keep: int = 2) -> None:
    """Write weights + optimizer state for `step`, then commit ``latest.json`` (both atomic)."""
    arrays = {f"w{i}": np.asarray(ops.convert_to_numpy(v)) for i, v in enumerate(model.weights)}
    arrays.update({f"o{i}": np.asarray(ops.convert_to_numpy(v))
                   for i, v in enumerate(model.optimizer.variables)})
    path = _checkpoint_path(run_dir, step)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    with atomic_write(run_dir / CHECKPOINTS / LATEST, "w") as f:
        json.dump({"step": int(step), **record}, f, indent=1)
    kept = sorted((int(p.stem.split("-")[1]) for p in path.parent.glob("step-*.npz")),
                  reverse=True)
    for old in kept[keep:]:
        _checkpoint_path(run_dir, old).unlink(missing_ok=True)


def latest_checkpoint(run_dir: Path) -> dict | None:
    path = Path(run_dir) / CHECKPOINTS / LATEST
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes().decode())
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise ValueError(f"{path} is not a checkpoint record: it is damaged")
    return record


def read_checkpoint(run_dir: Path, step: int, model) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint of `step`, checked against `model`; `ValueError` naming it."""
    path = _checkpoint_path(run_dir, step)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} named by {LATEST} is missing")
    try:
        data = read_npz(path)
    except UnreadableArray as err:
        raise ValueError(f"checkpoint {err}") from None
    for prefix, variables in (("w", model.weights), ("o", model.optimizer.variables)):
        for i, v in enumerate(variables):
            value = data.get(f"{prefix}{i}")
            if value is None or tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"checkpoint {path} does not hold this model's {v.path}: "
                                 "it is damaged or belongs to another model")
    return data


def restore_checkpoint(run_dir: Path, step: int, model, from_last_good: bool = False,
                       echo=None) -> int:
    """Load the checkpoint of `step` into `model`; returns the step loaded.

    When its file is unreadable: with `from_last_good`, the newest earlier
    readable checkpoint is loaded instead (and noted through `echo`), else the
    `ValueError` names the file and that earlier step.
    """
    try:
        data = read_checkpoint(run_dir, step, model)
    except ValueError as err:
        problem = str(err)
        data = None
        earlier = sorted((int(p.stem.split("-")[1]) for p in
                          (Path(run_dir) / CHECKPOINTS).glob("step-*.npz")
                          if p.stem.split("-")[1].isascii() and p.stem.split("-")[1].isdigit()
                          and int(p.stem.split("-")[1]) < step), reverse=True)
        for older in earlier:
            try:
                data = read_checkpoint(run_dir, older, model)
            except ValueError:
                continue
            break
        if data is None:
            raise ValueError(f"{problem}; no earlier readable checkpoint is left: start the "
                             "run again") from None
        if not from_last_good:
            raise ValueError(f"{problem}; the previous checkpoint is step {older}: resume from "
                             "it with --resume-from-last-good") from None
        if echo is not None:
            echo(f"note: {problem}; resuming from step {older}, the last readable checkpoint")
        step = older
    for i, v in enumerate(model.weights):
        v.assign(data[f"w{i}"])
    for i, v in enumerate(model.optimizer.variables):
        v.assign(data[f"o{i}"])
    return step


# ---------------------------------------------------------------------- presets


def write_preset(out, backbone, tokenizer, info: dict | None = None) -> Path:
    """Save `backbone` + `tokenizer` as a keras-hub preset at `out`, atomically.

    The preset is written into a temporary directory beside `out` and renamed
    into place; an existing preset at `out` is replaced only once the new one
    is complete. `info` is written as ``adapt.json`` in the preset.
    """
    out = Path(out)
    with atomic_directory(out) as tmp:
        backbone.save_to_preset(str(tmp))
        tokenizer.save_to_preset(str(tmp))
        if info is not None:
            (tmp / "adapt.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return out


def portable_path(path) -> str:
    """`path` as a preset records it: relative to the working directory when it lies
    under it, else just its name — never an absolute path of the machine that built it."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.name


def portable_info(info: dict) -> dict:
    """A copy of a run's `info` with its paths made `portable_path`s (for ``adapt.json``)."""
    info = json.loads(json.dumps(info))
    options = info.get("options", {})
    for name in ("out", "workdir"):
        if options.get(name):
            options[name] = portable_path(options[name])
    options["corpus"] = [portable_path(p) for p in options.get("corpus", [])]
    files = info.get("corpus", {}).get("files")
    if files:
        info["corpus"]["files"] = {portable_path(k): v for k, v in files.items()}
    return info


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise ValueError(f"--out {out} is a non-empty directory that is not a preset; "
                         "refusing to replace it")
    parent = out.parent if out.parent != Path("") else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise PermissionError(f"cannot write --out {out}: {probe} is not writable")


def _start_model(config: AdaptConfig, run_dir: Path, texts, pairs, echo):
    """Build (or, on a resume, reload) the starting backbone + tokenizer; saved in ``init/``."""
    init = run_dir / "init"
    if (init / "config.json").is_file():
        handle = str(init)
    elif config.preset is not None:
        handle = resolve_preset(config.preset)
    else:
        echo(f"training a sentencepiece vocabulary of up to {config.vocab_size} pieces")
        sample = texts + [p[0] + " " + p[1] for p in pairs]
        proto = scratch.train_sentencepiece(sample, config.vocab_size, config.seed,
                                            model_type=config.vocab_model)
        tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
        # T5's N(0, 1) token embeddings (`scratch.t5_init_embeddings`), not keras-hub's.
        backbone = scratch.build_backbone(tokenizer.vocabulary_size(), config.from_config,
                                          config.style, dropout=config.dropout or 0.0,
                                          seed=config.seed)
        write_preset(init, backbone, tokenizer)
        return backbone, tokenizer
    overrides = {} if config.dropout is None else {"dropout": float(config.dropout)}
    backbone = keras_hub.models.T5Backbone.from_preset(handle, **overrides)
    tokenizer = keras_hub.models.T5Tokenizer.from_preset(handle)
    if handle != str(init):
        write_preset(init, backbone, tokenizer)
    return backbone, tokenizer


# ---------------------------------------------------------------------- the run


@holding_run_folder(lambda config, **_: config.run_dir)
def adapt(config: AdaptConfig, *, resume: bool = False, from_last_good: bool = False,
          progress=True, echo=None, callbacks: Sequence = ()) -> AdaptResult:
    """Train the whole T5 on the corpus and write the preset `config.out`.

    With `resume`, continue the run in ``config.workdir`` from its last
    committed checkpoint (only ``steps`` may differ); the result equals an
    uninterrupted run on the same backend.

    Raises `ValueError` / `FileNotFoundError` for bad options or data and
    `RuntimeError` when the loss becomes NaN or infinite.
    """
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    out = Path(config.out)
    _check_out(out)
    run_dir = config.run_dir
    committed = None
    if resume:
        saved_path = run_dir / "config.json"
        if not saved_path.is_file():
            raise FileNotFoundError(f"--resume: {run_dir} holds no adaptation run (no config.json)")
        saved = json.loads(saved_path.read_text())["options"]
        mine = config.to_dict()
        changed = [k for k in saved if k not in RESUMABLE_CHANGES + ("workdir",)
                   and saved.get(k) != mine.get(k)]
        if changed:
            raise ValueError(
                f"--resume continues the run in {run_dir} with its own options; these differ: "
                + ", ".join(f"{k} ({saved.get(k)!r} there, {mine.get(k)!r} now)" for k in changed))
        committed = latest_checkpoint(run_dir)
        if committed and config.steps < committed["step"]:
            raise ValueError(f"--steps {config.steps} is below the checkpoint's step "
                             f"{committed['step']}")
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise ValueError(f"run directory {run_dir} is not empty: pass --resume to continue "
                         "that run, or remove it")
    texts, pairs, counts = read_corpus_files(config.corpus)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    backbone, tokenizer = _start_model(config, run_dir, texts, pairs, echo)
    corpus = tokenize_corpus(tokenizer, texts, pairs, counts)
    stream = AdaptBatches(corpus, config.batch_size, config.max_input_length,
                          config.max_target_length, config.seed)
    model = Seq2SeqLM(backbone)
    adapter = backends.current()
    model.compile(optimizer=make_optimizer(config), jit_compile=adapter.default_jit_compile)
    model.optimizer.build(model.trainable_variables)
    adapter.prepare_full_training(model)  # torch: every weight's gradient cleared each step
    start = 0
    best_eval = None
    if committed:
        start = restore_checkpoint(run_dir, committed["step"], model, from_last_good, echo)
        echo(f"resuming at step {start} from {run_dir / CHECKPOINTS}")
    info = {
        "options": config.to_dict(),
        "backend": backends.name(),
        "corpus": {"files": counts, "texts": len(corpus.texts), "pairs": len(corpus.pairs)},
        "vocabulary_size": int(backbone.vocabulary_size),
        "parameters": int(sum(int(np.prod(v.shape)) for v in backbone.weights)),
    }
    with atomic_write(run_dir / "config.json", "w") as f:
        json.dump(info, f, indent=1)
    metrics_path = run_dir / "metrics.jsonl"
    if start:
        truncate_jsonl(metrics_path, start)
    elif metrics_path.exists():
        metrics_path.unlink()
    csv = tc.CsvLog(run_dir / "train.csv", start=start)
    cbs = [csv, *callbacks]
    if progress:
        cbs.insert(0, tc.ProgressBar(config.steps, start=start, metric=None,
                                     stream=progress if hasattr(progress, "write") else None))
    cb_list = keras.callbacks.CallbackList(cbs, model=model)
    echo(f"adapting {info['parameters']:,} parameters on {len(corpus):,} examples "
         f"({len(corpus.texts):,} texts, {len(corpus.pairs):,} pairs), steps {start}->{config.steps}")
    t0 = time.perf_counter()
    loss = float("nan")
    eval_loss = None
    cb_list.on_train_begin()
    try:
        for step in range(start, config.steps):
            x, y, w = stream.batch(step)
            logs = model.train_on_batch(x, y, sample_weight=w, return_dict=True)
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                raise RuntimeError(f"the loss became {loss} at step {step + 1}; the last good "
                                   f"checkpoint is kept in {run_dir / CHECKPOINTS} (try a lower --lr)")
            done = step + 1
            cb_list.on_train_batch_end(done, {"loss": loss})
            if done % config.eval_every == 0 or done == config.steps:
                eval_loss = evaluate_loss(model, stream)
                best_eval = eval_loss if best_eval is None else min(best_eval, eval_loss)
                record = {"step": done, "eval_loss": round(eval_loss, 6),
                          "train_loss": round(loss, 6),
                          "elapsed_s": round(time.perf_counter() - t0, 2)}
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
                cb_list.on_test_begin()
                cb_list.on_test_end({"step": done, "eval_loss": eval_loss})
                save_checkpoint(run_dir, done, model, {"eval_loss": eval_loss})
    except OSError as err:
        if not is_full(err):
            raise
        kept = latest_checkpoint(run_dir)
        needed = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                     for v in [*model.weights, *model.optimizer.variables])
        raise DiskFull.when_writing(
            run_dir / CHECKPOINTS, f"the checkpoint or logs of step {step + 1}", needed,
            f"the checkpoint of step {kept['step']} is intact: free some space, then continue "
            "with --resume" if kept else "no checkpoint had been written yet") from None
    finally:
        cb_list.on_train_end()
    seconds = time.perf_counter() - t0
    tc.draw_curve(run_dir, "eval_loss")
    info.update({"steps": config.steps, "train_loss": loss, "eval_loss": eval_loss,
                 "seconds": round(seconds, 1)})
    write_preset(out, backbone, tokenizer, portable_info(info))
    echo(f"wrote preset {out} (train loss {loss:.4f}, held-out loss "
         f"{eval_loss if eval_loss is None else round(eval_loss, 4)}, {seconds:.0f} s)")
    return AdaptResult(out, config.steps, loss, eval_loss, seconds)


def evaluate_loss(model, stream: AdaptBatches) -> float:
    """Token-weighted mean loss over the held-out examples."""
    total = count = 0.0
    for x, y, w in stream.held_out_batches():
        logits = model(x, training=False)
        per = np.asarray(ops.convert_to_numpy(token_losses(y, logits, 0.0)))
        total += float((per * w).sum())
        count += float(w.sum())
    return total / max(count, 1.0)
