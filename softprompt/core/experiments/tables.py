"""Result tables of the comparisons: mean ± std over seeds, CSV and Markdown, written atomically.

Example:
    >>> mean_std([70.0, 74.0, 72.0])
    (72.0, 2.0)
    >>> format_mean_std([70.0, 74.0, 72.0])
    '72.0 ± 2.0'
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from softprompt.core.io.atomic import atomic_write


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN for none)."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def format_mean_std(values: Sequence[float], digits: int = 1) -> str:
    """``"mean ± std"`` (``"–"`` for no values)."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def human_count(n: int) -> str:
    """A parameter count for tables: ``853,760`` -> ``0.85 M``, ``2,560`` -> ``2.6 K``."""
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} K"
    return str(int(n))


def write_csv(path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(Path(path), "w") as f:
        f.write(buffer.getvalue())
    return Path(path)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_text(path, text: str) -> Path:
    with atomic_write(Path(path), "w") as f:
        f.write(text)
    return Path(path)
