"""LM adaptation / pretraining of a whole keras-hub T5 (the paper's "LM adaptation" ablation).

Every weight of the backbone trains, with T5's prefix-LM objective on a corpus
(`softprompt.core.pretraining.corpus`), on the one training loop of
`softprompt.core.training` (`Run`): `AdaptJob` gives it the model (a
`PromptedT5` with no prompt, every backbone weight trainable, the same class
model tuning trains), the corpus stream, the held-out loss as the metric (lower
is better) and keras-hub presets as the checkpoints' product. Checkpoints,
exact resume, callbacks and the run directory are the loop's, as for prompt
tuning and model tuning.

The result is a keras-hub preset directory at `out` (backbone and tokenizer,
plus ``adapt.json``: the options, the corpus, the steps and the final losses,
paths relative to the working directory, see `portable_path`), written
atomically.

Optimizer: ``adam`` (default; global-norm clipping at 1.0, the fastest to train
a small model from scratch on CPU) or ``adafactor`` (T5's pretraining setting:
factored second moments, updates scaled by the parameter RMS, no weight decay),
both with a linear warm-up over `warmup_steps`, then T5's ``lr * sqrt(warmup /
step)``, which does not depend on the total steps (a resumed run may train longer).

The run directory (`workdir`, default ``<out>.adapt/``) holds what every run
directory holds (``config.json``, ``train.csv``, ``metrics.jsonl`` with the
held-out loss every `eval_every` steps, ``tensorboard/``, ``curve.png``,
``checkpoints/``: a preset and the resume state per checkpoint,
`softprompt.core.training.state`), plus the starting model (``init/``, so a
resume rebuilds the same vocabulary). The run-folder lock, recovery from an
unreadable checkpoint (``from_last_good``) and full-disk errors are the loop's.

Example:
    >>> result = adapt(AdaptConfig(out="my_t5", corpus=["wiki.txt"], from_config="tiny",
    ...                            vocab_size=2000, steps=5000))
    >>> PromptedT5.from_preset("my_t5", prompt_length=20)
"""

from __future__ import annotations

import dataclasses
import json
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
from softprompt.core.io.run_lock import holding_run_folder
from softprompt.core.model.loss import token_losses
from softprompt.core.pretraining import scratch
from softprompt.core.pretraining.adapt_config import RESUMABLE_CHANGES, AdaptConfig
from softprompt.core.pretraining.corpus import AdaptBatches, read_corpus_files, tokenize_corpus
from softprompt.core.training.adafactor import Adafactor
from softprompt.core.training.loop import Run, Schedule
from softprompt.core.training.products import PresetFiles, write_preset
from softprompt.core.training.run_dir import CONFIG, check_out, check_resume, create_out
from softprompt.core.training.task_job import parameter_count, whole_model


@dataclasses.dataclass
class AdaptResult:
    """What an adaptation run ended with: the preset, the step, the losses, the time."""

    out: Path
    step: int
    train_loss: float
    eval_loss: float | None
    seconds: float


# ---------------------------------------------------------------------- optimizer


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


def check_preset_out(out: Path) -> None:
    """Check (reading only) that the preset can be written to `out`."""
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


class AdaptJob:
    """LM adaptation as a job of the training loop (`softprompt.core.training.loop`).

    Args:
        config: the run's `AdaptConfig`.
        backbone, tokenizer: the starting model.
        stream: the corpus' `AdaptBatches`.
        info: the run's record (``config.json`` and ``adapt.json``).
    """

    metric = "eval_loss"
    higher_is_better = False
    keeps_best = False
    title = "LM adaptation"

    def __init__(self, config: AdaptConfig, backbone, tokenizer, stream: AdaptBatches,
                 info: dict):
        self.config = config
        self.stream = stream
        self.info = info
        self.model = whole_model(backbone, tokenizer)
        adapter = backends.current()
        self.model.compile(optimizer=make_optimizer(config),
                           jit_compile=adapter.default_jit_compile)
        self.model.optimizer.build(self.model.trainable_variables)
        adapter.prepare_full_training(self.model)
        self.product = PresetFiles(config.run_dir, backbone, tokenizer)
        self.resume_hint = "the same softprompt adapt command with --resume"

    def evaluate(self) -> dict:
        return {"eval_loss": evaluate_loss(self.model, self.stream)}

    def sidecar(self, step: int, metrics: dict | None) -> dict:
        return {"method": "lm-adaptation", "step": step, "metrics": metrics}

    def config_record(self) -> dict:
        return self.info


@holding_run_folder(lambda config, **_: config.run_dir)
def adapt(config: AdaptConfig, *, resume: bool = False, from_last_good: bool = False,
          progress=True, echo=None, callbacks: Sequence = ()) -> AdaptResult:
    """Train the whole T5 on the corpus and write the preset `config.out`.

    With `resume`, continue the run in ``config.workdir`` from its last
    committed checkpoint (only ``steps`` may differ); the result equals an
    uninterrupted run on the same backend; `from_last_good` resumes from the newest
    complete checkpoint when a file of the committed one is unreadable.

    Raises `ValueError` / `FileNotFoundError` for bad options or data, `TrainingDiverged`
    on a NaN/inf loss, `RunFolderBusy` (another process holds the run) and `DiskFull`.
    """
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    resume = resume or from_last_good
    out = Path(config.out)
    check_preset_out(out)
    run_dir = config.run_dir
    if resume and not (run_dir / CONFIG).is_file():
        raise FileNotFoundError(f"--resume: {run_dir} holds no adaptation run (no {CONFIG})")
    check_out(run_dir, resume)
    start = (check_resume(config, run_dir, RESUMABLE_CHANGES, product=PresetFiles,
                          from_last_good=from_last_good, echo=echo) if resume else None)
    texts, pairs, counts = read_corpus_files(config.corpus)
    create_out(run_dir)
    keras.utils.set_random_seed(config.seed)
    backbone, tokenizer = _start_model(config, run_dir, texts, pairs, echo)
    corpus = tokenize_corpus(tokenizer, texts, pairs, counts)
    stream = AdaptBatches(corpus, config.batch_size, config.max_input_length,
                          config.max_target_length, config.seed)
    info = {
        "options": config.to_dict(),
        "backend": backends.name(),
        "corpus": {"files": counts, "texts": len(corpus.texts), "pairs": len(corpus.pairs)},
        "vocabulary_size": int(backbone.vocabulary_size),
        "parameters": parameter_count(backbone.weights),
    }
    job = AdaptJob(config, backbone, tokenizer, stream, info)
    run = Run(run_dir, job, Schedule(config.steps, config.eval_every), resume=resume,
              start=start, callbacks=callbacks, progress=progress, echo=echo)
    echo(f"adapting {info['parameters']:,} parameters on {len(corpus):,} examples "
         f"({len(corpus.texts):,} texts, {len(corpus.pairs):,} pairs), "
         f"steps {run.step}->{config.steps}")
    t0 = time.perf_counter()
    result = run.run()
    seconds = time.perf_counter() - t0
    eval_loss = (result.last_metrics or {}).get("eval_loss")
    if result.stopped == "interrupted":
        raise KeyboardInterrupt
    info.update({"steps": result.step, "train_loss": result.loss, "eval_loss": eval_loss,
                 "seconds": round(seconds, 1)})
    write_preset(out, backbone, tokenizer, {"adapt.json": portable_info(info)})
    echo(f"wrote preset {out} (train loss {result.loss:.4f}, held-out loss "
         f"{eval_loss if eval_loss is None else round(eval_loss, 4)}, {seconds:.0f} s)")
    return AdaptResult(out, result.step, result.loss, eval_loss, seconds)


def evaluate_loss(model, stream: AdaptBatches) -> float:
    """Token-weighted mean loss over the held-out examples."""
    total = count = 0.0
    for x, y, w in stream.held_out_batches():
        logits = model(x, training=False)
        per = np.asarray(ops.convert_to_numpy(token_losses(y, logits, 0.0)))
        total += float((per * w).sum())
        count += float(w.sum())
    return total / max(count, 1.0)
