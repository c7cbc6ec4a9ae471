"""Where a task's rows come from besides its distributed files: the Hugging Face Hub (through
``datasets.load_dataset``) and tables (Parquet, CSV, JSON lines) in the hub's schema.

`Task.read` asks here first and falls back to the distribution's own reader. Every source
yields ``(where, row)`` pairs like `readers`, with ``where`` naming the dataset, the split and
the row, so that a bad field is reported in one line that names all three::

    ValueError: aps/super_glue:boolq [validation], row 17: missing field 'question'

What ``--data`` may be (``data`` below):

- ``None``: the task's canonical hub dataset (``Task.hub``), loaded with ``load_dataset``
  through its cache; ``HF_DATASETS_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) reads the cache only.
- ``hf://datasets/NAME[@REVISION][:CONFIG]``: any hub dataset; for the task's own dataset the
  task's split names and row filter (MRQA's ``subset``) apply too.
- a ``.parquet`` or ``.csv`` file (the split asked for), or a folder holding ``<split>.parquet``,
  ``<split>-*.parquet`` (the hub's own layout), ``<split>.csv`` or ``<split>.jsonl``.

Examples:

>>> parse_hub_uri("hf://datasets/aps/super_glue:boolq")
HubDataset(path='aps/super_glue', config='boolq', revision=None)
>>> parse_hub_uri("data/BoolQ") is None
True
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from softprompt.tasks import readers

PREFIX = "hf://datasets/"
#: The branch where the Hub keeps a Parquet copy of every dataset it can convert.
PARQUET_EXPORT = "refs/convert/parquet"
TABLE_SUFFIXES = (".parquet", ".csv")


@dataclasses.dataclass(frozen=True)
class HubDataset:
    """A dataset on the Hugging Face Hub, as ``datasets.load_dataset`` names it.

    Attributes:
        path: the repository (``"aps/super_glue"``).
        config: its configuration (``"boolq"``), or ``None`` for the default one.
        revision: a branch, tag or commit; ``None`` for the default branch.
        splits: our split name -> the hub's, where they differ; ``None`` when the hub has no
            such split for this task (MRQA's out-of-domain sets are only its ``test`` split).
        subset: keep only the rows whose ``subset`` column names this set (MRQA puts its
            twelve sets in one dataset); matched ignoring case and punctuation, as a prefix.
    """

    path: str
    config: str | None = None
    revision: str | None = None
    splits: Mapping[str, str | None] = dataclasses.field(default_factory=dict, repr=False)
    subset: str | None = dataclasses.field(default=None, repr=False)

    @property
    def label(self) -> str:
        """``path[@revision][:config]``, as errors and listings name the dataset."""
        at = f"@{self.revision}" if self.revision else ""
        return f"{self.path}{at}{':' + self.config if self.config else ''}"

    @property
    def uri(self) -> str:
        """The ``hf://datasets/…`` form that ``--data`` accepts."""
        return PREFIX + self.label

    def hub_split(self, split: str) -> str | None:
        return self.splits.get(split, split)


def parse_hub_uri(data: Any) -> HubDataset | None:
    """``hf://datasets/NAME[@REVISION][:CONFIG]`` as a `HubDataset`; ``None`` for anything else.

    Raises:
        ValueError: a ``hf://datasets/`` string without a dataset name.
    """
    text = str(data)
    if not text.startswith(PREFIX):
        return None
    body, _, config = text[len(PREFIX) :].partition(":")
    body, _, revision = body.partition("@")
    body = body.strip("/")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", body):
        raise ValueError(
            f"{text}: expected hf://datasets/NAME[:CONFIG], e.g. hf://datasets/aps/super_glue:boolq"
        )
    return HubDataset(body, config or None, revision or None)


def hub_source(data: Any, canonical: HubDataset | None, task: str) -> HubDataset | None:
    """The hub dataset ``data`` names: the task's own (``canonical``) when ``data`` is ``None``,
    a ``hf://datasets/`` URI (with the task's split names and row filter when it is the task's
    dataset), or ``None`` for a local path.

    Raises:
        ValueError: ``data`` is ``None`` and the task has no hub dataset.
    """
    if data is None:
        if canonical is None:
            raise ValueError(
                f"task {task!r} has no hub dataset: pass --data (a file, a folder, a saved "
                f"dataset or hf://datasets/NAME[:CONFIG])"
            )
        return canonical
    named = parse_hub_uri(data)
    if named is not None and canonical is not None and named.path == canonical.path:
        config = named.config or canonical.config
        if config == canonical.config:
            return dataclasses.replace(canonical, revision=named.revision)
    return named


def iter_hub(hub: HubDataset, split: str, columns: Sequence[str] = ()) -> Iterator[tuple[str, dict]]:
    """Yields ``(where, row)`` for ``split`` of ``hub``, loaded with ``datasets.load_dataset``.

    ``columns`` are the fields the task reads; a dataset without one of them is an error naming
    the dataset, the split and the field (and the fields it has).

    Raises:
        ValueError: the dataset cannot be loaded (offline and not cached, unknown name or
            configuration), has no such split, or lacks a column.
    """
    name = f"hub dataset {hub.label}"
    hub_split = hub.hub_split(split)
    if hub_split is None:
        raise ValueError(f"{name} has no {split!r} split for this task")
    datasets = _import_datasets(name)
    try:
        loaded = _load(datasets, hub)
    except (ConnectionError, FileNotFoundError, ValueError, OSError, RuntimeError) as err:
        offline = " (offline: HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set)" if _offline() else ""
        raise ValueError(f"{name} [{split}]: cannot be loaded{offline}: {_one_line(err)}") from None
    dataset = readers.select_split(loaded, hub_split, name)
    if hub.subset is not None:
        dataset = _subset(dataset, hub.subset, f"{name} [{hub_split}]")
    where = f"{hub.label} [{hub_split}]"
    check_columns(dataset.column_names, columns, where)
    yield from readers.iter_dataset(dataset, where)


def _load(datasets, hub: HubDataset):
    """``load_dataset``; a repository still holding a loading script (which ``datasets`` 4 no
    longer runs) is read from the Parquet copy the Hub keeps of it (``refs/convert/parquet``)."""
    try:
        return datasets.load_dataset(hub.path, hub.config, revision=hub.revision)
    except RuntimeError as err:
        if hub.revision is not None or "scripts are no longer supported" not in str(err):
            raise
    return datasets.load_dataset(hub.path, hub.config, revision=PARQUET_EXPORT)


def check_columns(present: Sequence[str], needed: Sequence[str], where: str) -> None:
    """A one-line error naming the first of ``needed`` that ``present`` lacks."""
    missing = [c for c in needed if c not in present]
    if missing:
        raise ValueError(
            f"{where}: missing field {missing[0]!r} (the dataset has {', '.join(present)})"
        )


def keep_subset(
    rows: Iterator[tuple[str, dict]], hub: HubDataset | None
) -> Iterator[tuple[str, dict]]:
    """The rows of a local copy of the hub's rows (a saved dataset, a table) that belong to the
    task: those of its ``subset`` where the rows say which (MRQA); all rows otherwise."""
    if hub is None or hub.subset is None:
        yield from rows
        return
    key = _squash(hub.subset)
    for where, row in rows:
        subset = row.get("subset")
        if subset is None or _squash(str(subset)).startswith(key):
            yield where, row


def _subset(dataset: Any, wanted: str, where: str) -> Any:
    """The rows of ``dataset`` whose ``subset`` column names ``wanted`` (MRQA)."""
    if "subset" not in dataset.column_names:
        raise ValueError(f"{where}: missing field 'subset' (needed to pick {wanted})")
    key = _squash(wanted)
    values = list(dataset["subset"])
    keep = [i for i, value in enumerate(values) if _squash(str(value)).startswith(key)]
    if not keep:
        found = ", ".join(sorted(set(map(str, values)))) or "no rows"
        raise ValueError(f"{where}: no rows of subset {wanted!r} (found {found})")
    return dataset.select(keep)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# ---------------------------------------------------------------------------- tables


def is_table(path: Path) -> bool:
    return path.suffix.lower() in TABLE_SUFFIXES


def iter_table(path: str | Path, split: str) -> Iterator[tuple[str, dict]]:
    """Yields ``(where, row)`` from a Parquet file (``ClassLabel`` names kept from the metadata
    ``datasets`` writes) or a CSV file with a header line (every value a string)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from _iter_csv(path)
        return
    datasets = _import_datasets(str(path))
    import pyarrow.parquet as pq  # noqa: PLC0415 - a dependency of `datasets`

    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ValueError(f"{path}: not a readable Parquet file ({_one_line(err)})") from None
    yield from readers.iter_dataset(datasets.Dataset(table), f"{path} [{split}]")


def _iter_csv(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        with readers.open_text(path) as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise ValueError(f"{path}: empty file (expected a header line)")
            start = reader.line_num + 1
            for row in reader:
                if None in row:
                    raise ValueError(
                        f"{path}, line {start}: more fields than the header's "
                        f"{len(reader.fieldnames)} ({', '.join(reader.fieldnames)})"
                    )
                yield f"{path}, line {start}", {k: (v if v != "" else None) for k, v in row.items()}
                start = reader.line_num + 1
    except csv.Error as err:
        raise ValueError(f"{path}: malformed CSV ({err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def find_tables(path: Path, split: str, folders: Sequence[str] = ()) -> list[Path]:
    """The table files of ``split`` in the folder ``path`` (or its task folder, or ``data/``):
    ``<split>.parquet``, the hub's ``<split>-00000-of-00001.parquet`` shards, ``<split>.csv`` or
    ``<split>.jsonl``; ``validation`` also as ``val``/``dev``. Empty when there are none."""
    names = [split] + [k for k, v in readers._SPLIT_ALIASES.items() if v == split]
    wanted = {f.lower() for f in folders} | {"data"}
    places = [path] + sorted(p for p in path.iterdir() if p.is_dir() and p.name.lower() in wanted)
    for place in places:
        for name in names:
            for pattern in (f"{name}.parquet", f"{name}-*.parquet", f"{name}.csv",
                            f"{name}.jsonl", f"{name}.jsonl.gz"):
                found = sorted(place.glob(pattern))
                if found:
                    return found
    return []


# ---------------------------------------------------------------------------- helpers


def _import_datasets(what: str):
    try:
        import datasets  # noqa: PLC0415 - heavy; imported when a hub or table source is read
    except ImportError:
        raise ValueError(
            f"{what}: reading it needs the `datasets` package (pip install datasets)"
        ) from None
    return datasets


def _offline() -> bool:
    try:
        import datasets.config as config  # noqa: PLC0415
    except ImportError:
        return False
    return bool(config.HF_HUB_OFFLINE)


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__
