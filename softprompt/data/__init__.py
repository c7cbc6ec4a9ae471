"""Data shipped with softprompt: the synthetic language and the built-in demo task.

``softprompt/data/animal_food/{train,validation}.jsonl`` is the built-in task
(see `softprompt.data.synthetic`, which generates it, and ``README.md`` here).
"""

from pathlib import Path

#: Where the package's data files lie.
DATA_DIR = Path(__file__).resolve().parent
