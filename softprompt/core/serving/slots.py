"""Which row of the served prompt variable holds which task, kept stable across reloads.

A task keeps its slot while it is served; a new task takes the lowest free slot; the
variable holds a power of two of slots and never shrinks. So adding, replacing or
removing a prompt of the usual length changes only values, not shapes, and compiled
backends compile nothing new until the slots run out.

Example:
    >>> slots = PromptSlots()
    >>> slots.assign(["b", "a"])
    {'a': 0, 'b': 1}
    >>> slots.assign(["a", "c"]), slots.capacity
    ({'a': 0, 'c': 1}, 2)
"""

from __future__ import annotations

from collections.abc import Iterable

from softprompt.core.serving.shapes import capacity_for


class PromptSlots:
    def __init__(self):
        self.slots: dict[str, int] = {}
        self.capacity = 0

    def assign(self, names: Iterable[str]) -> dict[str, int]:
        """Slots for `names` (sorted by name), keeping the slots of names already held."""
        names = sorted(set(names))
        kept = {n: self.slots[n] for n in names if n in self.slots}
        used = set(kept.values())
        free = (i for i in range(len(names) + len(used) + 1) if i not in used)
        for name in names:
            if name not in kept:
                kept[name] = next(free)
        self.slots = dict(sorted(kept.items()))
        needed = max(kept.values()) + 1 if kept else 0
        self.capacity = max(self.capacity, capacity_for(needed) if needed else 0)
        return dict(self.slots)
