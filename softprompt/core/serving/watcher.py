"""Hot reload: watch the prompt folder and read it again when anything in it changes.

Uses watchfiles (inotify where the system has it, polling elsewhere) on a thread of its
own; changes arriving within `debounce_ms` are read in one `PromptRegistry.reload`, so
a file added, replaced or removed is served (or gone) well within two seconds.

Example:
    >>> watcher = PromptWatcher("prompts/", registry.reload)
    >>> watcher.start()
    >>> watcher.stop()
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

logger = logging.getLogger("softprompt.serve")


class PromptWatcher:
    def __init__(self, folder, on_change, debounce_ms: int = 150):
        self.folder = Path(folder)
        self.on_change = on_change
        self.debounce_ms = int(debounce_ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="softprompt-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        import watchfiles

        try:
            for _ in watchfiles.watch(self.folder, stop_event=self._stop, watch_filter=None,
                                      debounce=self.debounce_ms, step=50, rust_timeout=1000,
                                      yield_on_timeout=False, raise_interrupt=False):
                try:
                    self.on_change()
                except Exception as err:  # noqa: BLE001 - a bad folder state is not fatal
                    logger.error("reading %s failed: %s", self.folder, err)
        except Exception as err:  # noqa: BLE001 - e.g. the folder itself was removed
            logger.error("stopped watching %s: %s", self.folder, err)
