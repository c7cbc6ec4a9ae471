"""Data and options shared by the command-line tests (a module of its own, so that test
files import it by a name no other directory uses)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import keras

WORDS = "good great bad terrible movie film story plot actor scene the a cat dog".split()
LABELS = ["negative", "positive"]
TASK_ARGS = {"template": "review: {text}", "target_field": "label", "labels": LABELS}
#: The task options every command gets.
TASK = ["--task", "jsonl", "--template", "review: {text}", "--target-field", "label",
        "--labels", ",".join(LABELS)]
#: Sizes chosen so every inference batch has the same shape (6 dev rows, widths of 16).
TRAIN = ["--prompt-length", "3", "--steps", "4", "--batch-size", "8", "--eval-every", "2",
         "--max-input-length", "16", "--eval-batch-size", "6", "--seed", "1", "--quiet"]


#: `TrainConfig` fields of the library's short runs (4 steps, dev rank evaluations at 2 and 4;
#: dropout on, so the seed states matter for resume).
TRAIN_CONFIG = dict(task="jsonl", task_args=TASK_ARGS, prompt_length=3, steps=4, batch_size=8,
                    eval_every=2, max_input_length=16, eval_method="rank", seed=1, dropout=0.1)


class StopAt(keras.callbacks.Callback):
    """Ask the loop to stop (as Ctrl-C does) after step `step`."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.step:
            self.model.stop_training = True


def write_task(root: Path, n_train=24, n_dev=6, seed=0) -> Path:
    """A sentiment-like jsonl task: positive iff the text says good or great."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_dev)):
        with open(root / f"{split}.jsonl", "w") as f:
            for _ in range(n):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
                label = LABELS[int(any(w in text.split() for w in ("good", "great")))]
                f.write(json.dumps({"text": text, "label": label}) + "\n")
    return root


def reuse_compilations(cache_dir) -> None:
    """Let identical models share compiled train steps (JAX's persistent compilation cache)."""
    if keras.backend.backend() != "jax":
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    try:  # the cache is set up once per process; start it again with the new directory
        from jax._src import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):
        pass


HOLDER = """
import sys
from softprompt.core.io.run_lock import hold_run_folder
with hold_run_folder(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def start_holder(folder) -> subprocess.Popen:
    """A real process holding the run folder `folder` (`hold_run_folder`) until its stdin closes."""
    import softprompt

    root = Path(softprompt.__file__).resolve().parents[1]  # the code under test
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc
