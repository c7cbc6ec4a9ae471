"""A full disk ends a run with one line: the folder, the space needed, and what is intact.

Checkpoint writes are atomic (`softprompt.core.atomic.atomic_write`) and
committed last, so a write that fails for lack of space loses nothing that
was committed. What is left is to say so usefully: `DiskFull` names the
folder, about how much free space the next checkpoint needs and how much
there is, and how to continue once there is room.

Example:
    >>> try:
    ...     write_checkpoint()
    ... except OSError as err:
    ...     if is_full(err):
    ...         raise DiskFull.when_writing(out, "the checkpoint of step 4", needed=2**20,
    ...                                     kept="the checkpoint of step 2 is intact") from None
    ...     raise
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

#: errnos of a write that failed for lack of space (a full device, an exhausted quota).
FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


class DiskFull(RuntimeError):
    """A write failed for lack of space; nothing committed before it was lost."""

    @classmethod
    def when_writing(cls, folder, what: str, needed: int | None, kept: str) -> DiskFull:
        """The error for a failed write of `what` into `folder` (`needed`: bytes, if known)."""
        free = free_bytes(folder)
        space = []
        if needed is not None:
            space.append(f"it needs about {format_bytes(needed)} free")
        if free is not None:
            space.append(f"{format_bytes(free)} {'is' if free == 1 else 'are'} free there")
        return cls(f"no space left on the device of {folder} while writing {what}"
                   + (f" ({', '.join(space)})" if space else "") + f"; {kept}")


def is_full(err: BaseException) -> bool:
    """Whether `err` is a write that failed for lack of space."""
    return isinstance(err, OSError) and err.errno in FULL


def free_bytes(folder) -> int | None:
    """Free bytes on the device of `folder` (or of its nearest existing parent)."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return None


def format_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
