"""The few fixed batch shapes the server runs, so compiled backends compile each once.

A model call has ``rows`` (a power of two up to the largest batch), an input width (one
of `softprompt.core.text.batching.bucket_lengths`, chosen by the engine) and, when decoding,
a length (a power of two from 4 up to the largest allowed): short batches are filled with
copies of a real row, and decoding runs to the length bucket and cuts each row to what it
asked for. So a server compiles at most ``len(row_buckets) x len(widths) x
len(length_buckets)`` decoding shapes, however the requests vary.

Example:
    >>> row_buckets(32)
    (1, 2, 4, 8, 16, 32)
    >>> rows_for(5, row_buckets(32))
    8
    >>> length_buckets(100)
    (4, 8, 16, 32, 64, 100)
"""

from __future__ import annotations

from collections.abc import Sequence

from softprompt.core.text.batching import bucket_lengths

#: The shortest decoding length bucket.
SHORTEST_DECODE = 4


def row_buckets(max_batch_size: int) -> tuple[int, ...]:
    """Row counts of the model calls: ``1, 2, 4, ...`` and `max_batch_size`."""
    return bucket_lengths(max_batch_size, smallest=1)


def length_buckets(limit: int) -> tuple[int, ...]:
    """Decoding lengths: ``4, 8, 16, ...`` and `limit` (the largest a request may ask)."""
    return bucket_lengths(limit, smallest=SHORTEST_DECODE)


def bucket_for(value: int, buckets: Sequence[int]) -> int:
    """The smallest bucket holding `value`; `ValueError` when none does."""
    for bucket in buckets:
        if value <= bucket:
            return bucket
    raise ValueError(f"{value} is over the largest bucket {buckets[-1]}")


def rows_for(count: int, buckets: Sequence[int]) -> int:
    """The row bucket a batch of `count` real rows is padded to."""
    return bucket_for(count, buckets)


def capacity_for(count: int) -> int:
    """How many prompts the served variable holds for `count` tasks (a power of two).

    Room to spare means a prompt file added while serving fills a free slot of the
    same variable (no new shapes, nothing to compile) until the next power of two.
    """
    return 1 if count <= 1 else 1 << (count - 1).bit_length()
