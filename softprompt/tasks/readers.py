"""Source-format readers: JSONL (plain or gzipped), GLUE TSV, JSON documents, saved `datasets`.

Every reader yields ``(where, record)`` pairs, where ``where`` is a short location such as
``"data/BoolQ/val.jsonl, line 17"``. Task code passes it on to :func:`field` and to its own
checks so that every error names the file, the line and the field in one line::

    ValueError: data/BoolQ/val.jsonl, line 17: missing field 'question'

A JSON *document* (SQuAD) has no useful line per record; its locations are JSON paths instead
(``"dev-v1.1.json, data[3].paragraphs[0].qas[2]"``), and a syntax error names the line and column
the parser stopped at.

Whitespace-only lines in JSONL files hold no record and are passed over; every other line is
either a record or an error. Nothing is skipped silently.

Examples:

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "tiny.jsonl"
>>> _ = p.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
>>> [(w.split(", ")[-1], r["a"]) for w, r in iter_jsonl(p)]
[('line 1', 1), ('line 3', 2)]
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SPLITS = ("train", "validation", "test")


class DataWarning(UserWarning):
    """Rows of a source passed over on purpose (e.g. QQP's malformed training rows)."""


_SPLIT_ALIASES = {"val": "validation", "dev": "validation", "valid": "validation"}

_KIND_NAMES = {str: "string", int: "integer", list: "list", dict: "JSON object"}
_ARTICLE = {"integer": "an"}


def normalize_split(split: str) -> str:
    """Returns ``train``, ``validation`` or ``test``; ``val``/``dev`` mean ``validation``."""
    name = str(split).strip().lower()
    name = _SPLIT_ALIASES.get(name, name)
    if name not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of train, validation, test")
    return name


def open_text(path: str | Path) -> io.TextIOBase:
    """Opens a UTF-8 text file, gunzipping ``*.gz``; a leading byte-order mark is dropped."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file (``.gz`` too); undecodable bytes or a
    damaged archive are a `ValueError` naming the file and the byte offset."""
    path = Path(path)
    try:
        with open_text(path) as f:
            yield from enumerate(f, start=1)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise ValueError(f"{path}: cannot be read ({e})") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Yields ``(where, object)`` for each non-blank line of a JSONL file (``.gz`` too)."""
    path = Path(path)
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        record = parse_json(line, where)
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, found {type(record).__name__}")
        yield where, record


def parse_json(text: str, where: str) -> Any:
    """``json.loads(text)``; anything it cannot parse is a `ValueError` that starts with `where`.

    Besides syntax errors that covers nesting deeper than the parser's recursion limit and
    integers longer than Python's digit limit, which `json` reports with other exceptions.

    >>> parse_json("[" * 100000, "f.jsonl, line 3")
    Traceback (most recent call last):
    ValueError: f.jsonl, line 3: malformed JSON (nested too deeply)
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError(f"{where}: malformed JSON (nested too deeply)") from None
    except ValueError as e:  # an integer beyond Python's digit limit
        reason = str(e).split(":")[0]
        raise ValueError(f"{where}: malformed JSON ({reason})") from None
    if _SURROGATE_ESCAPE.search(text):
        check_text(value, where)
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_text(value: Any, where: str) -> None:
    """Raise a `ValueError` if a string in `value` is not text: an unpaired surrogate, which a
    JSON escape (``"\\ud800"``) can spell but no tokenizer or UTF-8 file can hold."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValueError(
                    f"{where}: the string {item[:40]!r} holds U+{ord(item[e.start]):04X}, an "
                    "unpaired surrogate escape: not text"
                ) from None


def iter_tsv(
    path: str | Path, required: Sequence[str] = (), skipped: list[str] | None = None
) -> Iterator[tuple[str, dict]]:
    """Yields ``(where, row)`` for each data line of a TSV file with a header line.

    Fields are split on tabs only, with no quoting (GLUE's files contain bare quote characters,
    and TFDS reads them with ``csv.QUOTE_NONE`` too). ``required`` columns must be in the header.
    A row with a different number of fields than the header is an error naming the line, or,
    when a ``skipped`` list is given, passed over with its location appended to that list.
    """
    path = Path(path)
    header: list[str] | None = None
    for lineno, line in text_lines(path):
        line = line.rstrip("\r\n")
        if header is None:
            header = [h.strip() for h in line.split("\t")]
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(
                    f"{path}, line 1: missing column {missing[0]!r} in the header "
                    f"(found {', '.join(header)})"
                )
            continue
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        cells = line.split("\t")
        if len(cells) != len(header) and skipped is not None:
            skipped.append(where)
            continue
        if len(cells) != len(header):
            raise ValueError(
                f"{where}: expected {len(header)} tab-separated fields "
                f"({', '.join(header)}), found {len(cells)}"
            )
        yield where, dict(zip(header, cells, strict=True))
    if header is None:
        raise ValueError(f"{path}: empty file (expected a header line)")


def read_json(path: str | Path) -> Any:
    """Parses a whole JSON document; a syntax error names the line and column."""
    path = Path(path)
    try:
        with open_text(path) as f:
            text = f.read()
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}, line {e.lineno}: malformed JSON ({e.msg} at column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: malformed JSON (nested too deeply)") from None
    except ValueError as e:  # an integer beyond Python's digit limit
        raise ValueError(f"{path}: malformed JSON ({str(e).split(':')[0]})") from None
    except (OSError, EOFError) as e:  # a truncated or corrupt .gz
        raise ValueError(f"{path}: cannot be read ({e})") from None
    if _SURROGATE_ESCAPE.search(text):
        check_text(value, str(path))
    return value


def field(record: Any, key: str, where: str, kind: type = str, prefix: str = "") -> Any:
    """Returns ``record[key]``, checked to exist and to be of ``kind``.

    ``prefix`` is the JSON path of ``record`` inside the source record (``"passage."``) so that
    the message names the field as the file spells it. An integer may be written as decimal
    digits (as a CSV file holds every value).
    """
    name = f"{prefix}{key}"
    if not isinstance(record, dict) or key not in record or record[key] is None:
        raise ValueError(f"{where}: missing field {name!r}")
    value = record[key]
    if kind is int and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(
            f"{where}: field {name!r} must be {_article(kind)}, "
            f"found {type(value).__name__}"
        )
    return value


def _article(kind: type) -> str:
    noun = _KIND_NAMES.get(kind, kind.__name__)
    return f"{_ARTICLE.get(noun, 'a')} {noun}"


def locate(
    path: str | Path, split: str, filenames: Sequence[str], folders: Sequence[str] = ()
) -> Path:
    """Finds the file of ``split`` for a path that is a file or a distribution directory.

    ``path`` may be the file itself, a directory holding one of ``filenames``, or a directory
    holding one of ``folders`` (e.g. ``BoolQ``, matched case-insensitively) that holds it.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: neither a file nor a directory")
    places = [path]
    wanted = {f.lower() for f in folders}
    places += sorted(p for p in path.iterdir() if p.is_dir() and p.name.lower() in wanted)
    for place in places:
        for name in filenames:
            candidate = place / name
            if candidate.is_file():
                return candidate
    where = " or ".join([str(path)] + [f"{path}/{f}" for f in folders])
    raise FileNotFoundError(
        f"{path}: no file for split {split!r} (looked for {', '.join(filenames)} in {where})"
    )


# ---------------------------------------------------------------- `datasets` save_to_disk


def is_saved_dataset(path: str | Path) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    path = Path(path)
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file())
    )


def iter_saved_dataset(path: str | Path, split: str) -> Iterator[tuple[str, dict]]:
    """Yields ``(where, row)`` from a dataset saved with ``save_to_disk`` (read offline).

    A ``DatasetDict`` must hold ``split``; a single ``Dataset`` is taken as the split asked for.
    ``ClassLabel`` columns come back as their label names (``-1``, "no label", as ``None``).
    The ``datasets`` package is imported only here.
    """
    path = Path(path)
    try:
        import datasets  # noqa: PLC0415 - optional dependency, imported on use only
    except ImportError:
        raise ValueError(
            f"{path}: a dataset saved with `datasets`, but the `datasets` package is not "
            f"installed (pip install datasets)"
        ) from None
    loaded = select_split(datasets.load_from_disk(str(path)), split, f"{path}: saved dataset")
    yield from iter_dataset(loaded, f"{path} [{split}]")


def select_split(loaded: Any, split: str, name: str) -> Any:
    """The ``split`` of a ``DatasetDict`` (``validation`` also found as ``val``/``dev``/…); a
    single ``Dataset`` is returned as it is. ``name`` starts the error message.

    Raises:
        FileNotFoundError: the dict has no such split (the message lists those it has).
    """
    if not (hasattr(loaded, "keys") and not hasattr(loaded, "features")):
        return loaded
    keys = list(loaded.keys())
    names = [split] + [k for k, v in _SPLIT_ALIASES.items() if v == split]
    found = next((k for k in names if k in keys), None)
    if found is None:
        raise FileNotFoundError(f"{name} has no split {split!r} (it has {', '.join(keys)})")
    return loaded[found]


def iter_dataset(dataset: Any, where: str) -> Iterator[tuple[str, dict]]:
    """Yields ``(f"{where}, row {i}", row)`` for each row of a `datasets.Dataset`, its
    ``ClassLabel`` columns as label names (``-1``, "no label", as ``None``)."""
    features = getattr(dataset, "features", None) or {}
    label_names = {
        name: list(feature.names)
        for name, feature in dict(features).items()
        if getattr(feature, "names", None) is not None
    }
    for i, row in enumerate(dataset):
        row = dict(row)
        for name, names in label_names.items():
            value = row.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                row[name] = names[value] if 0 <= value < len(names) else None
        yield f"{where}, row {i}", row
