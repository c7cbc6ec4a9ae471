"""Best-of-N wall time of a call, for the micro-benchmarks.

Example:
    >>> best_ms(lambda: torch.relu(x), repeats=10)   # one warm-up call, then the fastest of 10
    13.2
"""

from __future__ import annotations

import time


def best_ms(fn, repeats: int) -> float:
    """Milliseconds of the fastest of `repeats` calls of `fn`, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * min(times)
