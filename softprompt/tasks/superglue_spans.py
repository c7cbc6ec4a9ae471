"""ReCoRD and WSC: the SuperGLUE tasks whose answers are spans (an entity, a referent).

Their formats, metrics and deliberate differences from T5 are listed in
`softprompt.tasks.superglue`, which holds the other six SuperGLUE tasks.
"""

from __future__ import annotations

import re

from softprompt.tasks import metrics, readers
from softprompt.tasks.base import Example, Task, register
from softprompt.tasks.superglue import BOOL, FILES, superglue_hub


@register("record")
class ReCoRD(Task):
    """ReCoRD: fill ``@placeholder`` in the query with an entity of the passage.

    ``read`` gives one example per query, ``answers`` holding every gold entity (sorted, unique,
    as TFDS) and ``entities`` the passage's entity strings (sorted, unique, as TFDS). The target
    is ``answers[0]``, or ``answer`` when ``train_examples`` set it.
    """

    labels = None
    main_metric = "em"
    metric_names = ("em", "f1")
    title = "SuperGLUE ReCoRD: the passage entity that fills @placeholder in the query"
    input_format = "query: {query} entities: {entities} passage: {passage}"
    target_format = "a gold entity (one training example per answer)"
    filenames, folders, hub = FILES, ("ReCoRD",), superglue_hub("record")
    sample = {"passage": "Lee Adams won the city marathon on Sunday.\n@highlight\nAdams broke "
                         "the course record", "query": "@placeholder crossed the line first.",
              "entities": ["Adams", "Lee Adams"], "answers": ["Adams", "Lee Adams"],
              "idx": {"passage": 0, "query": 0}}

    def columns(self, split: str) -> tuple[str, ...]:
        return ("passage", "query", "entities") + (() if split == "test" else ("answers",))

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        if isinstance(record.get("passage"), str):  # a hub row, one per query
            return self._from_saved(record, where, split)
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
    gold label. An empty prediction (nothing but determiners or whitespace) is `INVALID`, wrong
    whatever the label, as in T5.
    """

    labels = None
    main_metric = "accuracy"
    title = "SuperGLUE WSC (T5's wsc_simple): the referent of the marked pronoun"
    input_format = "{text} with the pronoun span2_text marked *like this*"
    target_format = "span1_text; scored True/False by whether the output names it"
    filenames, folders = FILES, ("WSC",)
    hub = superglue_hub("wsc.fixed")  # the configuration T5's wsc_simple tasks read
    sample = {"text": "Anna thanked Beth because she had helped with the move.",
              "span1_index": 2, "span1_text": "Beth", "span2_index": 4, "span2_text": "she",
              "idx": 0, "label": 1}

    def columns(self, split: str) -> tuple[str, ...]:
        spans = ("text", "span1_text", "span1_index", "span2_text", "span2_index")
        return spans + (() if split == "test" else ("label",))

    def _from_record(self, record: dict, where: str, split: str) -> list[Example]:
        if "target" not in record and "span2_text" in record:  # a hub row
            return self._from_saved(record, where, split)
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
        """``"True"``/``"False"``: does ``text`` name the candidate; `INVALID` (never a gold
        label, so never right) when nothing is left of it but determiners and whitespace, as
        T5's ``wsc_simple`` returns -1 then."""
        if not _clean_referent(text):
            return INVALID
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


#: What `WSC.postprocess` returns for a prediction that names nothing (T5's -1).
INVALID = "invalid"


def _clean_referent(s: str) -> str:
    return " ".join(w for w in s.strip().lower().split(" ") if w not in _DETERMINERS)


def names_referent(prediction: str, referent: str) -> bool:
    """T5's ``postprocessors.wsc_simple`` test: does ``prediction`` name ``referent``?

    >>> names_referent("the blue cup", "The cup"), names_referent("Jo's", "Jo")
    (True, False)
    """
    prediction, referent = _clean_referent(prediction), _clean_referent(referent)
    if ("'" in prediction) != ("'" in referent):
        return False
    p, r = set(prediction.split(" ")), set(referent.split(" "))
    return p <= r or r <= p
