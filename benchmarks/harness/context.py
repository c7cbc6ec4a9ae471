"""What every comparison is given (`Context`) and how it turns repeats into numbers.

A comparison sets its contenders up through `Context.setup` (a failure is recorded, not
raised), times them with `benchmarks.harness.pool.interleave`, and reports times as
`median`s and ratios as `paired` medians of per-round ratios.

Example:
    >>> m = interleave([Contender("a", w, "k", "x"), Contender("b", w, "k", "y")], rounds=3)
    >>> paired(m, "b", "a")          # how many times longer b took than a, round by round
    1.8
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness.pool import Pool, WorkerError
from benchmarks.profiles import Profile


@dataclasses.dataclass
class Context:
    pool: Pool
    profile: Profile
    backends: list[str]
    hf: bool  # transformers + peft available: run the baselines
    cache: Path  # scratch files (the decoding comparison's shared checkpoint and prompt)
    log: Callable[[str], None]
    torch_compile: bool = False

    def setup(self, worker_name, key, case, errors, label=None, **params):
        """Set up a case; on failure record the error under `label` and return None."""
        try:
            return self.pool.worker(worker_name).setup(key, case, **params)
        except WorkerError as err:
            errors[label or worker_name] = str(err)
            self.log(f"  {label or worker_name}: set-up failed: {err}")
            return None

    def drop(self, key):
        for worker in self.pool.workers.values():
            try:
                worker.drop(key)
            except WorkerError:
                pass


def median(measurements, label):
    """The median seconds of contender `label`, or None when it was not timed."""
    m = measurements.get(label)
    return None if m is None else m.median


def paired(measurements, num, den):
    """Median over rounds of ``num_r / den_r``: the two were timed in the same round.

    Pairing by round cancels load that drifts over minutes better than a ratio of
    medians; a label may also be a list of per-round values.
    """
    def series(x):
        if isinstance(x, list):
            return x
        m = measurements.get(x)
        return None if m is None else m.seconds

    a, b = series(num), series(den)
    if not a or not b:
        return None
    ratios = [x / y for x, y in zip(a, b) if y]
    return statistics.median(ratios) if ratios else None
