"""Extractive QA: SQuAD v1.1 (JSON) and the MRQA 2019 sets (``.jsonl.gz``), in T5's form.

``question: {question} context: {context}`` → the first gold answer, scored with ``em`` and ``f1``
(SQuAD normalization, maximum over the gold answers), as T5's ``preprocessors.squad`` and
``metrics.squad`` and the official prompt-tuning code's MRQA tasks (the paper's zero-shot domain
transfer: train on ``squad``, evaluate on ``mrqa/<dataset>``).

Like T5, the question, context and answers are punctuation-padded by default: a space either side
of every character outside ``[A-Za-z0-9_]`` (so ``"U.S."`` becomes ``"U . S ."``; RE2's ASCII
``\\W``, which T5's TensorFlow regex uses, so accented letters are padded too), whitespace squeezed.
This is ``t5.data.preprocessors._pad_punctuation`` as the T5 paper and the prompt-tuning paper ran
it (the ``\\W`` rule); T5 releases from 2022 on pad only ASCII punctuation (``[[:punct:]]``: ``_``
padded, accented letters not), which changes some inputs and targets. The gold answers are padded
the same way before scoring, as T5 scores against its padded ``answers``.
``get("squad", pad_punctuation=False)`` keeps the text as written.

MRQA, as the official prompt-tuning code's ``preprocessors.mrqa``: the training target is
``answers[0]``, ``answers`` are the golds; whitespace runs (newlines, tabs) become single spaces,
as its ``mrqa_to_tsv.py``. Deliberate difference: every question of a context is an example (the
official script keeps only ``qas[0]`` of each line). The header line of an MRQA file is
recognised and is not an example.

On the Hugging Face Hub: SQuAD is ``rajpurkar/squad`` (``id``, ``title``, ``context``,
``question``, ``answers.text``, ``answers.answer_start``); MRQA is ``mrqa-workshop/mrqa``, one
row per question (``subset`` naming the set, ``context``, ``qid``, ``question``,
``detected_answers``, ``answers``), the in-domain sets in its ``train``/``validation`` splits and
the six out-of-domain dev sets, which the paper evaluates on, in its ``test`` split (read here as
``validation``; they have no training split).

SQuAD 2.0 files read too: an unanswerable question (``is_impossible``) has no gold answers and the
empty target; it scores 100 only for an empty prediction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

from softprompt.tasks import metrics, readers, sources
from softprompt.tasks.base import Example, Task, register
from softprompt.tasks.sources import HubDataset

_NON_WORD = re.compile(r"(\W)", re.ASCII)
_SPACES = re.compile(r"[\t\n\f\r ]+")  # RE2's \s


def pad_punctuation(text: str) -> str:
    """T5's ``_pad_punctuation``: spaces around each non-word character, whitespace squeezed.

    >>> pad_punctuation("The U.S. (mainly)")
    'The U . S . ( mainly ) '
    """
    return _SPACES.sub(" ", _NON_WORD.sub(r" \1 ", text))


class QATask(Task):
    """Free-form answers extracted from a context; ``em`` picks the best checkpoint."""

    labels = None
    main_metric = "em"
    metric_names = ("em", "f1")
    input_format = "question: {question} context: {context} (punctuation padded)"
    target_format = "the first gold answer (scored against all)"

    def __init__(self, pad_punctuation: bool = True):
        self.pad_punctuation = bool(pad_punctuation)

    def columns(self, split: str) -> tuple[str, ...]:
        return ("question", "context") + (() if split == "test" else ("answers",))

    def _prepare(self, text: str) -> str:
        if self.pad_punctuation:
            text = pad_punctuation(text)
        return _SPACES.sub(" ", text).strip()

    def format(self, example: Example) -> tuple[str, str]:
        question = self._prepare(self._text(example, "question"))
        context = self._prepare(self._text(example, "context"))
        target = example.get("answer")
        if target is None:
            answers = example.get("answers") or [""]
            if not isinstance(answers, list):
                raise ValueError(f"{self.name}: field 'answers' must be a list of strings")
            target = answers[0]
        return f"question: {question} context: {context}", self._prepare(str(target))

    def candidates(self, example: Example) -> None:
        return None

    def _score(self, examples: list[Example], predictions: list[str]) -> dict[str, float]:
        golds = []
        for i, ex in enumerate(examples):
            answers = ex.get("answers")
            if answers is None:
                raise ValueError(
                    f"{self.name}: example {i} has no field 'answers' (an unlabeled split "
                    f"cannot be evaluated)"
                )
            golds.append([self._prepare(a) for a in answers])
        return metrics.squad(golds, predictions)

    def _from_saved(self, row: dict, where: str, split: str) -> list[Example]:
        """A row of `datasets`' ``squad`` (``answers.text``) or ``mrqa`` layout."""
        answers = row.get("answers")
        if isinstance(answers, dict):
            answers = answers.get("text")
        return [
            self._example(
                {**row, "answers": answers},
                where,
                split,
                row.get("id", row.get("qid")),
                readers.field(row, "context", where),
            )
        ]

    def _example(
        self, qa: dict, where: str, split: str, qid, context: str, prefix: str = ""
    ) -> Example:
        example: Example = {
            "id": qid,
            "question": readers.field(qa, "question", where, str, prefix),
            "context": context,
            "answers": None,
        }
        if qa.get("answers") is None and split == "test":
            return example
        answers = readers.field(qa, "answers", where, list, prefix)
        answers = [a.get("text") if isinstance(a, dict) else a for a in answers]
        for i, a in enumerate(answers):
            if not isinstance(a, str):
                raise ValueError(f"{where}: field '{prefix}answers[{i}]' must be a string")
        if not answers and not qa.get("is_impossible"):
            raise ValueError(f"{where}: field '{prefix}answers' is empty")
        example["answers"] = answers
        example["answer"] = answers[0] if answers else ""
        return example


@register("squad")
class Squad(QATask):
    """SQuAD v1.1 as distributed: ``train-v1.1.json`` / ``dev-v1.1.json`` (2.0 files accepted)."""

    filenames = {
        "train": ("train-v1.1.json", "train-v2.0.json", "train.json"),
        "validation": ("dev-v1.1.json", "dev-v2.0.json", "dev.json", "validation.json"),
        "test": ("test-v1.1.json", "test.json"),
    }
    folders = ("squad",)
    title = "SQuAD v1.1: extractive question answering on Wikipedia"
    hub = HubDataset("rajpurkar/squad", "plain_text")
    sample = {"id": "0", "title": "Water", "context": "At sea level, water boils at 100 °C.",
              "question": "At what temperature does water boil?",
              "answers": {"text": ["100 °C"], "answer_start": [29]}}

    def _read_file(self, path: Path, split: str) -> Iterable[Example]:
        if path.name.endswith((".jsonl", ".jsonl.gz")):  # SQuAD-layout rows, one per line
            for where, record in readers.iter_jsonl(path):
                yield from self._from_saved(record, where, split)
            return
        document = readers.read_json(path)
        for i, article in enumerate(readers.field(document, "data", str(path), list)):
            for j, paragraph in enumerate(
                readers.field(article, "paragraphs", f"{path}, data[{i}]", list)
            ):
                where = f"{path}, data[{i}].paragraphs[{j}]"
                context = readers.field(paragraph, "context", where)
                for k, qa in enumerate(readers.field(paragraph, "qas", where, list)):
                    qa_where = f"{where}.qas[{k}]"
                    qid = qa.get("id") if isinstance(qa, dict) else None
                    yield self._example(qa, qa_where, split, qid, context)


class Mrqa(QATask):
    """One MRQA 2019 set: ``<File>.jsonl.gz`` as distributed (header line, then one context per
    line with its ``qas``), in ``path``, or under ``path/train`` / ``path/dev``; or its rows of
    the hub's ``mrqa-workshop/mrqa``."""

    sample = {"subset": "TextbookQA", "qid": "0", "context": "Cells divide by mitosis.",
              "question": "How do cells divide?", "answers": ["by mitosis", "mitosis"],
              "detected_answers": {"text": ["mitosis"]}}

    def __init__(self, file_stem: str, pad_punctuation: bool = True):
        super().__init__(pad_punctuation)
        names = (f"{file_stem}.jsonl.gz", f"{file_stem}.jsonl")
        self.filenames = {"train": names, "validation": names, "test": names}
        key = next(k for k, v in MRQA_FILES.items() if v == file_stem)
        domain = "an out-of-domain dev set" if key in OUT_OF_DOMAIN else "an in-domain set"
        self.title = f"MRQA 2019 {file_stem}: extractive QA, {domain}"
        splits = ({"train": None, "validation": "test", "test": None} if key in OUT_OF_DOMAIN
                  else {})
        # ``subset`` holds each file's header name; matched as a prefix ("TriviaQA-web").
        self.hub = HubDataset("mrqa-workshop/mrqa", "plain_text", splits=splits, subset=key)

    def _folders(self, split: str) -> tuple[str, ...]:
        return {"train": ("train",), "validation": ("dev", "validation")}.get(split, ("test",))

    def _read_file(self, path: Path, split: str) -> Iterable[Example]:
        for where, record in readers.iter_jsonl(path):
            if "header" in record and "context" not in record:
                continue  # the MRQA header line: dataset name and split, not an example
            if "qas" not in record and "question" in record:  # a hub row, one per question
                for _, row in sources.keep_subset([(where, record)], self.hub):
                    yield from self._from_saved(row, where, split)
                continue
            context = readers.field(record, "context", where)
            for k, qa in enumerate(readers.field(record, "qas", where, list)):
                qid = qa.get("qid", qa.get("id")) if isinstance(qa, dict) else None
                yield self._example(qa, where, split, qid, context, f"qas[{k}].")

    def _example(self, qa, where, split, qid, context, prefix=""):
        """As `QATask`, with whitespace runs squeezed to one space (as ``mrqa_to_tsv.py``)."""
        if not isinstance(qa, dict):
            raise ValueError(f"{where}: field '{prefix[:-1]}' must be a JSON object")
        example = super()._example(qa, where, split, qid, _squeeze(context), prefix)
        example["question"] = _squeeze(example["question"])
        if example["answers"] is not None:
            example["answers"] = [_squeeze(a) for a in example["answers"]]
            example["answer"] = _squeeze(example["answer"])
        return example


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# The MRQA 2019 files: the six out-of-domain dev sets the paper transfers to, and the in-domain.
OUT_OF_DOMAIN = ("bioasq", "drop", "duorc", "race", "relationextraction", "textbookqa")
MRQA_FILES = {
    "bioasq": "BioASQ",
    "drop": "DROP",
    "duorc": "DuoRC.ParaphraseRC",
    "race": "RACE",
    "relationextraction": "RelationExtraction",
    "textbookqa": "TextbookQA",
    "squad": "SQuAD",
    "newsqa": "NewsQA",
    "triviaqa": "TriviaQA-web",
    "searchqa": "SearchQA",
    "hotpotqa": "HotpotQA",
    "naturalquestions": "NaturalQuestionsShort",
}

for _name, _stem in MRQA_FILES.items():
    register(f"mrqa/{_name}", functools.partial(Mrqa, _stem))
