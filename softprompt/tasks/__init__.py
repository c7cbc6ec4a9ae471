"""Tasks as data: read a source format, format it as T5 does, postprocess and score predictions.

>>> from softprompt import tasks
>>> "boolq" in tasks.names() and "mrqa/textbookqa" in tasks.names()
True
>>> task = tasks.get("boolq")
>>> task.labels, task.main_metric
(['False', 'True'], 'accuracy')

Registered: the SuperGLUE tasks (``boolq cb copa multirc record rte wic wsc``), GLUE's ``sst2
mrpc qqp``, ``squad``, ``mrqa/<dataset>``, ``jsonl`` (a user's own data) and softprompt's own
synthetic ``animal_food`` and ``color_food`` (`builtin`). `register` adds more.
``Task.read`` takes the distributed files, a task's hub dataset (``read(None, split)``) and the
other sources in `softprompt.tasks.sources`; `softprompt.tasks.catalog` describes the tasks.
"""

from softprompt.tasks import (  # noqa: F401 (they register)
    builtin,
    glue,
    jsonl,
    qa,
    superglue,
    superglue_spans,
)
from softprompt.tasks.base import Task, get, names, register

__all__ = ["Task", "get", "names", "register"]
