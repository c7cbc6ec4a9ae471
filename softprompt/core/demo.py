"""The built-in demo: ``softprompt train`` with no task and no data.

It prompt-tunes the embedded model ``softprompt_tiny`` (a small T5 that
softprompt pretrained itself, see ``scripts/build_embedded.py``) on the
built-in task ``animal_food`` (`softprompt.data.synthetic`): the input is a
bare sentence of a small synthetic language, the target what the animal in it
eats, out of one menu of six foods that never appear in the input::

    the red fox found three blue boxes near the river.   ->   meat

The model was pretrained to answer multiple-choice questions put in front of
such sentences ("what does the animal eat? options: hay fish meat. <sentence>"),
but never saw this task's format, and the instruction used here ("tell me what
the animal eats. options: meat fish seeds grass nuts bugs.") uses a phrasing
and an option list it was never trained on. The report shows the dev accuracy
with no prompt (greedy decoding: the model just continues the sentence, 0 %;
and rank classification over the 6 foods, near the chance level of 16.7 %),
with the text instruction in front (prompt design), and after prompt tuning —
plus the vocabulary words nearest to each learned prompt vector.

This is a small synthetic demo task, not a benchmark.

It sits at the top of core/, above the rooms, because it composes them: training
(`core.training`) and inference (`core.inference`) around the built-in task.

The CLI uses three hooks: `configure` fills in the options before training,
`prepare_backend` sets the backend's CPU threading for a model this small,
and `report` prints the comparison after training. `run` does all three
around `softprompt.core.training.train.train` for Python users. The CLI
imports this module before it configures the backend, so what loads keras
(the model, training and inference) is imported inside the functions that
run after that.

Example:
    >>> from softprompt.core import demo
    >>> summary = demo.run(out="runs/demo")     # ≈ what `softprompt train` does
    >>> summary["scores"]
    {'no_prompt': 0.0, 'no_prompt_rank': 18.5, 'instruction': 98.0, 'prompt_tuning': 99.0}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from softprompt import backends, tasks
from softprompt.core.inference.neighbors import nearest_tokens
from softprompt.core.io.atomic import atomic_write
from softprompt.core.io.prompt_files import load_prompt
from softprompt.core.text import tokens as tok
from softprompt.core.training.config import TrainConfig
from softprompt.data import DATA_DIR
from softprompt.data.synthetic import DEMO

#: The embedded model (``softprompt/presets/softprompt_tiny``).
PRESET = "softprompt_tiny"
#: The built-in task's data directory (``train.jsonl``, ``validation.jsonl``).
DATA = DATA_DIR / DEMO["name"]
TASK = "jsonl"
TASK_ARGS = {"template": DEMO["template"], "target_field": DEMO["target_field"],
             "labels": list(DEMO["labels"])}
#: The hand-written instruction ("prompt design") the report compares with.
INSTRUCTION = DEMO["instruction"]
#: What the demo changes from `softprompt train`'s defaults (unless the user set them).
DEFAULTS = {
    "out": "runs/demo",
    "prompt_length": 20,
    "steps": 200,
    "eval_every": 50,
    "max_input_length": 64,
    "eval_batch_size": 100,
}
METRIC = "accuracy"
SUMMARY = "demo.json"


def configure(options: dict, explicit: set) -> dict:
    """The CLI hook: fill in the demo's preset, task and data, and its defaults.

    `options` are ``softprompt train``'s options by name, `explicit` the names
    the user set; those are left as they are (``softprompt train --steps
    1000`` trains the demo longer).
    """
    options = dict(options)
    for name in ("task", "data"):
        if name in explicit and options.get(name):
            raise ValueError(f"the built-in demo sets --{name} itself: pass both --task and "
                             "--data to train on your own task")
    options["task"] = TASK
    options["data"] = str(DATA)
    options["task_args"] = dict(TASK_ARGS)
    if "preset" not in explicit or not options.get("preset"):
        options["preset"] = PRESET
    for name, value in DEFAULTS.items():
        if name not in explicit:
            options[name] = value
    return options


def prepare_backend() -> None:
    """The CLI hook once the backend is set up: CPU threading for a model this small.

    torch runs the embedded model on one CPU thread
    (`TorchAdapter.small_model_threads`); other backends keep theirs.
    """
    backends.current().small_model_threads()


# ---------------------------------------------------------------------- baselines


def task():
    return tasks.get(TASK, **TASK_ARGS)


def with_instruction(model, instruction: str = INSTRUCTION):
    """A model whose prompt is the instruction's token embeddings (prompt design)."""
    ids = tok.tokenize(model.tokenizer, [instruction], add_eos=False)[0]
    return model.with_prompts([model.embedding_matrix()[ids]])


def baselines(model, examples, max_input_length: int = 64, batch_size: int = 100,
              instruction: str = INSTRUCTION) -> dict:
    """Dev accuracy with no prompt and with the text instruction in front.

    ``no_prompt`` and ``instruction`` are greedy decoding, exact match (the
    metric prompt tuning is selected on); ``no_prompt_rank`` is rank
    classification of the bare sentence over the task's labels (the most
    likely of the 6 foods), whose chance level is 16.7 %: with decoding the
    frozen model continues the sentence and never answers with a food.
    """
    from softprompt.core.inference.evaluate import evaluate  # keras: see the module's docs

    the_task = task()
    bare = model.without_prompt()
    out = {}
    for name, variant, method in (("no_prompt", bare, "decode"),
                                  ("no_prompt_rank", bare, "rank"),
                                  ("instruction", with_instruction(model, instruction), "decode")):
        metrics, _ = evaluate(variant, the_task, examples, method, batch_size=batch_size,
                              max_input_length=max_input_length)
        out[name] = float(metrics[METRIC])
    return out


# ---------------------------------------------------------------------- the report


def report(config, result=None, echo=None, k: int = 5) -> dict:
    """The CLI hook after training: print no prompt / instruction / tuned, and neighbours.

    `config` is the run's `TrainConfig` (or anything with ``out``, ``preset``,
    ``eval_split``, ``max_input_length``); `result` its `TrainResult`. Writes
    ``OUT/demo.json`` and returns the same summary.
    """
    from softprompt.core.inference.evaluate import evaluate  # keras: see the module's docs
    from softprompt.core.model.prompted_t5 import PromptedT5

    if echo is None:
        def echo(text):
            print(text, flush=True)
    out = Path(config.out)
    best = out / "best.npy"
    if not best.is_file():
        raise FileNotFoundError(f"{best} is missing: the demo run has no evaluated prompt")
    prompt, meta = load_prompt(best)
    model = PromptedT5.from_preset(config.preset, prompt_length=prompt.shape[0], init="zeros")
    the_task = task()
    dev = the_task.read(DATA, getattr(config, "eval_split", "validation"))
    t0 = time.perf_counter()
    scores = baselines(model, dev, max_input_length=getattr(config, "max_input_length", 64))
    tuned = meta.get("metrics", {}).get(METRIC)
    if tuned is None:
        model.load_prompt(best)
        tuned = evaluate(model, the_task, dev, "decode", batch_size=100)[0][METRIC]
    scores["prompt_tuning"] = float(tuned)
    rows = nearest_tokens(prompt, model.embedding_matrix(), model.tokenizer, k=k,
                          labels=the_task.labels)
    chance = 100.0 / len(the_task.labels)
    step = meta.get("step", getattr(result, "best_step", None))
    lines = [
        "",
        f"built-in task {DEMO['name']!r} (synthetic; input: a sentence, target: what the "
        f"animal eats), dev set of {len(dev)}, accuracy % (chance {chance:.1f}; greedy decoding, "
        "exact match, unless marked):",
        f"  no prompt                    {scores['no_prompt']:6.1f}   (greedy output: the "
        "model continues the sentence)",
        f"  no prompt, rank over labels  {scores['no_prompt_rank']:6.1f}   (the likeliest of "
        f"the {len(the_task.labels)} foods)",
        f"  instruction (prompt design)  {scores['instruction']:6.1f}   \"{INSTRUCTION}\"",
        f"  prompt tuning                {scores['prompt_tuning']:6.1f}   "
        f"({prompt.shape[0]} vectors, best at step {step}: {best})",
        "",
        f"nearest words of the learned prompt (cosine, top {k}; * = a label word):",
    ]
    for row in rows:
        words = " ".join(_word(t) + ("*" if _word(t) in the_task.labels else "")
                         for t in row["tokens"])
        lines.append(f"  {row['position']:3d}  {words}")
    for line in lines:
        echo(line)
    summary = {
        "task": DEMO["name"], "preset": config.preset, "dev_examples": len(dev),
        "metric": METRIC, "chance": chance, "scores": scores, "instruction": INSTRUCTION,
        "prompt_length": int(prompt.shape[0]), "best_step": step,
        "neighbors": [{"position": r["position"], "tokens": r["tokens"]} for r in rows],
        "report_seconds": round(time.perf_counter() - t0, 2),
    }
    with atomic_write(out / SUMMARY, "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def _word(token: str) -> str:
    return token.lstrip("\u2581") or token


def run(out: str = DEFAULTS["out"], progress=False, echo=None, **overrides) -> dict:
    """The whole demo from Python: configure, train, report. Returns the summary.

    `overrides` are `TrainConfig` fields (``steps=100``, ``prompt_length=5``, ...).
    """
    from softprompt.core.training.train import train  # keras: see the module's docs

    if echo is None:
        def echo(text):
            print(text, file=sys.stderr, flush=True)
    options = configure({"out": out, **overrides}, {"out", *overrides})
    config = TrainConfig.from_dict(options)
    prepare_backend()
    t0 = time.perf_counter()
    result = train(config, progress=progress, echo=echo)
    summary = report(config, result, echo=echo)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    return summary
