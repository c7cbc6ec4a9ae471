"""Datasets saved with `datasets`' ``save_to_disk``, read offline.

Written here with the real package (``Dataset.from_dict(...).save_to_disk(...)`` needs no
network), with ``ClassLabel`` features where the hub's copies have them.
"""

import sys

import datasets  # the `test` extra installs it
import pytest

from softprompt import tasks


def ClassLabel(names):  # noqa: N802 - reads like the feature it makes
    return datasets.ClassLabel(names=names)


def Dataset(rows, features=None):  # noqa: N802
    """A `datasets.Dataset` of `rows` (dicts); `features` maps some columns to a feature."""
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    if not features:
        return datasets.Dataset.from_dict(columns)
    inferred = datasets.Dataset.from_dict(columns).features
    return datasets.Dataset.from_dict(columns, features=datasets.Features(
        {key: features.get(key, inferred[key]) for key in columns}))


@pytest.fixture
def saved(tmp_path):
    """``saved(name, {split: Dataset})`` → the directory ``DatasetDict.save_to_disk`` wrote.

    A bare `Dataset` instead of the dict is saved as it is (a single split).
    """

    def _saved(name, splits):
        path = tmp_path / name
        data = splits if isinstance(splits, datasets.Dataset) else datasets.DatasetDict(splits)
        data.save_to_disk(str(path))
        return path

    return _saved


def test_superglue_rows_with_class_labels(saved):
    features = {"label": ClassLabel(["False", "True"])}
    rows = [{"question": "q1", "passage": "p1", "idx": 0, "label": 1},
            {"question": "q2", "passage": "p2", "idx": 1, "label": 0}]  # fmt: skip
    path = saved("boolq", {"validation": Dataset(rows, features),
                           "test": Dataset([{**rows[0], "label": -1}], features)})  # fmt: skip
    task = tasks.get("boolq")
    examples = task.read(path, "val")
    assert [task.format(e) for e in examples] == [
        ("passage: p1 question: q1", "True"),
        ("passage: p2 question: q2", "False"),
    ]
    [unlabeled] = task.read(path, "test")
    assert unlabeled["label"] is None


def test_flat_multirc_record_and_wsc_rows(saved):
    multirc = saved("multirc", {"train": Dataset([
        {"paragraph": "<b>P</b>", "question": "q", "answer": "a", "label": 1,
         "idx": {"paragraph": 0, "question": 0, "answer": 0}}],
        {"label": ClassLabel(["False", "True"])})})  # fmt: skip
    [ex] = tasks.get("multirc").read(multirc, "train")
    assert tasks.get("multirc").format(ex) == ("question: q answer: a paragraph: P", "True")

    record = saved("record", {"train": Dataset([
        {"passage": "Ann met Bo.", "query": "@placeholder met Bo.", "entities": ["Bo", "Ann"],
         "answers": ["Ann"], "idx": {"passage": 0, "query": 0}}])})  # fmt: skip
    [ex] = tasks.get("record").read(record, "train")
    assert tasks.get("record").format(ex) == (
        "query: @placeholder met Bo. entities: Ann, Bo passage: Ann met Bo.",
        "Ann",
    )

    wsc = saved("wsc", {"train": Dataset([
        {"text": "Ann met Bo and she smiled.", "span1_index": 0, "span1_text": "Ann",
         "span2_index": 4, "span2_text": "she", "label": 1, "idx": 0}],
        {"label": ClassLabel(["False", "True"])})})  # fmt: skip
    [ex] = tasks.get("wsc").read(wsc, "train")
    assert tasks.get("wsc").format(ex) == ("Ann met Bo and *she* smiled.", "Ann")
    assert ex["label"] == "True"


def test_squad_and_glue_rows(saved):
    squad = saved("squad", {"validation": Dataset([
        {"id": "s1", "title": "t", "context": "Rome is old.", "question": "What is old?",
         "answers": {"text": ["Rome", "Rome"], "answer_start": [0, 0]}}])})  # fmt: skip
    task = tasks.get("squad")
    [ex] = task.read(squad, "validation")
    assert task.format(ex) == ("question: What is old ? context: Rome is old .", "Rome")
    assert ex["answers"] == ["Rome", "Rome"]
    sst2 = saved("sst2", {"train": Dataset(
        [{"sentence": "nice", "label": 1, "idx": 0}],
        {"label": ClassLabel(["negative", "positive"])})})  # fmt: skip
    [ex] = tasks.get("sst2").read(sst2, "train")
    assert tasks.get("sst2").format(ex) == ("sentence: nice", "positive")


def test_a_single_saved_dataset_is_the_split_asked_for(saved):
    path = saved("rte", Dataset([{"premise": "p", "hypothesis": "h", "label": 0, "idx": 3}],
                                {"label": ClassLabel(["entailment", "not_entailment"])}))
    [ex] = tasks.get("rte").read(path, "validation")
    assert tasks.get("rte").format(ex)[1] == "entailment"


def test_missing_split_and_missing_field(saved, one_line):
    path = saved("cb", {"train": Dataset([{"premise": "p", "label": "neutral"}])})
    with pytest.raises(FileNotFoundError) as e:
        tasks.get("cb").read(path, "validation")
    assert one_line(e) == f"{path}: saved dataset has no split 'validation' (it has train)"
    with pytest.raises(ValueError) as e:
        tasks.get("cb").read(path, "train")
    assert one_line(e) == f"{path} [train], row 0: missing field 'hypothesis'"


def test_without_the_datasets_package(tmp_path, monkeypatch, one_line):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "dataset_info.json").write_text("{}")
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(tmp_path, "train")
    assert "the `datasets` package is not installed" in one_line(e)
