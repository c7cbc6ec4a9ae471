"""The `Task` contract and the registry of tasks by name.

A task is data, not a model: it reads a source format into example dicts, turns an example into
the ``(inputs, targets)`` strings the model sees, turns a decoded string back into what the metric
compares, and scores a list of predictions. Nothing here imports an ML framework.

Examples:

>>> from softprompt import tasks
>>> task = tasks.get("rte")
>>> task.format({"premise": "A cat sat.", "hypothesis": "A cat is sitting.",
...              "label": "entailment"})
('hypothesis: A cat is sitting. premise: A cat sat.', 'entailment')
>>> task.evaluate([{"premise": "p", "hypothesis": "h", "label": "entailment"}], ["entailment"])
{'accuracy': 100.0}
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from softprompt.tasks import readers, sources

Example = dict[str, Any]


class Task:
    """One dataset in T5's text-to-text form: read, format, postprocess, evaluate.

    Subclasses set the class attributes and implement :meth:`format`, :meth:`_score` and one of
    the ways to read (``_read_file`` for files, ``_from_saved`` for rows of a saved `datasets`).

    Attributes:
        name: the registry name (``"boolq"``, ``"mrqa/bioasq"``, ``"jsonl"``).
        labels: the target strings of a classification task, in class-index order (used for
            class-label prompt initialisation and rank classification); ``None`` when targets
            are free text.
        main_metric: the metric that picks the best checkpoint: the first one T5 reports.
        filenames: for each split, the file names of the distributed layout, first match wins.
        folders: the distribution's folder names for this task (``("BoolQ",)``), so that a
            benchmark root directory works as ``path`` too.
        metric_names: what ``evaluate`` reports under softprompt's names, main metric first.
        t5_metric_names: softprompt's name -> T5's, for metrics T5 names otherwise
            (``evaluate`` reports both, so numbers compare with published T5 tables).
        hub: the canonical dataset on the Hugging Face Hub, read when ``path`` is ``None``.
        sample: one row in the hub's schema, formatted by ``softprompt tasks`` as an example.
        title, input_format, target_format: what ``softprompt tasks`` shows: a one-line
            description, the inputs with ``{field}`` for each field, and (for free-text
            targets) what the target is.

    The methods:

    - ``read(path, split)`` → examples, one per (input, target) unit, with gold fields kept.
    - ``format(example)`` → ``(inputs, targets)``; ``targets`` is ``""`` for an unlabeled example.
    - ``postprocess(text, example)`` → the prediction as the metric compares it (a string).
    - ``evaluate(examples, predictions)`` → ``{metric: value}`` in percent (0-100), from the raw
      decoded strings (it calls ``postprocess`` itself).
    - ``candidates(example)`` → the strings rank classification scores, or ``None`` (free-form).
    - ``train_examples(examples)`` → the examples training uses (see the method).
    """

    name: str = ""
    labels: list[str] | None = None
    main_metric: str = "accuracy"
    metric_names: tuple[str, ...] = ("accuracy",)
    t5_metric_names: dict[str, str] = {}
    filenames: dict[str, tuple[str, ...]] = {}
    folders: tuple[str, ...] = ()
    hub: sources.HubDataset | None = None
    sample: dict | None = None
    title: str = ""
    input_format: str = ""
    target_format: str = ""

    # ------------------------------------------------------------------ reading

    def read(self, path: str | Path | None, split: str) -> list[Example]:
        """Reads ``split`` from ``path``: the split's file, the task's distribution directory
        (``BoolQ/`` holding ``train.jsonl``, ``val.jsonl``, ``test.jsonl``), a directory above
        it, a dataset saved with ``datasets``' ``save_to_disk``, a Parquet/CSV/JSONL table in the
        hub's schema (or a folder of them), ``hf://datasets/NAME[:CONFIG]``, or ``None`` for the
        task's own hub dataset (`hub`, see `softprompt.tasks.sources`).

        Only the ``test`` split may lack gold labels (its examples then carry ``None``);
        anywhere else a missing label is an error naming the file, line and field.

        Raises:
            FileNotFoundError: nothing readable at ``path`` for ``split``.
            ValueError: a malformed record, a missing field, an unknown label, an empty split,
                a hub dataset that cannot be loaded.
        """
        split = readers.normalize_split(split)
        hub = sources.hub_source(path, self.hub, self.name)
        if hub is not None:
            source: object = hub.label
            rows = sources.iter_hub(hub, split, self.columns(split))
            examples = [ex for where, row in rows for ex in self._from_saved(row, where, split)]
        elif readers.is_saved_dataset(path):
            source = path
            rows = sources.keep_subset(readers.iter_saved_dataset(path, split), self.hub)
            examples = [ex for where, row in rows for ex in self._from_saved(row, where, split)]
        else:
            files = self._locate(Path(path), split)
            source, examples = files[0], []
            for file in files:
                if sources.is_table(file):
                    rows = sources.keep_subset(sources.iter_table(file, split), self.hub)
                    examples.extend(ex for where, row in rows
                                    for ex in self._from_saved(row, where, split))
                else:
                    examples.extend(self._read_file(file, split))
        if not examples:
            raise ValueError(f"{source}: no examples in split {split!r}")
        for i, example in enumerate(examples):
            example.setdefault("idx", i)
        return examples

    def _locate(self, path: Path, split: str) -> list[Path]:
        """The files of ``split`` at ``path``: the file itself, else the distribution's file,
        else the hub-schema tables in the folder (`sources.find_tables`)."""
        names = self.filenames.get(split, ())
        try:
            return [readers.locate(path, split, names, self._folders(split))]
        except FileNotFoundError as err:
            tables = sources.find_tables(path, split, self._folders(split)) if path.is_dir() else []
            if not tables:
                if path.is_dir():
                    raise FileNotFoundError(
                        f"{err} nor a table ({split}.parquet, {split}-*.parquet, {split}.csv)"
                    ) from None
                raise
            return tables

    def columns(self, split: str) -> tuple[str, ...]:
        """The fields a row of the hub schema must have for ``split`` (checked before reading a
        hub dataset, so that a wrong dataset fails on its first line). Default: none checked."""
        del split
        return ()

    def _folders(self, split: str) -> tuple[str, ...]:
        """Folder names under which ``split``'s file may sit (default: ``folders``)."""
        del split
        return self.folders

    def _read_file(self, path: Path, split: str) -> Iterable[Example]:
        """Yields the examples of one source file (default: JSONL, one record per line)."""
        for where, record in readers.iter_jsonl(path):
            yield from self._from_record(record, where, split)

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        """Turns one source record into examples (default: the saved-`datasets` layout)."""
        return self._from_saved(record, where, split)

    def _from_saved(self, row: dict, where: str, split: str) -> list[Example]:
        raise NotImplementedError(f"{type(self).__name__} does not read this format")

    def _label(
        self, record: dict, key: str, where: str, split: str, values=None, prefix: str = ""
    ) -> str | None:
        """The gold label of ``record[key]`` as one of ``values`` (default ``self.labels``).

        Accepts the label string itself, a JSON boolean for ``True``/``False`` labels, or a class
        index (int, or digits as in GLUE's TSVs) into ``values``. ``None``, a missing key or ``-1``
        (how `datasets` marks "no label") mean unlabeled, which only the test split may be.
        """
        values = list(values if values is not None else self.labels or ())
        raw = record.get(key) if isinstance(record, dict) else None
        if isinstance(raw, str) and raw.strip() in ("", "-1"):
            raw = None
        if raw is None or (raw == -1 and not isinstance(raw, bool)):
            if split == "test":
                return None
            raise ValueError(
                f"{where}: missing field {prefix + key!r} (only the test split may be unlabeled)"
            )
        if isinstance(raw, bool):
            text = "True" if raw else "False"
            if text in values:
                return text
        elif isinstance(raw, int):
            if str(raw) in values:
                return str(raw)
            if 0 <= raw < len(values):
                return values[raw]
        elif isinstance(raw, str):
            if raw in values:
                return raw
            digits = raw.strip()
            if digits.isascii() and digits.isdigit() and int(digits) < len(values):
                return values[int(raw)]
        raise ValueError(
            f"{where}: unknown label {raw!r} in field {prefix + key!r} "
            f"(expected one of {', '.join(values)})"
        )

    # ------------------------------------------------------------------ text

    def _text(self, example: Example, key: str) -> str:
        """``example[key]`` as a string, or a ValueError naming the task and the field."""
        value = example.get(key) if isinstance(example, dict) else None
        if value is None:
            raise ValueError(f"{self.name}: example has no field {key!r}")
        return str(value)

    def format(self, example: Example) -> tuple[str, str]:
        """Returns ``(inputs, targets)`` in T5's text-to-text form, without a task-name prefix."""
        raise NotImplementedError

    def postprocess(self, text: str, example: Example) -> str:
        """The decoded string as the metric compares it (here: surrounding whitespace removed)."""
        del example
        return text.strip()

    def candidates(self, example: Example) -> list[str] | None:
        """The target strings rank classification scores; ``None`` for free-form targets."""
        del example
        return list(self.labels) if self.labels else None

    def train_examples(self, examples: Sequence[Example]) -> list[Example]:
        """The examples to train on, given those ``read`` returned for the training split.

        The hook for training-time expansion or filtering; evaluation always uses ``read``'s list
        as is. Default: unchanged. ReCoRD returns one example per gold answer (target = that
        answer, as T5 trains); WSC keeps only the examples whose referent is correct (as T5's
        ``wsc_simple`` training task does, the target being the referent text).
        """
        return list(examples)

    # ------------------------------------------------------------------ scoring

    def evaluate(self, examples: Sequence[Example], predictions: Sequence[str]) -> dict[str, float]:
        """Scores decoded predictions (raw strings, one per example) with T5's metrics, 0-100:
        ``metric_names``, then T5's names for those T5 names otherwise (``t5_metric_names``).

        Raises:
            ValueError: no examples, a count mismatch, or an example without a gold answer.
        """
        examples = list(examples)
        predictions = list(predictions)
        if not examples:
            raise ValueError(f"{self.name}: nothing to evaluate (no examples)")
        if len(examples) != len(predictions):
            raise ValueError(
                f"{self.name}: {len(predictions)} predictions for {len(examples)} examples"
            )
        processed = [
            self.postprocess(str(p), ex) for p, ex in zip(predictions, examples, strict=True)
        ]
        scores = self._score(examples, processed)
        for ours, t5 in self.t5_metric_names.items():
            if ours in scores:
                scores.setdefault(t5, scores[ours])
        return scores

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def _gold(self, example: Example, i: int, key: str = "label") -> Any:
        value = example.get(key)
        if value is None or value == []:
            raise ValueError(
                f"{self.name}: example {i} has no gold {key!r} (the test split is unlabeled; "
                f"evaluate on validation)"
            )
        return value

    def __repr__(self) -> str:
        return f"<Task {self.name!r}>"


# ---------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., Task]] = {}


def register(name: str, factory: Callable[..., Task] | None = None, *, overwrite: bool = False):
    """Registers a task class (or any callable returning a `Task`) under ``name``.

    Use as a decorator (``@register("boolq")`` on a `Task` subclass) or directly
    (``register("mrqa/bioasq", functools.partial(MrqaTask, ...))``). The instance ``get`` returns
    has ``name`` set to the registered name.

    Raises:
        ValueError: ``name`` is empty or already registered (unless ``overwrite``).
    """
    key = name.strip().lower()
    if not key:
        raise ValueError("a task name must not be empty")

    def add(f: Callable[..., Task]):
        if key in _REGISTRY and not overwrite:
            raise ValueError(f"task {key!r} is already registered")
        if isinstance(f, type) and issubclass(f, Task) and not f.__dict__.get("name"):
            f.name = key
        _REGISTRY[key] = f
        return f

    return add if factory is None else add(factory)


def names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_REGISTRY)


def get(name: str | Task, **kwargs) -> Task:
    """A new instance of the task registered as ``name`` (case-insensitive).

    Keyword arguments go to the task's constructor, e.g.
    ``get("jsonl", template="review: {text}", target_field="label", labels=["bad", "good"])``
    or ``get("squad", pad_punctuation=False)``. A `Task` instance is returned unchanged.

    Raises:
        ValueError: no task has that name (the message lists close matches), or the task
            does not take one of the keyword arguments.
    """
    if isinstance(name, Task):
        return name
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown task {name!r}{hint} (known: {', '.join(names())})")
    factory = _REGISTRY[key]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as e:  # an argument the task does not take (e.g. from a sidecar)
        raise ValueError(f"task {key!r}: {e}") from None
    except ValueError:  # a factory without a signature: let it check its arguments
        pass
    task = factory(**kwargs)
    task.name = key
    if task.labels is not None:
        task.labels = list(task.labels)  # the instance's own copy
    return task
