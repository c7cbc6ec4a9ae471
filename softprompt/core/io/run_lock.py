"""One process per run folder: a lock file that names its owner and dies with it.

Two ``softprompt train --out same`` started half a second apart (a double
click, a retried job, a misconfigured torchrun) would otherwise both run to
the end, interleaving ``metrics.jsonl`` and overwriting each other's
checkpoints. Every command that writes a run folder holds it with
`hold_run_folder`; a second process is refused with `RunFolderBusy`, one line
naming the folder and the owner.

The lock is ``FOLDER/.softprompt.lock``, locked with ``flock`` and holding the
owner's pid, host, start time and command line. The kernel releases ``flock``
when its process ends however it ends, so a run that crashed or was killed
leaves no lock in force: the next process takes the folder and says whose
lock it found (a dead pid on this host: "crashed or was killed"). A normal
exit removes the file. Where the file system offers no ``flock`` (some
cluster and FUSE file systems), the file is created exclusively instead and a
stale one is recognised by its owner: same host, pid no longer running.

Example:
    >>> with hold_run_folder("runs/boolq"):
    ...     train_into("runs/boolq")
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the exclusive-create fallback only
    fcntl = None

LOCK_NAME = ".softprompt.lock"
#: errnos that mean "this file system does not do flock" (not "someone holds it").
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder; the message names the folder and the owner."""


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who holds (or held) a run folder, as its lock file records it."""

    pid: int
    host: str
    started: float
    command: str = ""

    @classmethod
    def me(cls) -> Owner:
        argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
        return cls(os.getpid(), socket.gethostname(), time.time(), " ".join(argv))

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        text = f"pid {self.pid} on {self.host}, started {when}"
        return f"{text}: {self.command[:200]}" if self.command else text

    def is_running_here(self) -> bool | None:
        """Whether the owner still runs: `None` when it ran on another host (cannot tell)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, belongs to someone else
            return True
        return True

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Owner | None:
        """The owner a lock file names; `None` for an empty or damaged file."""
        try:
            record = json.loads(data.decode())
            return cls(int(record["pid"]), str(record["host"]), float(record["started"]),
                       str(record.get("command", "")))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None


def lock_path(folder) -> Path:
    """The lock file of the run folder `folder`."""
    return Path(folder) / LOCK_NAME


def read_owner(folder) -> Owner | None:
    """The owner recorded in `folder`'s lock file (`None` when there is none)."""
    try:
        return Owner.from_bytes(lock_path(folder).read_bytes())
    except OSError:
        return None


def _busy(folder: Path, owner: Owner | None, hint: str = "") -> RunFolderBusy:
    who = owner.describe() if owner else "a process that is still starting"
    return RunFolderBusy(f"{folder} is in use by another softprompt process ({who}); wait for "
                         f"it to finish or choose another folder{hint}")


def _stale_note(folder: Path, owner: Owner | None) -> str | None:
    if owner is None or owner.pid == os.getpid():
        return None
    if owner.is_running_here() is False:
        return (f"note: {folder} was held by {owner.describe()}, which is no longer running "
                "(it crashed or was killed); taking the folder over")
    return f"note: {folder}: the lock of {owner.describe()} is no longer held; taking the folder over"


def _write_owner(fd: int, owner: Owner) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, owner.to_bytes(), 0)
    os.fsync(fd)


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, 65536, 0)


def _acquire_flock(folder: Path, echo) -> int | None:
    """The descriptor of the locked lock file, or `None` when flock is unavailable here."""
    path = lock_path(folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = Owner.from_bytes(_read_fd(fd))
            os.close(fd)
            raise _busy(folder, owner) from None
        except OSError as err:
            os.close(fd)
            if err.errno in _NO_FLOCK:
                return None
            raise
        try:  # the holder before us may have removed the file while we waited to lock it
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    note = _stale_note(folder, Owner.from_bytes(_read_fd(fd)))
    if note:
        echo(note)
    return fd


def _acquire_exclusive(folder: Path, echo) -> int:
    """Without flock: create the lock file exclusively; a dead owner on this host is stale."""
    path = lock_path(folder)
    for _ in range(10):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = read_owner(folder)
            if owner is None or owner.is_running_here() is not False:
                hint = (f" (if that run is gone, delete {path})"
                        if owner is not None and owner.is_running_here() is None else "")
                raise _busy(folder, owner, hint) from None
            note = _stale_note(folder, owner)
            if note:
                echo(note)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    raise _busy(folder, read_owner(folder))


def check_free(folder) -> None:
    """Raise `RunFolderBusy` if another process holds `folder` now (reading only).

    For the cheap checks a command makes before it starts its work; the folder
    is only ever taken with `hold_run_folder`.
    """
    folder = Path(folder)
    path = lock_path(folder)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file (or none readable): nobody holds the folder
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                owner = Owner.from_bytes(_read_fd(fd))
                if owner is not None and owner.pid == os.getpid():
                    return  # this process holds it
                raise _busy(folder, owner) from None
            except OSError as err:
                if err.errno not in _NO_FLOCK:
                    raise
        owner = Owner.from_bytes(_read_fd(fd))
        if owner is not None and owner.pid != os.getpid() and owner.is_running_here():
            raise _busy(folder, owner)
    finally:
        os.close(fd)


def _default_echo(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def hold_run_folder(folder, echo: Callable[[str], None] | None = None):
    """Hold the run folder `folder` (created if needed) for the duration of the block.

    Raises `RunFolderBusy` at once when another process holds it. A lock left
    by a process that crashed is taken over with a note through `echo`
    (default: stderr). On leaving, the lock file is removed, and so is the
    folder when this call created it and nothing was written into it.

    Example:
        >>> with hold_run_folder("runs/boolq"):
        ...     ...                      # a second process gets RunFolderBusy here
    """
    folder = Path(folder)
    echo = echo or _default_echo
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = _acquire_flock(folder, echo) if fcntl is not None else None
    locked = fd is not None
    if fd is None:
        fd = _acquire_exclusive(folder, echo)
    try:
        _write_owner(fd, Owner.me())
        yield folder
    finally:
        path = lock_path(folder)
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)  # before unlocking: a waiting process then sees the file gone
        if locked:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def holding_run_folder(folder_of: Callable[..., object]):
    """Decorate a function so that it runs holding the folder ``folder_of(*args, **kwargs)``.

    The function's ``echo`` keyword, when given, receives the stale-lock note.

    Example:
        >>> @holding_run_folder(lambda config, **_: config.run_dir)
        ... def adapt(config, *, resume=False, echo=None): ...
    """
    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            with hold_run_folder(folder_of(*args, **kwargs), echo=kwargs.get("echo")):
                return f(*args, **kwargs)
        return wrapper
    return decorate
