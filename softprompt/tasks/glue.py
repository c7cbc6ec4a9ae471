"""GLUE's SST-2, MRPC and QQP from their distributed TSVs, in T5's taskless ``glue()`` form.

- sst2: ``sentence: …`` → ``negative`` | ``positive`` (``accuracy``)
- mrpc: ``sentence1: … sentence2: …`` → ``not_equivalent`` | ``equivalent`` (``f1``, ``accuracy``)
- qqp: ``question1: … question2: …`` → ``not_duplicate`` | ``duplicate`` (``f1``, ``accuracy``)

Files, as in the GLUE download: ``SST-2/{train,dev,test}.tsv`` (``sentence``, ``label``; test:
``index``, ``sentence``), ``MRPC/{train,dev,test}.tsv`` (``Quality``, ``#1 ID``, ``#2 ID``,
``#1 String``, ``#2 String``), ``QQP/{train,dev,test}.tsv`` (``id``, ``qid1``, ``qid2``,
``question1``, ``question2``, ``is_duplicate``; test has no label column). A ``.jsonl`` file with
the field names above (``sentence1``, ``label``, …) or a saved `datasets` GLUE split works too.

For the paper's zero-shot transfer between QQP and MRPC, ``get("mrpc", predictions_from="qqp")``
reads model outputs in QQP's label words (``duplicate`` → ``equivalent``, ``not_duplicate`` →
``not_equivalent``) before scoring, as the official code's ``qqp_to_mrpc`` postprocessor does; and
the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from softprompt.tasks import readers
from softprompt.tasks.base import Example, register
from softprompt.tasks.classification import ClassificationTask

FILES = {
    "train": ("train.tsv",),
    "validation": ("dev.tsv", "validation.tsv"),
    "test": ("test.tsv",),
}


class GlueTask(ClassificationTask):
    """A GLUE classification task read from its TSVs.

    Attributes:
        columns: the TSV column holding an input field, for fields whose column has
            another name (the others are read from the column of their own name).
        label_column: the TSV column holding the label (absent from test files).
    """

    columns: dict[str, str] = {}
    label_column: str = "label"
    filenames = FILES

    def __init__(self, predictions_from: str | None = None):
        self._translate: dict[str, str] = {}
        if predictions_from is not None:
            source = _LABELS_OF.get(str(predictions_from).lower())
            if source is None or len(source) != len(self.labels or ()):
                known = ", ".join(n for n, v in _LABELS_OF.items() if len(v) == len(self.labels))
                raise ValueError(
                    f"predictions_from={predictions_from!r}: expected a task with "
                    f"{len(self.labels or ())} labels ({known})"
                )
            self._translate = dict(zip(source, self.labels, strict=True))

    def _read_file(self, path: Path, split: str) -> Iterable[Example]:
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            yield from super()._read_file(path, split)
            return
        columns = {name: self.columns.get(name, name) for name in self.fields}
        required = list(columns.values())
        if split != "test":
            required.append(self.label_column)
        for where, row in readers.iter_tsv(path, required):
            example: Example = {name: row[column] for name, column in columns.items()}
            example["label"] = self._label(row, self.label_column, where, split)
            yield example

    def postprocess(self, text: str, example: Example) -> str:
        text = text.strip()
        return self._translate.get(text, text)


@register("sst2")
class SST2(GlueTask):
    """Stanford Sentiment Treebank, binary."""

    fields = ("sentence",)
    labels = ["negative", "positive"]
    folders = ("SST-2", "sst2")


@register("mrpc")
class MRPC(GlueTask):
    """Microsoft Research Paraphrase Corpus; ``Quality`` 1 means the sentences are equivalent."""

    fields = ("sentence1", "sentence2")
    columns = {"sentence1": "#1 String", "sentence2": "#2 String"}
    label_column = "Quality"
    labels = ["not_equivalent", "equivalent"]
    metric_names = ("f1", "accuracy")
    folders = ("MRPC",)


@register("qqp")
class QQP(GlueTask):
    """Quora Question Pairs."""

    fields = ("question1", "question2")
    label_column = "is_duplicate"
    labels = ["not_duplicate", "duplicate"]
    metric_names = ("f1", "accuracy")
    folders = ("QQP",)


_LABELS_OF = {"mrpc": MRPC.labels, "qqp": QQP.labels}
