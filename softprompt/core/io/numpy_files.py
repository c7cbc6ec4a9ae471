"""Read ``.npy`` and ``.npz`` files that users or crashes may have damaged, never as pickles.

`numpy.load` meets a file that is not numpy's format by trying it as a pickle, and
its refusal then tells the user to load it "unsafely using allow_pickle" — the
wrong cause for a truncated or overwritten file, and advice we never want
followed. These readers look at the bytes themselves and raise one
`UnreadableArray` (a `ValueError`) that says what the file is and what is wrong:
not numpy at all, a pickle (refused), an archive where one array was expected,
a header that does not parse, or fewer bytes than the header promises
(checked before anything is allocated, so a forged header cannot ask for
terabytes).

Example:
    >>> array = read_npy("prompt.npy")              # what np.load gives, or UnreadableArray
    >>> arrays = read_npz("checkpoints/state-4.npz")  # {name: array}
"""

from __future__ import annotations

import io
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
#: First bytes of a pickle (protocol 2 and later; protocols 0/1 start with an opcode letter).
PICKLE_MAGIC = b"\x80"


class UnreadableArray(ValueError):
    """A numpy file that cannot be read: the message names the file and the reason."""


def describe_start(head: bytes) -> str:
    """What the first bytes of a file say it is, in words."""
    if head.startswith(ZIP_MAGIC):
        return "a zip archive (.npz)"
    if head.startswith(PICKLE_MAGIC):
        return "a Python pickle (softprompt never loads pickles)"
    if not head:
        return "empty"
    return f"not a numpy file (it starts with {head[:8]!r})"


def _read_array(f, size: int, where: str) -> np.ndarray:
    """One array from the open binary file `f` of `size` bytes, positioned at its start."""
    head = f.read(len(MAGIC))
    if head != MAGIC:
        raise UnreadableArray(f"{where} is {describe_start(head + f.read(8))}")
    try:
        version = tuple(f.read(2))
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise UnreadableArray(f"{where} has an unknown .npy format version {version}")
    except UnreadableArray:
        raise
    except (ValueError, TypeError, KeyError, SyntaxError, tokenize.TokenError, OverflowError,
            EOFError, OSError) as err:  # numpy parses the header with Python's tokenizer
        raise UnreadableArray(f"{where} has a damaged .npy header ({_short(err)})") from None
    if dtype.hasobject:
        raise UnreadableArray(f"{where} holds Python objects (a pickle; softprompt never "
                              "loads pickles)")
    if any(d < 0 for d in shape):
        raise UnreadableArray(f"{where} has a damaged .npy header (shape {shape})")
    count = math.prod(shape)
    needed = count * dtype.itemsize
    available = size - f.tell()
    if needed > available:
        raise UnreadableArray(f"{where} is truncated: its header promises {needed} bytes of "
                              f"data, the file holds {max(available, 0)}")
    try:
        array = np.frombuffer(f.read(needed), dtype=dtype, count=count)
        return array.reshape(shape, order="F" if fortran else "C").copy()
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a huge count of 0-byte items
        raise UnreadableArray(f"{where} holds data that does not fit its header "
                              f"({_short(err)})") from None


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of the ``.npy`` file `path` (any extension), or `UnreadableArray`.

    Raises `FileNotFoundError` when there is no file.
    """
    path = _existing(path)
    try:
        with open(path, "rb") as f:
            return _read_array(f, os.fstat(f.fileno()).st_size, str(path))
    except OSError as err:
        raise UnreadableArray(f"{path} cannot be read ({err.strerror or err})") from None


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive `path` by name, or `UnreadableArray`.

    Raises `FileNotFoundError` when there is no file.
    """
    path = _existing(path)
    try:
        with open(path, "rb") as raw:
            head = raw.read(len(ZIP_MAGIC))
            if head != ZIP_MAGIC:
                raise UnreadableArray(f"{path} is not a .npz archive: it is "
                                      f"{describe_start(head + raw.read(8))}")
            raw.seek(0)
            arrays = {}
            with zipfile.ZipFile(raw) as archive:
                for info in archive.infolist():
                    name = info.filename
                    if not name.endswith(".npy"):
                        raise UnreadableArray(f"{path} holds {name!r}, which is not a .npy member")
                    with archive.open(info) as member:
                        data = member.read()
                    arrays[name[: -len(".npy")]] = _read_array(
                        io.BytesIO(data), len(data), f"{path} (member {name})")
            return arrays
    except UnreadableArray:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError) as err:
        raise UnreadableArray(f"{path} is a damaged .npz archive ({_short(err)})") from None
    except OSError as err:
        raise UnreadableArray(f"{path} cannot be read ({err.strerror or err})") from None


def _short(err: BaseException) -> str:
    """numpy's reason in one short line, without its advice to load the file unsafely."""
    text = " ".join(str(err).split()) or type(err).__name__
    if "pickle" in text:
        return "a header too large or too odd to parse safely"
    return text if len(text) <= 160 else text[:157] + "..."
