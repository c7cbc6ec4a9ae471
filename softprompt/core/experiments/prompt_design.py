"""Prompt design: an instruction and K training examples written in front of every input.

The paper's third method (GPT-3's "prompt design"): the frozen model gets no
soft prompt; its encoder reads::

    <instruction> <shot 1> ... <shot K> <input>

where each shot is a training example formatted as the task formats it
(``"{inputs} {targets}"`` by default, `SHOT_TEMPLATE`). The K shots are drawn
once, with `seed`, from the training split, and the same K stand in front of
every input (so the seed chooses the "prompt", and seeds give its spread).
When the whole does not fit `max_input_length` tokens, shots are dropped first
(the last drawn first), and only then is the text cut like any other input.

`DesignedTask` wraps a task so that every command's one inference path
(decoding or rank classification, `softprompt.core.inference.evaluate`) runs
prompt design unchanged.

Example:
    >>> task = tasks.get("jsonl", template="{sentence}", target_field="color",
    ...                  labels=["red", "blue"])
    >>> design = DesignedTask(task, tokenizer, "what color is the animal?",
    ...                       draw_shots(train, 2, seed=0), max_input_length=64)
    >>> design.format({"sentence": "the red fox ran.", "color": "red"})[0]
    'what color is the animal? the blue cat sat. blue the red dog ran. red the red fox ran.'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from softprompt.core.inference.methods import check_method
from softprompt.core.text import tokens as tok
from softprompt.tasks.base import Example, Task

#: How one training example is written as a shot.
SHOT_TEMPLATE = "{inputs} {targets}"


def draw_shots(train_examples: Sequence[Example], shots: int, seed: int = 0) -> list[Example]:
    """`shots` distinct training examples drawn with `seed` (a one-line error if too many).

    Example:
        >>> len(draw_shots([{"x": i} for i in range(10)], 3, seed=1))
        3
    """
    if not isinstance(shots, int) or shots < 0:
        raise ValueError(f"--shots must be a non-negative integer, got {shots!r}")
    if shots > len(train_examples):
        raise ValueError(f"--shots {shots} is more than the {len(train_examples)} examples of "
                         "the training split")
    order = np.random.default_rng([int(seed), 7919]).permutation(len(train_examples))
    return [train_examples[int(i)] for i in order[:shots]]


class DesignedTask(Task):
    """`task` with an instruction and shots in front of each input; everything else delegated.

    Args:
        task: the task to wrap (its reading, targets, candidates and metrics are kept).
        tokenizer: the model's tokenizer (to count tokens for the length budget).
        instruction: text in front of everything ("" for none).
        shots: the training examples written after the instruction.
        max_input_length: the encoder's token budget, ``</s>`` included.
        shot_template: how a shot is written (``{inputs}``, ``{targets}``).
    """

    def __init__(self, task: Task, tokenizer, instruction: str = "",
                 shots: Sequence[Example] = (), max_input_length: int = 512,
                 shot_template: str = SHOT_TEMPLATE):
        self.inner = task
        self.name = task.name
        self.labels = task.labels
        self.main_metric = task.main_metric
        self.instruction = instruction.strip()
        self.tokenizer = tokenizer
        self.max_input_length = int(max_input_length)
        self.shot_texts = []
        for ex in shots:
            inputs, targets = task.format(ex)
            self.shot_texts.append(shot_template.format(inputs=inputs, targets=targets).strip())
        pieces = [self.instruction, *self.shot_texts]
        lengths = [len(r) for r in tok.tokenize(tokenizer, pieces, add_eos=False)] if any(
            pieces) else [0] * len(pieces)
        self._instruction_tokens = lengths[0] if self.instruction else 0
        self._shot_tokens = lengths[1:]

    def shots_that_fit(self, input_tokens: int) -> int:
        """How many shots fit in front of an input of `input_tokens` tokens (``</s>``
        included) after the instruction: the first ones drawn, as many as the budget holds."""
        budget = self.max_input_length - input_tokens - self._instruction_tokens
        kept = 0
        for n in self._shot_tokens:
            if n > budget:
                break
            kept += 1
            budget -= n
        return kept

    def prefix(self, input_tokens: int) -> str:
        """The text in front of an input of `input_tokens` tokens: instruction, shots that fit."""
        kept = self.shot_texts[: self.shots_that_fit(input_tokens)]
        return " ".join(p for p in (self.instruction, *kept) if p)

    def format(self, example: Example) -> tuple[str, str]:
        inputs, targets = self.inner.format(example)
        if not self.instruction and not self.shot_texts:
            return inputs, targets
        n = len(tok.tokenize(self.tokenizer, [inputs], add_eos=True)[0])
        prefix = self.prefix(n)
        return (f"{prefix} {inputs}" if prefix else inputs), targets

    def read(self, path, split):
        return self.inner.read(path, split)

    def postprocess(self, text: str, example: Example) -> str:
        return self.inner.postprocess(text, example)

    def candidates(self, example: Example):
        return self.inner.candidates(example)

    def train_examples(self, examples):
        return self.inner.train_examples(examples)

    def evaluate(self, examples, predictions):
        return self.inner.evaluate(examples, predictions)

    def __repr__(self) -> str:
        return (f"<DesignedTask {self.name!r}: instruction {self.instruction!r}, "
                f"{len(self.shot_texts)} shots>")


def bare_model(preset):
    """The model of `preset` with no prompt at all: the frozen model of prompt design, or a
    model-tuned preset as it was trained."""
    from softprompt.core.model.prompted_t5 import PromptedT5  # keras loads here

    return PromptedT5.from_preset(preset, prompt_length=1, init="zeros").without_prompt()


def evaluate_alone(preset, task: Task, examples, *, instruction: str = "",
                   shots: Sequence[Example] = (), method: str = "decode",
                   batch_size: int = 32, max_input_length: int = 512,
                   max_target_length: int | None = None, model=None):
    """The model of `preset` alone (no soft prompt) on `examples`: ``(metrics, model)``.

    With an `instruction` and/or `shots` (training examples), they stand in front
    of every input (prompt design); without, the inputs are the task's own (a
    model-tuned preset, or the "no prompt" baseline). A `model` already loaded
    (`bare_model`) is reused.

    Example:
        >>> metrics, _ = evaluate_alone("runs/mt/best", task, dev)
        >>> metrics, _ = evaluate_alone("softprompt_tiny", task, dev,
        ...                             instruction="what color is the animal?",
        ...                             shots=draw_shots(train, 4, seed=1))
    """
    from softprompt.core.inference.evaluate import evaluate  # keras loads here

    check_method(method)
    if model is None:
        model = bare_model(preset)
    if instruction.strip() or shots:
        task = DesignedTask(task, model.tokenizer, instruction, shots, max_input_length)
    metrics, _ = evaluate(model, task, examples, method, batch_size=batch_size,
                          max_input_length=max_input_length, max_target_length=max_target_length)
    return {k: float(v) for k, v in metrics.items()}, model


def evaluate_design(preset, task: Task, data, *, instruction: str = "", shots: int = 0,
                    seed: int = 0, split: str = "validation", model=None, **settings):
    """Prompt design's metrics on `split` of `data`: ``(metrics, model)``.

    The shots are drawn from the training split with `seed`; `settings` are
    `evaluate_alone`'s (``method``, ``batch_size``, lengths).

    Example:
        >>> metrics, _ = evaluate_design("softprompt_tiny", task, "data/colors",
        ...                              instruction="what color is the animal?", shots=4)
    """
    train = task.train_examples(task.read(data, "train")) if shots else []
    drawn = draw_shots(train, shots, seed)
    return evaluate_alone(preset, task, task.read(data, split), instruction=instruction,
                          shots=drawn, model=model, **settings)
