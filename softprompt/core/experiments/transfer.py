"""Domain shift: train once on one task, evaluate zero-shot on others (the paper's Table 1).

`transfer` trains each method (model tuning, prompt tuning) once per seed on
the training task, then evaluates the best checkpoint of every run, with no
further training, on the training task's own dev set (``<task> (in-domain)``)
and on every named evaluation set — e.g. SQuAD → the MRQA out-of-domain sets,
QQP → MRPC, or the built-in ``color_food`` from one word order to others. It writes ``transfer.csv`` (one row per
run and set) and ``transfer.md``: per set, model tuning and prompt tuning as
mean ± std over seeds and Δ = prompt tuning − model tuning.

When an evaluation task has the same number of labels as the training task
but other label words (QQP ``duplicate`` ↔ MRPC ``equivalent``), the
predictions are read in the training task's words
(``tasks.get(name, predictions_from=<training task>)``).

Layout of ``out``::

    transfer.json                         the options
    runs/<method>/seed-<s>/               one training run folder each
    runs/<method>/seed-<s>/scores.json    its scores on every set, written last
    transfer.csv  transfer.md

A rerun skips finished runs and resumes stopped ones, like `compare`.

Example:
    >>> transfer(TransferConfig(
    ...     preset="t5_base_lm_adapt", train_task="squad", train_data="data/squad",
    ...     evals={"mrqa/textbookqa": "data/mrqa/TextbookQA.jsonl.gz"}, seeds=3,
    ...     steps=30000, out="runs/transfer"))
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from softprompt import tasks
from softprompt.core.experiments import tables
from softprompt.core.experiments.compare import (
    TRAINED,
    check_options,
    check_seeds,
    parse_methods,
    run_config,
    run_trained_cell,
)
from softprompt.core.experiments.runs import load_best
from softprompt.core.io.atomic import atomic_write
from softprompt.core.training.config import TrainConfig

OPTIONS = "transfer.json"
SCORES = "scores.json"
EXTENSIBLE = ("evals", "methods", "seeds", "out")


def parse_evals(items) -> dict[str, str]:
    """``["mrqa/textbookqa=PATH", ...]`` -> ``{"mrqa/textbookqa": "PATH"}`` (checked).

    Example:
        >>> parse_evals(["mrpc=glue/MRPC"])
        {'mrpc': 'glue/MRPC'}
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--eval {item!r}: expected TASK=PATH, e.g. mrqa/textbookqa=data/tqa")
        if name.strip() in out:
            raise ValueError(f"--eval names {name.strip()!r} twice")
        out[name.strip()] = path.strip()
    if not out:
        raise ValueError("no --eval TASK=PATH given: name the sets to evaluate on")
    return out


@dataclasses.dataclass
class TransferConfig:
    """The options of a transfer experiment.

    Args:
        out: the experiment's folder.
        preset: the frozen model.
        train_task, train_data, task_args: the training task.
        evals: evaluation sets, ``{task name: data path}``; each is evaluated
            on its `eval_split` (the training task's own dev set is listed first).
        methods: some of ``model-tuning``, ``prompt-tuning``.
        seeds, steps, train_options: as in `CompareConfig`.
    """

    out: str
    preset: str | None = None
    train_task: str | None = None
    train_data: str | None = None
    task_args: dict = dataclasses.field(default_factory=dict)
    evals: dict = dataclasses.field(default_factory=dict)
    methods: list = dataclasses.field(default_factory=lambda: list(TRAINED))
    seeds: int = 3
    steps: int | None = None
    train_options: dict = dataclasses.field(default_factory=dict)
    eval_split: str = "validation"

    def validate(self) -> TransferConfig:
        if not self.preset:
            raise ValueError("no preset given: name the frozen model with --preset")
        if not self.train_task or not self.train_data:
            raise ValueError("transfer needs --train-task and --train-data")
        self.methods = parse_methods(self.methods)
        wrong = [m for m in self.methods if m not in TRAINED]
        if wrong:
            raise ValueError(f"transfer trains: {wrong[0]!r} is not one of {', '.join(TRAINED)}")
        if not self.evals:
            raise ValueError("no --eval TASK=PATH given: name the sets to evaluate on")
        check_seeds(self.seeds)
        trained = tasks.get(self.train_task, **self.task_args)
        for name in self.evals:
            eval_task(name, trained)  # unknown names and label mismatches fail here
        if self.train_task in self.evals and Path(self.evals[self.train_task]) == Path(
                self.train_data):
            raise ValueError(f"--eval {self.train_task} names the training data itself: its "
                             "dev set is evaluated anyway")
        for method in self.methods:
            self.train_config(method, 0).validate()
        return self

    def train_config(self, method: str, seed: int) -> TrainConfig:
        return run_config(self, self.run_dir(method, seed), self.preset, self.train_task,
                          self.train_data, method, seed)

    @property
    def in_domain(self) -> str:
        """The table's name of the training task's own dev set."""
        return f"{self.train_task} (in-domain)"

    def sets(self) -> dict[str, tuple[str, str]]:
        """The evaluation sets by their name in the table: ``{name: (task, data)}``, the
        training task's own dev set first. A set of the training task's kind is named by
        its data folder too."""
        out = {self.in_domain: (self.train_task, self.train_data)}
        for task, path in self.evals.items():
            name = f"{task} ({Path(path).name})" if task == self.train_task else task
            out[name] = (task, path)
        return out

    def run_dir(self, method: str, seed: int) -> Path:
        return Path(self.out) / "runs" / method / f"seed-{seed}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def eval_task(name: str, trained):
    """The evaluation task `name`, reading predictions in `trained`'s label words if needed."""
    task = tasks.get(name)
    if trained.labels and task.labels and list(task.labels) != list(trained.labels):
        if len(task.labels) != len(trained.labels):
            raise ValueError(f"--eval {name}: its {len(task.labels)} labels cannot be mapped "
                             f"from {trained.name}'s {len(trained.labels)}")
        task = tasks.get(name, predictions_from=trained.name)
    return task


def transfer(config: TransferConfig, *, progress=False, echo=None) -> list[dict]:
    """Train every (method, seed) run, evaluate each zero-shot on every set, write the table."""
    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    config.validate()
    out = Path(config.out)
    check_options(config, out, OPTIONS, EXTENSIBLE)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / OPTIONS, "w") as f:
        json.dump(config.to_dict(), f, indent=1)
    trained = tasks.get(config.train_task, **config.task_args)
    sets = config.sets()
    rows = []
    runs = [(m, s) for m in config.methods for s in range(config.seeds)]
    for i, (method, seed) in enumerate(runs, 1):
        where = config.run_dir(method, seed)
        label = f"run {i}/{len(runs)}: {method} seed {seed}"
        if not (where / SCORES).is_file():
            echo(f"{label} -> {where}")
            run_trained_cell(config.train_config(method, seed), progress, echo)
            model, settings = load_best(where)
            scores = {}
            for name, (task_name, path) in sets.items():
                task = trained if name == config.in_domain else eval_task(task_name, trained)
                examples = task.read(path, config.eval_split)
                metrics = settings.evaluate(model, task, examples)
                scores[name] = {"metric": task.main_metric, "score": metrics[task.main_metric],
                                "metrics": metrics, "examples": len(examples)}
                echo(f"  {name}: {task.main_metric} {metrics[task.main_metric]:.2f}")
            with atomic_write(where / SCORES, "w") as f:
                json.dump(scores, f, indent=1)
        scores = json.loads((where / SCORES).read_text())
        for name, entry in scores.items():
            rows.append({"dataset": name, "method": method, "seed": seed, **entry})
    write_transfer(out, rows, list(sets), config.methods)
    return rows


def write_transfer(out: Path, rows: list[dict], datasets: list[str], methods: list[str]) -> None:
    columns = ("dataset", "method", "seed", "metric", "score", "examples")
    tables.write_csv(out / "transfer.csv", columns, [[r[c] for c in columns] for r in rows])
    header = ["dataset", "metric", *methods]
    both = "model-tuning" in methods and "prompt-tuning" in methods
    if both:
        header.append("Δ (prompt − model)")
    body = []
    for name in datasets:
        mine = [r for r in rows if r["dataset"] == name]
        if not mine:
            continue
        cells = [name, mine[0]["metric"]]
        means = {}
        for method in methods:
            scores = [r["score"] for r in mine if r["method"] == method]
            means[method] = tables.mean_std(scores)[0] if scores else None
            cells.append(tables.format_mean_std(scores))
        if both:
            pt, mt = means["prompt-tuning"], means["model-tuning"]
            cells.append("–" if pt is None or mt is None else f"{pt - mt:+.1f}")
        body.append(cells)
    tables.write_text(out / "transfer.md", tables.markdown_table(header, body))
