"""The two ways to get a model's answer, greedy decoding (``decode``) and rank
classification (``rank``), and the defaults of inference.

Kept apart from the code that runs them so that the CLI can offer the
choices and defaults without loading keras.

Example:
    >>> check_method("rank")
    'rank'
"""

from __future__ import annotations

#: The inference methods: greedy decoding, rank classification over candidates.
METHODS = ("decode", "rank")
#: Inputs per batch.
DEFAULT_BATCH_SIZE = 32
#: Encoder tokens kept per input (the paper's).
DEFAULT_MAX_INPUT_LENGTH = 512


def check_method(method: str) -> str:
    """Return `method` if it is one of `METHODS`, else raise a one-line `ValueError`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected decode or rank")
    return method
