"""GLUE's SST-2, MRPC and QQP from their distributed TSVs, in T5's taskless ``glue()`` form.

- sst2: ``sentence: …`` → ``negative`` | ``positive`` (``accuracy``)
- mrpc: ``sentence1: … sentence2: …`` → ``not_equivalent`` | ``equivalent`` (``f1``, ``accuracy``)
- qqp: ``question1: … question2: …`` → ``not_duplicate`` | ``duplicate`` (``f1``, ``accuracy``)

Files, as in the GLUE download: ``SST-2/{train,dev,test}.tsv`` (``sentence``, ``label``; test:
``index``, ``sentence``), ``MRPC/{train,dev,test}.tsv`` (``Quality``, ``#1 ID``, ``#2 ID``,
``#1 String``, ``#2 String``), ``QQP/{train,dev,test}.tsv`` (``id``, ``qid1``, ``qid2``,
``question1``, ``question2``, ``is_duplicate``; test has no label column). A ``.jsonl`` file with
the field names above (``sentence1``, ``label``, …) or a saved `datasets` GLUE split works too.

On the Hugging Face Hub these are ``nyu-mll/glue`` (``glue``) configurations ``sst2``, ``mrpc``
and ``qqp``: the input fields under the names above, ``label`` a ``ClassLabel`` in the order of
``labels`` here (``-1`` on the unlabeled test split), and ``idx``.

QQP's distributed ``train.tsv`` has rows that are not ``id, qid1, qid2, question1, question2,
is_duplicate`` (a question split over lines): in the training split they are skipped with one
warning that counts them, as TFDS and the Hugging Face builder filter "corrupted rows"; anywhere
else a malformed row is an error naming its line.

For the paper's zero-shot transfer between QQP and MRPC, ``get("mrpc", predictions_from="qqp")``
reads model outputs in QQP's label words (``duplicate`` → ``equivalent``, ``not_duplicate`` →
``not_equivalent``) before scoring, as the official code's ``qqp_to_mrpc`` postprocessor does; and
the other way round.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from softprompt.tasks import readers
from softprompt.tasks.base import Example, register
from softprompt.tasks.classification import ClassificationTask
from softprompt.tasks.sources import HubDataset

FILES = {
    "train": ("train.tsv",),
    "validation": ("dev.tsv", "validation.tsv"),
    "test": ("test.tsv",),
}


class GlueTask(ClassificationTask):
    """A GLUE classification task read from its TSVs.

    Attributes:
        tsv_columns: for each input field, the TSV column holding it.
        label_column: the TSV column holding the label (absent from test files).
        skips_malformed_train_rows: pass over training rows whose fields do not parse (with a
            warning that counts them) instead of failing on the first.
    """

    tsv_columns: dict[str, str] = {}
    label_column: str = "label"
    skips_malformed_train_rows: bool = False
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
        required = list(self.tsv_columns.values())
        if split != "test":
            required.append(self.label_column)
        skipped: list[str] | None = (
            [] if split == "train" and self.skips_malformed_train_rows else None
        )
        for where, row in readers.iter_tsv(path, required, skipped):
            example: Example = {name: row[column] for name, column in self.tsv_columns.items()}
            try:
                example["label"] = self._label(row, self.label_column, where, split)
            except ValueError:
                if skipped is None:
                    raise
                skipped.append(where)
                continue
            yield example
        if skipped:
            first = skipped[0].rsplit(", ", 1)[-1]
            warnings.warn(
                f"{path}: skipped {len(skipped)} malformed rows of the training split (first "
                f"at {first}), as TFDS does",
                readers.DataWarning,
                stacklevel=2,
            )

    def postprocess(self, text: str, example: Example) -> str:
        text = text.strip()
        return self._translate.get(text, text)


@register("sst2")
class SST2(GlueTask):
    """Stanford Sentiment Treebank, binary."""

    title = "GLUE SST-2: the sentiment of a movie-review sentence"
    fields = ("sentence",)
    tsv_columns = {"sentence": "sentence"}
    labels = ["negative", "positive"]
    folders, hub = ("SST-2", "sst2"), HubDataset("nyu-mll/glue", "sst2")
    sample = {"sentence": "a warm and funny film ", "label": 1, "idx": 0}


@register("mrpc")
class MRPC(GlueTask):
    """Microsoft Research Paraphrase Corpus; ``Quality`` 1 means the sentences are equivalent."""

    title = "GLUE MRPC: are the two sentences paraphrases"
    fields = ("sentence1", "sentence2")
    tsv_columns = {"sentence1": "#1 String", "sentence2": "#2 String"}
    label_column = "Quality"
    labels = ["not_equivalent", "equivalent"]
    metric_names = ("f1", "accuracy")
    folders, hub = ("MRPC",), HubDataset("nyu-mll/glue", "mrpc")
    sample = {"sentence1": "The company said profits rose 5 percent.", "label": 1, "idx": 0,
              "sentence2": "Profits went up 5 percent, the company said."}


@register("qqp")
class QQP(GlueTask):
    """Quora Question Pairs."""

    title = "GLUE QQP: do the two Quora questions ask the same thing"
    fields = ("question1", "question2")
    tsv_columns = {"question1": "question1", "question2": "question2"}
    label_column = "is_duplicate"
    labels = ["not_duplicate", "duplicate"]
    metric_names = ("f1", "accuracy")
    skips_malformed_train_rows = True
    folders, hub = ("QQP",), HubDataset("nyu-mll/glue", "qqp")
    sample = {"question1": "How do I learn to cook?", "label": 1, "idx": 0,
              "question2": "What is the best way to learn cooking?"}


_LABELS_OF = {"mrpc": MRPC.labels, "qqp": QQP.labels}
