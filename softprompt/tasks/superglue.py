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
and ``exact_match``; ReCoRD ``em`` and ``f1``. Deliberate differences from T5:

- MultiRC's F1 over all answer-options is named ``f1a`` (SuperGLUE's name; T5 calls it ``f1``).
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
from softprompt.tasks.base import Example, Task, register
from softprompt.tasks.classification import ClassificationTask

FILES = {
    "train": ("train.jsonl",),
    "validation": ("val.jsonl", "validation.jsonl", "dev.jsonl"),
    "test": ("test.jsonl",),
}
BOOL = ["False", "True"]


@register("boolq")
class BoolQ(ClassificationTask):
    """BoolQ: yes/no questions about a Wikipedia passage."""

    fields = ("passage", "question")
    labels = BOOL
    filenames, folders = FILES, ("BoolQ",)


@register("cb")
class CB(ClassificationTask):
    """CommitmentBank: three-way entailment; T5 reports the mean per-class F1 first."""

    fields = ("hypothesis", "premise")
    labels = ["entailment", "contradiction", "neutral"]
    metric_names = ("f1_multiclass", "accuracy")
    filenames, folders = FILES, ("CB",)


@register("copa")
class COPA(ClassificationTask):
    """COPA: which choice is the cause/effect of the premise; the targets are the field names
    ``choice1``/``choice2`` (as T5), so rank classification scores those two words."""

    fields = ("choice1", "choice2", "premise", "question")
    labels = ["choice1", "choice2"]
    filenames, folders = FILES, ("COPA",)


@register("rte")
class RTE(ClassificationTask):
    """Recognizing Textual Entailment, two-way."""

    fields = ("hypothesis", "premise")
    labels = ["entailment", "not_entailment"]
    filenames, folders = FILES, ("RTE",)


@register("wic")
class WiC(ClassificationTask):
    """Word-in-Context: is ``word`` used in the same sense in both sentences."""

    fields = ("sentence1", "sentence2", "word")
    labels = BOOL
    filenames, folders = FILES, ("WiC",)


@register("multirc")
class MultiRC(ClassificationTask):
    """MultiRC: one example per answer-option (``read`` flattens ``passage.questions[].answers[]``);
    ``exact_match`` groups the options by question."""

    fields = ("question", "answer", "paragraph")
    labels = BOOL
    metric_names = ("f1a", "exact_match")
    filenames, folders = FILES, ("MultiRC",)

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
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
                            "paragraph": record.get("idx", where),
                            "question": q.get("idx", qi),
                            "answer": a.get("idx", ai),
                        },
                    }
                )
        return out

    def format(self, example: Example) -> tuple[str, str]:
        inputs, targets = super().format(example)
        inputs = re.sub(r"<(/)?b>", "", inputs.replace("<br>", " "))
        return inputs, targets

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i) for i, ex in enumerate(examples)]
        return metrics.multirc([_question_key(ex) for ex in examples], golds, predictions)


def _question_key(example: Example) -> tuple:
    idx = example.get("idx")
    if isinstance(idx, dict) and "question" in idx:
        return ("idx", idx.get("paragraph"), idx["question"])
    return ("text", example.get("paragraph"), example.get("question"))


@register("record")
class ReCoRD(Task):
    """ReCoRD: fill ``@placeholder`` in the query with an entity of the passage.

    ``read`` gives one example per query, ``answers`` holding every gold entity (sorted, unique,
    as TFDS) and ``entities`` the passage's entity strings (sorted, unique, as TFDS). The target
    is ``answers[0]``, or ``answer`` when ``train_examples`` set it.
    """

    labels = None
    main_metric = "em"
    filenames, folders = FILES, ("ReCoRD",)

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        passage = readers.field(record, "passage", where, dict)
        text = readers.field(passage, "text", where, str, "passage.")
        entities = set()
        for i, e in enumerate(readers.field(passage, "entities", where, list, "passage.")):
            ep = f"passage.entities[{i}]."
            start = readers.field(e, "start", where, int, ep)
            end = readers.field(e, "end", where, int, ep)
            if not 0 <= start <= end < len(text):
                raise ValueError(
                    f"{where}: field '{ep}end' out of range (span {start}..{end} "
                    f"of a {len(text)}-character passage)"
                )
            entities.add(text[start : end + 1])
        out = []
        for qi, qa in enumerate(readers.field(record, "qas", where, list)):
            qp = f"qas[{qi}]."
            row = {
                "passage": text,
                "query": readers.field(qa, "query", where, str, qp),
                "entities": sorted(entities),
                "idx": {"passage": record.get("idx", where), "query": qa.get("idx", qi)},
            }
            if qa.get("answers") is not None or split != "test":
                answers = readers.field(qa, "answers", where, list, qp)
                row["answers"] = [
                    readers.field(a, "text", where, str, f"{qp}answers[{ai}].")
                    for ai, a in enumerate(answers)
                ]
            out.extend(self._from_saved(row, where, split, prefix=qp))
        return out

    def _from_saved(self, row: dict, where: str, split: str, prefix: str = "") -> list[Example]:
        example: Example = {
            "passage": readers.field(row, "passage", where, str),
            "query": readers.field(row, "query", where, str, prefix),
            "entities": sorted(
                set(_strings(readers.field(row, "entities", where, list), where, "entities"))
            ),
            "answers": None,
        }
        if row.get("answers") is not None:
            answers = _strings(row["answers"], where, prefix + "answers")
            if not answers and split != "test":
                raise ValueError(f"{where}: field '{prefix}answers' is empty")
            example["answers"] = sorted(set(answers)) or None
        elif split != "test":
            raise ValueError(f"{where}: missing field '{prefix}answers'")
        if row.get("idx") is not None:
            example["idx"] = row["idx"]
        return [example]

    def format(self, example: Example) -> tuple[str, str]:
        passage = self._text(example, "passage")
        passage = re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", passage)
        passage = re.sub(r"\n@highlight\n", ". ", passage)
        entities = ", ".join(self._strings(example, "entities"))
        inputs = f"query: {self._text(example, 'query')} entities: {entities} passage: {passage}"
        target = example.get("answer") or (self._strings(example, "answers") or [""])[0]
        return inputs, str(target)

    def candidates(self, example: Example) -> list[str]:
        return self._strings(example, "entities")

    def _strings(self, example: Example, key: str) -> list[str]:
        """``example[key]``, a list of strings (empty when missing), or a ValueError."""
        value = example.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{self.name}: field {key!r} must be a list of strings")
        return list(value)

    def train_examples(self, examples):
        """One example per gold answer, its target that answer (T5 trains ReCoRD this way)."""
        out = []
        for i, ex in enumerate(examples):
            answers = self._gold(ex, i, "answers")
            out.extend({**ex, "answer": a} for a in answers)
        return out

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i, "answers") for i, ex in enumerate(examples)]
        return metrics.squad(golds, predictions)


def _strings(values: list, where: str, name: str) -> list[str]:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ValueError(
                f"{where}: field '{name}[{i}]' must be a string, found {type(v).__name__}"
            )
    return list(values)


@register("wsc")
class WSC(Task):
    """Winograd Schema Challenge as T5's ``wsc_simple``: the text with the pronoun marked
    ``*he*`` in, the candidate referent (``span1_text``) out.

    Training uses only the examples whose candidate is the correct referent (``train_examples``).
    To score, ``postprocess`` asks whether the generated text names the candidate (T5's fuzzy
    match: case and determiners ignored, either word set inside the other, a possessive only
    matching a possessive) and returns ``"True"``/``"False"``; ``accuracy`` compares that with the
    gold label.
    """

    labels = None
    main_metric = "accuracy"
    filenames, folders = FILES, ("WSC",)

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        target = readers.field(record, "target", where, dict)
        row = {**record, **target}
        return self._from_saved(row, where, split, prefix="target.")

    def _from_saved(self, row: dict, where: str, split: str, prefix: str = "") -> list[Example]:
        text = readers.field(row, "text", where, str)
        example: Example = {"text": text}
        for k in ("span1", "span2"):
            span = readers.field(row, f"{k}_text", where, str, prefix)
            index = readers.field(row, f"{k}_index", where, int, prefix)
            example[f"{k}_text"] = _fix_span(text, span, index)
            example[f"{k}_index"] = index
        try:
            mark_pronoun(text, example["span2_text"], example["span2_index"])
        except ValueError as e:
            raise ValueError(f"{where}: field '{prefix}span2_index': {e}") from None
        example["label"] = self._label(row, "label", where, split, values=BOOL)
        if row.get("idx") is not None:
            example["idx"] = row["idx"]
        return [example]

    def format(self, example: Example) -> tuple[str, str]:
        index = example.get("span2_index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"{self.name}: field 'span2_index' must be an integer")
        try:
            text = mark_pronoun(
                self._text(example, "text"), self._text(example, "span2_text"), index
            )
        except ValueError as e:
            raise ValueError(f"{self.name}: field 'span2_text': {e}") from None
        return text, self._text(example, "span1_text")

    def candidates(self, example: Example) -> None:
        return None

    def postprocess(self, text: str, example: Example) -> str:
        return "True" if names_referent(text, self._text(example, "span1_text")) else "False"

    def train_examples(self, examples):
        """Only the examples whose candidate is the pronoun's referent (T5's training set)."""
        return [ex for i, ex in enumerate(examples) if self._gold(ex, i) == "True"]

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = [self._gold(ex, i) for i, ex in enumerate(examples)]
        return {"accuracy": metrics.accuracy(golds, predictions)}


def _fix_span(text: str, span: str, index: int) -> str:
    """TFDS ``wsc.fixed``'s repairs for a span that is not a substring of the text."""
    span = span.replace("\n", " ")
    if span in text or not span:
        return span
    words = text.split()
    if 0 <= index < len(words):
        first = words[index][:1]
        span = (span[0].lower() if first.islower() else span[0].upper()) + span[1:]
    return span.rstrip(".")


def mark_pronoun(text: str, pronoun: str, index: int) -> str:
    """``text`` with the pronoun at word ``index`` marked ``*…*``; the nearest match if the word
    there is not the pronoun (compared ignoring case; trailing punctuation stays outside).

    >>> mark_pronoun("Mitchell asked Tom if he could lend some money.", "he", 4)
    'Mitchell asked Tom if *he* could lend some money.'
    >>> mark_pronoun("Sam called Lee, but nobody answered him.", "him", 5)
    'Sam called Lee, but nobody answered *him*.'
    """
    words = text.split(" ")
    n = max(1, len(pronoun.split(" ")))
    for i in sorted(range(len(words) - n + 1), key=lambda i: (abs(i - index), i)):
        chunk = " ".join(words[i : i + n])
        head, rest = chunk[: len(pronoun)], chunk[len(pronoun) :]
        if head.lower() == pronoun.lower() and not any(c.isalnum() for c in rest):
            return " ".join(words[:i] + [f"*{head}*{rest}"] + words[i + n :])
    raise ValueError(f"pronoun {pronoun!r} is not a word of the text (index {index})")


_DETERMINERS = frozenset(
    "a an few her his each every many much my our some that the their these this those which "
    "whose your".split()
)


def names_referent(prediction: str, referent: str) -> bool:
    """T5's ``postprocessors.wsc_simple`` test: does ``prediction`` name ``referent``?"""

    def clean(s: str) -> str:
        return " ".join(w for w in s.strip().lower().split(" ") if w not in _DETERMINERS)

    prediction, referent = clean(prediction), clean(referent)
    if ("'" in prediction) != ("'" in referent):
        return False
    p, r = set(prediction.split(" ")), set(referent.split(" "))
    return p <= r or r <= p
