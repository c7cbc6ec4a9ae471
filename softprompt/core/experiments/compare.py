"""The paper's Figure 1 for the user's own models: every (preset, method, seed) cell a run.

`compare` trains and evaluates each cell of presets × methods × seeds on one
task and summarises them: ``results.csv`` (one row per cell), ``results.md``
(mean ± std over seeds per preset and method, with the frozen model's and the
trained part's parameter counts) and ``scale.png`` (score against the frozen
model's parameters, one line per method).

Methods (`METHODS`): ``prompt-tuning`` and ``model-tuning`` train with
`softprompt.core.training.train.train` (one run folder each, with its
checkpoints, logs and exact resume); ``prompt-design`` evaluates the frozen
model with an instruction and shots in front of each input
(`softprompt.core.experiments.prompt_design`). A cell's score is the
selecting metric on the dev split: the best evaluated checkpoint for the
trained methods, the one evaluation for prompt design.

Layout of ``out``::

    compare.json                          the options (a rerun must pass the same)
    cells/<model>/<method>/seed-<s>/      one cell: a training run folder, or
                                          prompt design's result
    cells/<model>/<method>/seed-<s>/cell.json   written last: the cell is finished
    results.csv  results.md  scale.png

A rerun skips finished cells, resumes stopped runs from their last checkpoint
and starts the rest again, so an interrupted comparison continues where it
stopped. More presets, methods or seeds may be added on a rerun; other
options must be those the folder was started with.

Example:
    >>> result = compare(CompareConfig(
    ...     presets=["softprompt_tiny", "softprompt_small"], task="jsonl",
    ...     data="data/colors", task_args={...}, seeds=3, steps=300, out="runs/compare",
    ...     instruction="what color is the animal?"))
    >>> result.table_path        # runs/compare/results.md
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from softprompt import tasks
from softprompt.core.experiments import tables
from softprompt.core.experiments.prompt_design import draw_shots, evaluate_design
from softprompt.core.inference.methods import DEFAULT_MAX_INPUT_LENGTH
from softprompt.core.io.atomic import atomic_write
from softprompt.core.training import state as train_state
from softprompt.core.training.config import TrainConfig
from softprompt.core.training.run_dir import CONFIG

#: The methods a comparison can run, in the order tables list them.
METHODS = ("model-tuning", "prompt-tuning", "prompt-design")
TRAINED = ("model-tuning", "prompt-tuning")
CELL = "cell.json"
OPTIONS = "compare.json"
#: Options a rerun may change (cells are independent of them).
EXTENSIBLE = ("presets", "methods", "seeds", "out")


def run_config(experiment, out, preset, task, data, method, seed, **fields) -> TrainConfig:
    """The `TrainConfig` of one run of an experiment (`CompareConfig`, `TransferConfig`): its
    ``train_options`` and ``steps``, then what this run is."""
    steps = {} if experiment.steps is None else {"steps": experiment.steps}
    return TrainConfig.from_dict({
        **experiment.train_options, **steps, "out": str(out), "preset": preset, "task": task,
        "data": data, "task_args": dict(experiment.task_args), "method": method,
        "seed": seed, "eval_split": experiment.eval_split, **fields})


def check_seeds(seeds) -> int:
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"--seeds must be a positive integer, got {seeds!r}")
    return seeds


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """``"prompt-tuning,model-tuning"`` -> the list, checked (a one-line error otherwise).

    Example:
        >>> parse_methods("prompt-tuning, prompt-design")
        ['prompt-tuning', 'prompt-design']
    """
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text)]
    names = [m for m in names if m]
    if not names:
        raise ValueError(f"no method given: expected some of {', '.join(METHODS)}")
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}: expected one of {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


@dataclasses.dataclass
class CompareConfig:
    """The options of a comparison.

    Args:
        out: the comparison's folder.
        presets: the frozen models (anything `PromptedT5.from_preset` accepts).
        task, data, task_args: the task, as for ``softprompt train``.
        methods: some of `METHODS`.
        seeds: how many seeds per cell (0 .. seeds-1).
        steps: training steps of the trained methods (default: `TrainConfig`'s).
        train_options: further `TrainConfig` fields for every trained cell
            (``prompt_length``, ``eval_every``, ``batch_size``, ...); the
            learning rate defaults to each method's own.
        instruction, shots: prompt design's instruction and number of shots
            (at least one of the two when prompt design runs).
        eval_split, eval_method: where and how cells are scored.
    """

    out: str
    presets: list = dataclasses.field(default_factory=list)
    task: str | None = None
    data: str | None = None
    task_args: dict = dataclasses.field(default_factory=dict)
    methods: list = dataclasses.field(default_factory=lambda: list(METHODS))
    seeds: int = 3
    steps: int | None = None
    train_options: dict = dataclasses.field(default_factory=dict)
    instruction: str = ""
    shots: int = 0
    eval_split: str = "validation"
    eval_method: str = "decode"

    def validate(self) -> CompareConfig:
        if not self.presets:
            raise ValueError("no preset given: name each frozen model with --preset")
        if len(set(self.presets)) != len(self.presets):
            raise ValueError("a preset is named twice")
        self.methods = parse_methods(self.methods)
        if not self.task:
            raise ValueError("compare needs --task (and --data)")
        task = tasks.get(self.task, **self.task_args)
        # softprompt's own tasks know their data and their prompt-design instruction
        self.data = self.data or (str(task.data) if getattr(task, "data", None) else None)
        if not self.data:
            raise ValueError(f"--task {self.task} needs --data")
        check_seeds(self.seeds)
        if "prompt-design" in self.methods:
            self.instruction = self.instruction or getattr(task, "instruction", "")
            if not self.instruction.strip() and not self.shots:
                raise ValueError("prompt design needs --instruction TEXT and/or --shots K")
            if self.shots:  # too many shots fail here, before any cell runs
                draw_shots(task.train_examples(task.read(self.data, "train")), self.shots)
        reserved = {"out", "preset", "task", "data", "task_args", "method", "seed", "steps",
                    "eval_split", "eval_method"}
        clash = sorted(reserved & set(self.train_options))
        if clash:
            raise ValueError(f"train_options may not set {', '.join(clash)}: they are "
                             "compare's own options")
        for method in TRAINED:  # every trained cell's options are valid before anything runs
            if method in self.methods:
                self.train_config(self.presets[0], method, 0).validate()
        return self

    def train_config(self, preset: str, method: str, seed: int) -> TrainConfig:
        return run_config(self, self.cell_dir(preset, method, seed), preset, self.task,
                          self.data, method, seed, eval_method=self.eval_method)

    def model_names(self) -> dict[str, str]:
        """Each preset's folder name under ``cells/`` (its base name, made unique)."""
        names: dict[str, str] = {}
        for preset in self.presets:
            base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(preset).rstrip("/")).name) or "model"
            name, i = base, 2
            while name in names.values():
                name, i = f"{base}-{i}", i + 1
            names[preset] = name
        return names

    def cell_dir(self, preset: str, method: str, seed: int) -> Path:
        return Path(self.out) / "cells" / self.model_names()[preset] / method / f"seed-{seed}"

    def cells(self) -> list[tuple[str, str, int]]:
        """Every (preset, method, seed), each preset's seeds in turn: a comparison stopped
        early has every method of its first seeds."""
        return [(p, m, s) for p in self.presets for s in range(self.seeds) for m in self.methods]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CompareResult:
    out: Path
    rows: list[dict]

    @property
    def table_path(self) -> Path:
        return self.out / "results.md"


def compare(config: CompareConfig, *, progress=False, echo=None) -> CompareResult:
    """Run (or continue) every cell of the comparison, then write the tables and the plot."""
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    out = Path(config.out)
    check_options(config, out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / OPTIONS, "w") as f:
        json.dump(config.to_dict(), f, indent=1)
    cells = config.cells()
    for i, (preset, method, seed) in enumerate(cells, 1):
        where = config.cell_dir(preset, method, seed)
        label = f"cell {i}/{len(cells)}: {preset} {method} seed {seed}"
        if (where / CELL).is_file():
            echo(f"{label}: done")
            continue
        echo(f"{label} -> {where}")
        record = (run_design_cell(config, preset, seed) if method == "prompt-design" else
                  run_trained_cell(config.train_config(preset, method, seed), progress, echo))
        record.update(preset=preset, model=config.model_names()[preset], method=method,
                      seed=seed)
        where.mkdir(parents=True, exist_ok=True)
        with atomic_write(where / CELL, "w") as f:
            json.dump(record, f, indent=1)
        echo(f"{label}: {record['metric']} {record['score']:.2f}")
    rows = [json.loads((config.cell_dir(*c) / CELL).read_text()) for c in cells]
    write_results(out, rows, config.methods)
    return CompareResult(out, rows)


def check_options(config, out: Path, name: str = OPTIONS,
                   extensible: Sequence[str] = EXTENSIBLE) -> None:
    """Raise unless `out` is new, or holds an experiment with `config`'s options (those in
    `extensible` may differ)."""
    saved_path = out / name
    if not saved_path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise ValueError(f"--out {out} is a non-empty folder that holds no {name}")
        return
    saved = json.loads(saved_path.read_text())
    mine = config.to_dict()
    changed = [k for k in mine if k not in extensible and saved.get(k) != mine[k]]
    if changed:
        raise ValueError(
            f"{out} holds an experiment with other options: "
            + ", ".join(f"{k} ({saved.get(k)!r} there, {mine[k]!r} now)" for k in changed)
            + "; choose another --out")


def run_trained_cell(train_config, progress=False, echo=print) -> dict:
    """Run one `TrainConfig` (resuming it when stopped); its record with the best dev score."""
    from softprompt.core.training.train import train  # keras loads here, after the checks

    where = Path(train_config.out)
    resume = (where / CONFIG).is_file() and train_state.latest(where) is not None
    if not resume and where.exists():
        shutil.rmtree(where)  # started, but stopped before its first checkpoint
    t0 = time.perf_counter()
    result = train(train_config, resume=resume, progress=progress,
                   echo=lambda text: echo(f"  {text}"))
    if result.stopped == "interrupted":
        raise KeyboardInterrupt
    counts = json.loads((where / CONFIG).read_text())["resolved"]["parameters"]
    seconds = _training_seconds(where)
    return {"metric": result.metric, "score": float(result.best_score),
            "best_step": result.best_step, "steps": result.step,
            "frozen_parameters": counts["backbone"], "trained_parameters": counts["trained"],
            "seconds": round(time.perf_counter() - t0 if seconds is None else seconds, 1)}


def _training_seconds(run: Path) -> float | None:
    """The run's own clock, which adds up over resumes: the last ``elapsed_s`` of train.csv."""
    try:
        with open(run / "train.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["elapsed_s"]) if rows else None
    except (OSError, KeyError, ValueError, TypeError):
        return None


def run_design_cell(config: CompareConfig, preset: str, seed: int) -> dict:
    """Evaluate prompt design (instruction + shots drawn with `seed`) on the dev split."""
    t0 = time.perf_counter()
    options = config.train_options
    task = tasks.get(config.task, **config.task_args)
    metrics, model = evaluate_design(
        preset, task, config.data, instruction=config.instruction, shots=config.shots,
        seed=seed, split=config.eval_split, method=config.eval_method,
        max_input_length=options.get("max_input_length", DEFAULT_MAX_INPUT_LENGTH),
        batch_size=options.get("eval_batch_size") or options.get("batch_size", 32))
    metric = options.get("metric") or task.main_metric
    return {"metric": metric, "score": float(metrics[metric]), "best_step": None, "steps": 0,
            "frozen_parameters": backbone_parameters(model), "trained_parameters": 0,
            "seconds": round(time.perf_counter() - t0, 1)}


def backbone_parameters(model) -> int:
    import numpy as np

    return int(sum(int(np.prod(v.shape)) for v in model.backbone.weights))


# ---------------------------------------------------------------------- results


def summarise(rows: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """One entry per (model, method): scores over seeds, mean, std, parameter counts."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["preset"], row["method"]), []).append(row)
    order = {m: i for i, m in enumerate(methods)}
    out = []
    for (preset, method), members in groups.items():
        scores = [r["score"] for r in members]
        mean, std = tables.mean_std(scores)
        out.append({"preset": preset, "model": members[0]["model"], "method": method,
                    "metric": members[0]["metric"], "scores": scores, "mean": mean, "std": std,
                    "frozen_parameters": members[0]["frozen_parameters"],
                    "trained_parameters": members[0]["trained_parameters"]})
    out.sort(key=lambda e: (e["frozen_parameters"], e["preset"], order.get(e["method"], 99)))
    return out


def write_results(out: Path, rows: Sequence[dict], methods: Sequence[str]) -> None:
    """``results.csv``, ``results.md`` and ``scale.png`` from the cells' records."""
    columns = ("preset", "model", "method", "seed", "metric", "score", "best_step", "steps",
               "frozen_parameters", "trained_parameters", "seconds")
    tables.write_csv(out / "results.csv", columns,
                     [[row.get(c) for c in columns] for row in rows])
    summary = summarise(rows, methods)
    metric = summary[0]["metric"] if summary else "score"
    body = tables.markdown_table(
        ("model", "frozen parameters", "method", "trained parameters",
         f"{metric} (mean ± std)", "seeds"),
        [(e["model"], tables.human_count(e["frozen_parameters"]), e["method"],
          tables.human_count(e["trained_parameters"]),
          tables.format_mean_std(e["scores"]), len(e["scores"])) for e in summary])
    tables.write_text(out / "results.md", body)
    draw_scale(out / "scale.png", summary, metric)


def draw_scale(path: Path, summary: Sequence[dict], metric: str) -> Path | None:
    """Score against the frozen model's parameters (log axis), one line per method."""
    import warnings

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: no scale.png", stacklevel=2)
        return None
    fig = Figure(figsize=(5, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = {"model-tuning": ("tab:orange", "o"), "prompt-tuning": ("tab:green", "s"),
              "prompt-design": ("tab:blue", "^")}
    for method in dict.fromkeys(e["method"] for e in summary):
        points = sorted((e["frozen_parameters"], e["mean"], e["std"])
                        for e in summary if e["method"] == method)
        color, marker = styles.get(method, (None, "o"))
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                    label=method, color=color, marker=marker, capsize=3, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("frozen model parameters")
    ax.set_ylabel(f"dev {metric}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    return path
