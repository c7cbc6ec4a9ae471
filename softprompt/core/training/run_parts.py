"""The parts of a training run that hold no state: the dtype policy it records, Ctrl-C.

`softprompt.core.training.loop.Run` calls them while it sets a run up and steps it; what
a job builds (model, metric, data) lives with the job (`softprompt.core.training.task_job`,
`softprompt.core.pretraining.adapt`).

Example:
    >>> with graceful_interrupt() as interrupt:
    ...     while not interrupt["stop"]:
    ...         step()
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import keras


def dtype_policy() -> str:
    """The name of keras' global dtype policy (recorded in a run's config.json)."""
    return keras.config.dtype_policy().name


@contextlib.contextmanager
def graceful_interrupt():
    """The first Ctrl-C asks the loop to stop after the current step; a second one aborts."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
