"""What ``softprompt tasks`` shows: each task's format, metrics, labels, where its data comes
from, and its sample row (in the hub's schema) read and formatted as training would.

>>> entry = describe("boolq")
>>> entry["data"]["hub"], entry["metrics"]
('hf://datasets/aps/super_glue:boolq', ['accuracy'])
>>> entry["example"]["target"]
'True'
"""

from __future__ import annotations

from softprompt.tasks.base import Task, get, names

#: The ``jsonl`` task is defined by its options; the listing shows it with these.
JSONL_DEMO = {"template": "review: {text}", "target_field": "label",
              "labels": ["negative", "positive"]}
JSONL_SAMPLE = {"text": "Loved every minute of it.", "label": "positive"}


def describe(name: str) -> dict:
    """One task as a JSON-ready dict: ``name``, ``summary``, ``input``, ``target``, ``labels``,
    ``metrics`` (with T5's names where they differ), ``data`` (``hub``, ``files``) and
    ``example`` (``inputs``, ``target``), the example read from the task's sample row through
    the same reader the hub rows go through."""
    task = get(name, **JSONL_DEMO) if name == "jsonl" else get(name)
    t5 = task.t5_metric_names
    metrics = [f"{m} (T5: {t5[m]})" if m in t5 else m for m in task.metric_names]
    sample = JSONL_SAMPLE if name == "jsonl" else task.sample
    example = None
    if sample is not None:
        [row] = task._from_saved(dict(sample), "sample", "validation")
        inputs, target = task.format(row)
        example = {"inputs": inputs, "target": target}
    return {
        "name": task.name,
        "summary": task.title,
        "input": task.input_format,
        "target": " | ".join(task.labels) if task.labels else task.target_format,
        "labels": list(task.labels) if task.labels else None,
        "metrics": metrics,
        "data": {"hub": _hub(task), "files": _files(task)},
        "example": example,
    }


def describe_all() -> list[dict]:
    return [describe(name) for name in names()]


def _hub(task: Task) -> str | None:
    hub = task.hub
    if hub is None:
        return None
    notes = [f"rows of subset {hub.subset}"] if hub.subset else []
    notes += [f"{ours} = its {theirs}" for ours, theirs in hub.splits.items() if theirs]
    notes += [f"no {ours}" for ours, theirs in hub.splits.items() if theirs is None]
    return hub.uri + (f" ({'; '.join(notes)})" if notes else "")


def _files(task: Task) -> str:
    if task.name == "jsonl":
        return "your JSONL/Parquet/CSV files: --data with --template, --target-field, --labels"
    names = []
    for split in ("train", "validation", "test"):
        first = (task.filenames.get(split) or ("",))[0]
        if first and first not in names:
            names.append(first)
    folder = f"{task.folders[0]}/" if task.folders else ""
    return folder + ", ".join(names)
