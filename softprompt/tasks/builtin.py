"""softprompt's own synthetic tasks, by name: ``animal_food`` (the demo) and ``color_food``.

Both read the JSONL files shipped in ``softprompt/data/<name>/`` (or any copy
of them): the input is a bare sentence of the synthetic language, the target
a food (`softprompt.data.synthetic`). Each carries the instruction that its
prompt-design baseline writes in front of the inputs (``task.instruction``).

Example:
    >>> from softprompt import tasks
    >>> task = tasks.get("color_food")
    >>> task.format({"sentence": "the red fox ran.", "food": "meat"})
    ('the red fox ran.', 'meat')
    >>> len(task.labels), task.instruction.split(".")[0]
    (12, 'tell me what the animal eats')
"""

from __future__ import annotations

from softprompt.data import DATA_DIR
from softprompt.data.synthetic import COLOR_FOOD, DEMO
from softprompt.tasks.base import register
from softprompt.tasks.jsonl import JsonlTask


class BuiltinTask(JsonlTask):
    """A `JsonlTask` fixed by one of `softprompt.data.synthetic`'s task specs."""

    spec: dict = {}

    def __init__(self):
        super().__init__(template=self.spec["template"], target_field=self.spec["target_field"],
                         labels=self.spec["labels"])
        self.instruction = self.spec["instruction"]
        self.data = DATA_DIR / self.spec["name"]


@register("animal_food")
class AnimalFood(BuiltinTask):
    """The demo: the animal's food from the first menu (6 labels)."""

    spec = DEMO


@register("color_food")
class ColorFood(BuiltinTask):
    """The comparison task: the food from the menu the animal's colour selects (12 labels)."""

    spec = COLOR_FOOD
