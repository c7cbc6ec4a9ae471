"""SuperGLUE as distributed (``BoolQ/train.jsonl``, ``val.jsonl``, ``test.jsonl``, …) in T5's forms.

Formats, checked against T5's ``preprocessors.glue``/``record``/``wsc_simple`` and
``glue_utils.get_glue_text_preprocessor`` (taskless: the benchmark-name word dropped):

- boolq: ``passage: … question: …`` → ``False`` | ``True``
- cb: ``hypothesis: … premise: …`` → ``entailment`` | ``contradiction`` | ``neutral``
- copa: ``choice1: … choice2: … premise: … question: cause|effect`` → ``choice1`` | ``choice2``
- multirc: ``question: … answer: … paragraph: …`` (``<br>`` → space, ``<b>``/``</b>`` removed,
  as T5) → ``False`` | ``True``
- record: ``query: … entities: e1, e2, … passage: …`` (``@highlight`` lines joined as sentences,
  as T5) → a gold entity
- rte: ``hypothesis: … premise: …`` → ``entailment`` | ``not_entailment``
- wic: ``sentence1: … sentence2: … word: …`` → ``False`` | ``True``
- wsc: the text with the pronoun marked ``*he*`` → the candidate referent's text

Metrics as T5 reports them: ``accuracy``; CB ``f1_multiclass`` and ``accuracy``; MultiRC ``f1a``
and ``exact_match``; ReCoRD ``em`` and ``f1``. ``evaluate`` also reports T5's own names where they
differ: CB's ``mean_3class_f1`` (= ``f1_multiclass``) and MultiRC's ``f1`` (= ``f1a``, the
SuperGLUE name for the F1 over all answer-options).

The hub's ``aps/super_glue`` (the Hugging Face ``super_glue`` builder) holds the same rows in
flat form: MultiRC one row per answer-option (``paragraph``, ``question``, ``answer``, ``idx``
with ``paragraph``/``question``/``answer``), ReCoRD one row per query with the ``entities`` and
``answers`` strings, WSC as ``wsc.fixed`` (the span fixes below already applied), labels as
``ClassLabel`` indices in the order of ``labels`` here (``-1`` on the unlabeled test split). Both
forms read into the same examples; tests compare the formatted outputs.

Deliberate differences from T5:
- ReCoRD examples are one per query (T5 repeats the query once per answer and deduplicates
  before scoring; the scores are the same). ``train_examples`` expands to one per answer.
- WSC: the pronoun is found at ``span2_index`` or, when the index is off (a few WSC lines), at
  the nearest word that matches, instead of T5's two hard-coded special cases; trailing
  punctuation stays outside the marks (``*him*,``). Span texts get TFDS ``wsc.fixed``'s light
  fixes (newlines to spaces; first-letter case and a trailing period when not in the text).
"""

from __future__ import annotations

import re

from softprompt.tasks import metrics, readers
from softprompt.tasks.base import Example, register
from softprompt.tasks.classification import ClassificationTask
from softprompt.tasks.sources import HubDataset

FILES = {
    "train": ("train.jsonl",),
    "validation": ("val.jsonl", "validation.jsonl", "dev.jsonl"),
    "test": ("test.jsonl",),
}
BOOL = ["False", "True"]


def superglue_hub(config: str) -> HubDataset:
    """SuperGLUE on the Hugging Face Hub (``super_glue`` redirects to ``aps/super_glue``)."""
    return HubDataset("aps/super_glue", config)


@register("boolq")
class BoolQ(ClassificationTask):
    """BoolQ: yes/no questions about a Wikipedia passage."""

    title = "SuperGLUE BoolQ: a yes/no question about a Wikipedia passage"
    fields = ("passage", "question")
    labels = BOOL
    filenames, folders, hub = FILES, ("BoolQ",), superglue_hub("boolq")
    sample = {"question": "is the sun a star", "idx": 0, "label": 1,
              "passage": "The Sun is the star at the centre of the Solar System."}


@register("cb")
class CB(ClassificationTask):
    """CommitmentBank: three-way entailment; T5 reports the mean per-class F1 first."""

    title = "SuperGLUE CommitmentBank: does the premise commit to the hypothesis (3-way)"
    fields = ("hypothesis", "premise")
    labels = ["entailment", "contradiction", "neutral"]
    metric_names = ("f1_multiclass", "accuracy")
    t5_metric_names = {"f1_multiclass": "mean_3class_f1"}
    filenames, folders, hub = FILES, ("CB",), superglue_hub("cb")
    sample = {"premise": "Mary said she might come to the party, but she did not promise it.",
              "hypothesis": "Mary will come to the party", "idx": 0, "label": 2}


@register("copa")
class COPA(ClassificationTask):
    """COPA: which choice is the cause/effect of the premise; the targets are the field names
    ``choice1``/``choice2`` (as T5), so rank classification scores those two words."""

    title = "SuperGLUE COPA: which choice is the cause/effect of the premise"
    fields = ("choice1", "choice2", "premise", "question")
    labels = ["choice1", "choice2"]
    filenames, folders, hub = FILES, ("COPA",), superglue_hub("copa")
    sample = {"premise": "The pond froze over.", "choice1": "The weather was very cold.",
              "choice2": "The fish swam quickly.", "question": "cause", "idx": 0, "label": 0}


@register("rte")
class RTE(ClassificationTask):
    """Recognizing Textual Entailment, two-way."""

    title = "SuperGLUE RTE: does the premise entail the hypothesis"
    fields = ("hypothesis", "premise")
    labels = ["entailment", "not_entailment"]
    filenames, folders, hub = FILES, ("RTE",), superglue_hub("rte")
    sample = {"premise": "The museum, opened in 1990, holds two thousand paintings.",
              "hypothesis": "The museum opened in 1990.", "idx": 0, "label": 0}


@register("wic")
class WiC(ClassificationTask):
    """Word-in-Context: is ``word`` used in the same sense in both sentences."""

    title = "SuperGLUE WiC: is the word used in the same sense in both sentences"
    fields = ("sentence1", "sentence2", "word")
    labels = BOOL
    filenames, folders, hub = FILES, ("WiC",), superglue_hub("wic")
    sample = {"word": "bank", "sentence1": "She sat on the bank of the river.",
              "sentence2": "He paid the money into the bank.", "start1": 14, "end1": 18,
              "start2": 25, "end2": 29, "idx": 0, "label": 0}


@register("multirc")
class MultiRC(ClassificationTask):
    """MultiRC: one example per answer-option (``read`` flattens ``passage.questions[].answers[]``);
    ``exact_match`` groups the options by question."""

    title = "SuperGLUE MultiRC: is this answer to a question about the paragraph correct"
    fields = ("question", "answer", "paragraph")
    labels = BOOL
    metric_names = ("f1a", "exact_match")
    t5_metric_names = {"f1a": "f1"}
    filenames, folders, hub = FILES, ("MultiRC",), superglue_hub("multirc")
    sample = {"paragraph": "<b>Sent 1: </b>Anna planted tomatoes in May.<br><b>Sent 2: </b>By "
                           "August the plants were taller than her.<br>",
              "question": "When did Anna plant the tomatoes?", "answer": "In May",
              "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1}

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        if "passage" not in record and "paragraph" in record:  # a hub row, one per answer
            return self._from_saved(record, where, split)
        passage = readers.field(record, "passage", where, dict)
        text = readers.field(passage, "text", where, str, "passage.")
        questions = readers.field(passage, "questions", where, list, "passage.")
        out = []
        for qi, q in enumerate(questions):
            qp = f"passage.questions[{qi}]."
            question = readers.field(q, "question", where, str, qp)
            for ai, a in enumerate(readers.field(q, "answers", where, list, qp)):
                ap = f"{qp}answers[{ai}]."
                out.append(
                    {
                        "paragraph": text,
                        "question": question,
                        "answer": readers.field(a, "text", where, str, ap),
                        "label": self._label(a, "label", where, split, prefix=ap),
                        "idx": {
                            "paragraph": _id(record.get("idx", where), where, "idx"),
                            "question": _id(q.get("idx", qi), where, f"{qp}idx"),
                            "answer": _id(a.get("idx", ai), where, f"{ap}idx"),
                        },
                    }
                )
        return out

    def _from_saved(self, row: dict, where: str, split: str) -> list[Example]:
        """A hub row (one answer-option); its ``idx`` parts checked as the nested form's are."""
        idx = row.get("idx")
        if isinstance(idx, dict):
            for part, value in idx.items():
                _id(value, where, f"idx.{part}")
        elif idx is not None:
            _id(idx, where, "idx")
        return super()._from_saved(row, where, split)

    def format(self, example: Example) -> tuple[str, str]:
        inputs, targets = super().format(example)
        inputs = re.sub(r"<(/)?b>", "", inputs.replace("<br>", " "))
        return inputs, targets

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i) for i, ex in enumerate(examples)]
        return metrics.multirc([_question_key(ex) for ex in examples], golds, predictions)


def _id(value, where: str, name: str) -> int | str:
    """`value` if it is an integer or a string, as MultiRC's ids are; else a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{where}: field {name!r} must be an integer or a string, "
                         f"found {type(value).__name__}")
    return value


def _question_key(example: Example) -> tuple:
    """The question an answer-option belongs to: its ids, or its paragraph and question text."""
    idx = example.get("idx")
    if isinstance(idx, dict) and "question" in idx:
        return ("idx", idx.get("paragraph"), idx["question"])
    return ("text", example.get("paragraph"), example.get("question"))
