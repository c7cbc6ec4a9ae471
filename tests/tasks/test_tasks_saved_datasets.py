"""Datasets saved with `datasets`' ``save_to_disk``, read offline.

The `datasets` package is optional, so these tests stand in a small fake module with the two
things the reader uses (``load_from_disk``; a dataset's rows and ``features`` with ``ClassLabel``
``names``) for the real one, and write the marker file ``save_to_disk`` leaves.
"""

import sys
import types

import pytest

from softprompt import tasks


class ClassLabel:
    def __init__(self, names):
        self.names = names


class Dataset(list):
    def __init__(self, rows, features=None):
        super().__init__(rows)
        self.features = features or {}


class DatasetDict(dict):
    pass


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """``saved(name, {split: Dataset})`` → a directory that looks like ``save_to_disk``'s."""
    store = {}
    fake = types.ModuleType("datasets")
    fake.load_from_disk = lambda path: store[path]
    monkeypatch.setitem(sys.modules, "datasets", fake)

    def _saved(name, splits):
        path = tmp_path / name
        path.mkdir()
        (path / "dataset_dict.json").write_text('{"splits": []}')
        store[str(path)] = DatasetDict(splits)
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
