"""Every built-in task read from the Hugging Face Hub's schema equals the task read from its
distributed files: the same formatted inputs and targets, the same training examples, the same
scores. The hub rows are built with the real `datasets` (``Dataset.from_dict`` with the hub's
``Features``, ``ClassLabel`` included) and read back through every path ``--data`` offers: the
task's canonical hub dataset (no ``--data``, from the offline cache), ``hf://datasets/…``, a
``save_to_disk`` folder, Parquet, CSV and JSON lines.

The schemas follow the Hugging Face builders and dataset cards of ``aps/super_glue``
(``super_glue``), ``nyu-mll/glue``, ``rajpurkar/squad`` and ``mrqa-workshop/mrqa``.
"""

from __future__ import annotations

import warnings

import pytest
from hub_helpers import go_offline, publish_dataset

from softprompt import tasks
from softprompt.tasks.readers import DataWarning

datasets = pytest.importorskip("datasets")
S, INT = datasets.Value("string"), datasets.Value("int32")


def label(*names):
    return datasets.ClassLabel(names=list(names))


# ------------------------------------------------------------------ the hub's schemas

FEATURES = {
    "boolq": {"question": S, "passage": S, "idx": INT, "label": label("False", "True")},
    "cb": {"premise": S, "hypothesis": S, "idx": INT,
           "label": label("entailment", "contradiction", "neutral")},
    "copa": {"premise": S, "choice1": S, "choice2": S, "question": S, "idx": INT,
             "label": label("choice1", "choice2")},
    "multirc": {"paragraph": S, "question": S, "answer": S,
                "idx": {"paragraph": INT, "question": INT, "answer": INT},
                "label": label("False", "True")},
    "record": {"passage": S, "query": S, "entities": datasets.Sequence(S),
               "answers": datasets.Sequence(S), "idx": {"passage": INT, "query": INT}},
    "rte": {"premise": S, "hypothesis": S, "idx": INT,
            "label": label("entailment", "not_entailment")},
    "wic": {"word": S, "sentence1": S, "sentence2": S, "start1": INT, "start2": INT, "end1": INT,
            "end2": INT, "idx": INT, "label": label("False", "True")},
    "wsc": {"text": S, "span1_index": INT, "span2_index": INT, "span1_text": S, "span2_text": S,
            "idx": INT, "label": label("False", "True")},
    "sst2": {"sentence": S, "label": label("negative", "positive"), "idx": INT},
    "mrpc": {"sentence1": S, "sentence2": S, "label": label("not_equivalent", "equivalent"),
             "idx": INT},
    "qqp": {"question1": S, "question2": S, "label": label("not_duplicate", "duplicate"),
            "idx": INT},
    "squad": {"id": S, "title": S, "context": S, "question": S,
              "answers": datasets.Sequence({"text": S, "answer_start": INT})},
    "mrqa": {"subset": S, "context": S,
             "context_tokens": datasets.Sequence({"tokens": S, "offsets": INT}),
             "qid": S, "question": S,
             "question_tokens": datasets.Sequence({"tokens": S, "offsets": INT}),
             "detected_answers": datasets.Sequence({
                 "text": S, "char_spans": datasets.Sequence({"start": INT, "end": INT}),
                 "token_spans": datasets.Sequence({"start": INT, "end": INT})}),
             "answers": datasets.Sequence(S)},
}  # fmt: skip


def dataset(schema: str, rows: list[dict]):
    features = datasets.Features(FEATURES[schema])
    columns = {name: [row[name] for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


# ------------------------------------------- the same data, as distributed and as on the hub

# Each case: the files as distributed ({relative path: content}), the hub rows of the split,
# and the split. Contents are made up; layouts are the real ones.

RECORD_TEXT = "Lena Park won in Oslo.\n@highlight\nPark beat Tom Lee"


def _span(needle, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = RECORD_TEXT.index(needle, start + 1)
    return {"start": start, "end": start + len(needle) - 1, "text": needle}


MRQA_CONTEXT = " Cells divide by\nmitosis.\tIt has   phases. "
CASES = {
    "boolq": ({"BoolQ/val.jsonl": [
        {"question": "is the sky blue", "passage": "The sky is blue.", "idx": 0, "label": True},
        {"question": "is ice hot", "passage": "Ice is cold.", "idx": 1, "label": False}]},
        [{"question": "is the sky blue", "passage": "The sky is blue.", "idx": 0, "label": 1},
         {"question": "is ice hot", "passage": "Ice is cold.", "idx": 1, "label": 0}],
        "validation"),
    "cb": ({"CB/train.jsonl": [
        {"premise": "Ann said it might rain.", "hypothesis": "It might rain.",
         "label": "neutral", "idx": 0},
        {"premise": "Bo denied eating.", "hypothesis": "Bo ate.", "label": "contradiction",
         "idx": 1}]},
        [{"premise": "Ann said it might rain.", "hypothesis": "It might rain.", "idx": 0,
          "label": 2},
         {"premise": "Bo denied eating.", "hypothesis": "Bo ate.", "idx": 1, "label": 1}],
        "train"),
    "copa": ({"COPA/val.jsonl": [
        {"premise": "The pond froze.", "choice1": "It was cold.", "choice2": "It was hot.",
         "question": "cause", "label": 0, "idx": 0},
        {"premise": "I ran.", "choice1": "I rested.", "choice2": "I got tired.",
         "question": "effect", "label": 1, "idx": 1}]},
        [{"premise": "The pond froze.", "choice1": "It was cold.", "choice2": "It was hot.",
          "question": "cause", "label": 0, "idx": 0},
         {"premise": "I ran.", "choice1": "I rested.", "choice2": "I got tired.",
          "question": "effect", "label": 1, "idx": 1}],
        "validation"),
    "multirc": ({"MultiRC/val.jsonl": [{"idx": 3, "version": 1.1, "passage": {
        "text": "<b>Sent 1: </b>Ana planted a tree.<br><b>Sent 2: </b>It grew.<br>",
        "questions": [
            {"question": "What did Ana plant?", "idx": 0, "answers": [
                {"text": "A tree", "idx": 0, "label": 1},
                {"text": "A rose", "idx": 1, "label": 0}]},
            {"question": "Did it grow?", "idx": 1, "answers": [
                {"text": "Yes", "idx": 2, "label": 1}]}]}}]},
        [{"paragraph": "<b>Sent 1: </b>Ana planted a tree.<br><b>Sent 2: </b>It grew.<br>",
          "question": "What did Ana plant?", "answer": "A tree",
          "idx": {"paragraph": 3, "question": 0, "answer": 0}, "label": 1},
         {"paragraph": "<b>Sent 1: </b>Ana planted a tree.<br><b>Sent 2: </b>It grew.<br>",
          "question": "What did Ana plant?", "answer": "A rose",
          "idx": {"paragraph": 3, "question": 0, "answer": 1}, "label": 0},
         {"paragraph": "<b>Sent 1: </b>Ana planted a tree.<br><b>Sent 2: </b>It grew.<br>",
          "question": "Did it grow?", "answer": "Yes",
          "idx": {"paragraph": 3, "question": 1, "answer": 2}, "label": 1}],
        "validation"),
    "record": ({"ReCoRD/train.jsonl": [{"source": "made up", "idx": 7, "passage": {
        "text": RECORD_TEXT, "entities": [
            {k: _span(e, n)[k] for k in ("start", "end")}
            for e, n in (("Lena Park", 0), ("Oslo", 0), ("Park", 1), ("Tom Lee", 0))]},
        "qas": [{"query": "@placeholder won.", "idx": 0,
                 "answers": [_span("Park", 1), _span("Lena Park"), _span("Lena Park")]}]}]},
        [{"passage": RECORD_TEXT, "query": "@placeholder won.",
          "entities": ["Lena Park", "Oslo", "Park", "Tom Lee"],
          "answers": ["Lena Park", "Park"], "idx": {"passage": 7, "query": 0}}],
        "train"),
    "rte": ({"RTE/val.jsonl": [
        {"premise": "A cat sat.", "hypothesis": "A cat sits.", "label": "entailment", "idx": 0},
        {"premise": "A dog ran.", "hypothesis": "A cat ran.", "label": "not_entailment",
         "idx": 1}]},
        [{"premise": "A cat sat.", "hypothesis": "A cat sits.", "idx": 0, "label": 0},
         {"premise": "A dog ran.", "hypothesis": "A cat ran.", "idx": 1, "label": 1}],
        "validation"),
    "wic": ({"WiC/train.jsonl": [
        {"word": "bank", "sentence1": "He sat on the bank.", "sentence2": "The bank paid.",
         "idx": 0, "label": False, "start1": 14, "start2": 4, "end1": 18, "end2": 8}]},
        [{"word": "bank", "sentence1": "He sat on the bank.", "sentence2": "The bank paid.",
          "start1": 14, "start2": 4, "end1": 18, "end2": 8, "idx": 0, "label": 0}],
        "train"),
    "wsc": ({"WSC/train.jsonl": [
        {"text": "Mara thanked Jo because she had helped.", "idx": 0, "label": True,
         "target": {"span1_index": 2, "span1_text": "Jo", "span2_index": 4,
                    "span2_text": "she"}},
        # not a substring until fixed: wsc.fixed lowercases the first letter, drops the period
        {"text": "Mara saw the cup fall because it was loose.", "idx": 1, "label": True,
         "target": {"span1_index": 2, "span1_text": "The cup.", "span2_index": 6,
                    "span2_text": "it"}},
        {"text": "The cup fell off the shelf because it was loose.", "idx": 2, "label": False,
         "target": {"span1_index": 4, "span1_text": "the shelf", "span2_index": 7,
                    "span2_text": "it"}}]},
        [{"text": "Mara thanked Jo because she had helped.", "span1_index": 2,
          "span1_text": "Jo", "span2_index": 4, "span2_text": "she", "idx": 0, "label": 1},
         {"text": "Mara saw the cup fall because it was loose.", "span1_index": 2,
          "span1_text": "the cup", "span2_index": 6, "span2_text": "it", "idx": 1, "label": 1},
         {"text": "The cup fell off the shelf because it was loose.", "span1_index": 4,
          "span1_text": "the shelf", "span2_index": 7, "span2_text": "it", "idx": 2,
          "label": 0}],
        "train"),
    "sst2": ({"SST-2/dev.tsv": 'sentence\tlabel\na "warm" film \t1\ndull , slow\t0\n'},
             [{"sentence": 'a "warm" film ', "label": 1, "idx": 0},
              {"sentence": "dull , slow", "label": 0, "idx": 1}],
             "validation"),
    "mrpc": ({"MRPC/train.tsv": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                "1\t1\t2\tShe left at noon.\tAt noon, she left.\n"
                                "0\t3\t4\tPrices rose.\tPrices fell.\n"},
             [{"sentence1": "She left at noon.", "sentence2": "At noon, she left.", "label": 1,
               "idx": 0},
              {"sentence1": "Prices rose.", "sentence2": "Prices fell.", "label": 0, "idx": 1}],
             "train"),
    "qqp": ({"QQP/dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                            "1\t11\t12\tHow to boil an egg?\tHow do I boil an egg?\t1\n"
                            "2\t13\t14\tWhy is the sky blue?\tWhy is grass green?\t0\n"},
            [{"question1": "How to boil an egg?", "question2": "How do I boil an egg?",
              "label": 1, "idx": 0},
             {"question1": "Why is the sky blue?", "question2": "Why is grass green?",
              "label": 0, "idx": 1}],
            "validation"),
    "squad": ({"squad/dev-v1.1.json": {"version": "1.1", "data": [{"title": "Cities",
        "paragraphs": [{"context": "Washington, D.C. is the U.S. capital.", "qas": [
            {"id": "q1", "question": "What is the U.S. capital?", "answers": [
                {"text": "Washington, D.C.", "answer_start": 0},
                {"text": "Washington", "answer_start": 0}]}]}]}]}},
        [{"id": "q1", "title": "Cities", "context": "Washington, D.C. is the U.S. capital.",
          "question": "What is the U.S. capital?",
          "answers": {"text": ["Washington, D.C.", "Washington"], "answer_start": [0, 0]}}],
        "validation"),
    # The out-of-domain dev set is the hub's "test" split, among the other sets' rows; the hub
    # builder strips the context and the question.
    "mrqa/textbookqa": ({"mrqa/dev/TextbookQA.jsonl.gz": [
        {"header": {"dataset": "TextbookQA", "split": "dev"}},
        {"context": MRQA_CONTEXT, "qas": [
            {"qid": "a1", "question": "How do cells\ndivide? ", "answers": ["by mitosis"],
             "detected_answers": [{"text": "mitosis", "char_spans": [[17, 23]],
                                   "token_spans": [[3, 3]]}]}]}]},
        [{"subset": "TextbookQA", "context": MRQA_CONTEXT.strip(), "qid": "a1",
          "question": "How do cells\ndivide?", "answers": ["by mitosis"],
          "detected_answers": {"text": ["mitosis"], "char_spans": [{"start": [17], "end": [23]}],
                               "token_spans": [{"start": [3], "end": [3]}]}}],
        "validation"),
}  # fmt: skip
def _schema(name: str) -> str:
    return "mrqa" if name.startswith("mrqa/") else name


def _mrqa_padding_rows():
    """Rows of other MRQA sets in the same split, which mrqa/textbookqa must leave out."""
    return [{"subset": "BioASQ", "context": "x", "qid": "z1", "question": "q", "answers": ["x"],
             "detected_answers": {"text": [], "char_spans": [], "token_spans": []}}]


def hub_rows(name):
    rows = CASES[name][1]
    if not name.startswith("mrqa/"):
        return rows
    tokens = {"tokens": [], "offsets": []}
    return [dict(r, context_tokens=tokens, question_tokens=tokens)
            for r in rows + _mrqa_padding_rows()]


def same_examples(task, expected, got):
    """Same formats, training examples and scores (on predictions that are partly right)."""
    assert [task.format(e) for e in got] == [task.format(e) for e in expected]
    assert [task.format(e) for e in task.train_examples(got)] == [
        task.format(e) for e in task.train_examples(expected)
    ]
    targets = [task.format(e)[1] for e in expected]
    predictions = [t if i % 2 == 0 else "wrong" for i, t in enumerate(targets)]
    assert task.evaluate(got, predictions) == task.evaluate(expected, predictions)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return go_offline(monkeypatch, tmp_path / "caches")


@pytest.fixture(autouse=True)
def quiet_datasets():
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    yield
    datasets.logging.set_verbosity_warning()


@pytest.mark.parametrize("name", list(CASES))
def test_hub_schema_reads_as_the_distributed_files(name, write, tmp_path, hub):
    files, _, split = CASES[name]
    for relpath, content in files.items():
        write(relpath, content)
    task = tasks.get(name)
    expected = task.read(tmp_path / next(iter(files)).split("/")[0], split)
    assert expected

    ds = dataset(_schema(name), hub_rows(name))
    hub_split = task.hub.hub_split(split)
    publish_dataset({hub_split: ds}, task.hub.path, task.hub.config)
    got = {"canonical (no --data)": task.read(None, split),
           "hf://datasets": task.read(task.hub.uri, split)}
    ds.save_to_disk(str(tmp_path / "saved"))
    ds.to_parquet(str(tmp_path / f"{split}.parquet"))
    ds.to_json(str(tmp_path / "rows.jsonl"))
    got["save_to_disk"] = task.read(tmp_path / "saved", split)
    got["parquet"] = task.read(tmp_path / f"{split}.parquet", split)
    got["jsonl"] = task.read(tmp_path / "rows.jsonl", split)
    if all(not isinstance(v, (dict, list)) for v in CASES[name][1][0].values()):
        ds.to_csv(str(tmp_path / "rows.csv"))
        got["csv"] = task.read(tmp_path / "rows.csv", split)
    for path, examples in got.items():
        try:
            same_examples(task, expected, examples)
        except AssertionError as err:
            raise AssertionError(f"{name} via {path}: {err}") from None


def test_a_folder_in_the_hubs_own_parquet_layout(hub, tmp_path):
    rows = CASES["boolq"][1]
    root = tmp_path / "super_glue" / "boolq"  # as `hf download aps/super_glue` lays it out
    root.mkdir(parents=True)
    dataset("boolq", rows).to_parquet(str(root / "validation-00000-of-00001.parquet"))
    dataset("boolq", rows[:1]).to_parquet(str(root / "train-00000-of-00001.parquet"))
    task = tasks.get("boolq")
    assert [e["label"] for e in task.read(tmp_path / "super_glue", "validation")] == [
        "True", "False"]  # fmt: skip
    assert len(task.read(root, "train")) == 1


def test_test_splits_are_unlabeled(hub):
    rows = [dict(r, label=-1) for r in CASES["boolq"][1]]
    publish_dataset({"test": dataset("boolq", rows)}, "aps/super_glue", "boolq")
    examples = tasks.get("boolq").read(None, "test")
    assert [e["label"] for e in examples] == [None, None]


def test_mrqa_keeps_only_its_subset_and_maps_the_split(hub):
    rows = hub_rows("mrqa/textbookqa")
    publish_dataset({"test": dataset("mrqa", rows)}, "mrqa-workshop/mrqa", "plain_text")
    [ex] = tasks.get("mrqa/textbookqa").read(None, "validation")
    assert ex["id"] == "a1"
    [ex] = tasks.get("mrqa/bioasq").read("hf://datasets/mrqa-workshop/mrqa", "validation")
    assert ex["id"] == "z1"
    with pytest.raises(ValueError) as e:
        tasks.get("mrqa/bioasq").read(None, "train")
    assert str(e.value) == "hub dataset mrqa-workshop/mrqa:plain_text has no 'train' split " \
                           "for this task"
    with pytest.raises(ValueError, match="no rows of subset 'race' .found BioASQ, TextbookQA"):
        tasks.get("mrqa/race").read(None, "validation")


def test_jsonl_task_reads_hub_tables_too(hub, tmp_path):
    features = datasets.Features({"text": S, "label": label("negative", "positive")})
    ds = datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]}, features=features)
    publish_dataset({"train": ds}, "someone/reviews", "default")
    ds.to_parquet(str(tmp_path / "train.parquet"))
    ds.to_csv(str(tmp_path / "train.csv"))
    task = tasks.get("jsonl", template="review: {text}", target_field="label",
                     labels=["negative", "positive"])
    for data in ("hf://datasets/someone/reviews:default", tmp_path / "train.parquet",
                 tmp_path / "train.csv", tmp_path):
        assert [task.format(e) for e in task.read(data, "train")] == [
            ("review: good", "positive"), ("review: bad", "negative")], data  # fmt: skip


# ------------------------------------------------------------------ bad input: one line each


def test_nothing_cached_offline_names_dataset_and_split(hub, one_line):
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(None, "validation")
    message = one_line(e)
    assert message.startswith("hub dataset aps/super_glue:boolq [validation]: cannot be loaded")
    assert "offline" in message


def test_unknown_hub_name_offline(hub, one_line):
    with pytest.raises(ValueError) as e:
        tasks.get("sst2").read("hf://datasets/nobody/nothing", "train")
    assert one_line(e).startswith("hub dataset nobody/nothing [train]: cannot be loaded (offline")


def test_missing_split_names_dataset_and_split(hub, one_line):
    publish_dataset({"train": dataset("boolq", CASES["boolq"][1])}, "aps/super_glue", "boolq")
    with pytest.raises(FileNotFoundError) as e:
        tasks.get("boolq").read(None, "validation")
    assert one_line(e) == (
        "hub dataset aps/super_glue:boolq has no split 'validation' (it has train)"
    )


def test_schema_without_the_tasks_field(hub, one_line):
    other = datasets.Dataset.from_dict({"question": ["q"], "label": [1]})
    publish_dataset({"validation": other}, "someone/quiz", "default")
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read("hf://datasets/someone/quiz:default", "validation")
    assert one_line(e) == (
        "someone/quiz:default [validation]: missing field 'passage' "
        "(the dataset has question, label)"
    )


def test_bad_hub_uri(one_line):
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read("hf://datasets/", "train")
    assert "expected hf://datasets/NAME[:CONFIG]" in one_line(e)


def test_task_without_hub_dataset_needs_data(one_line):
    task = tasks.get("jsonl", template="{a}", target_field="b")
    with pytest.raises(ValueError) as e:
        task.read(None, "train")
    assert one_line(e).startswith("task 'jsonl' has no hub dataset: pass --data")


def test_bad_csv_label_names_the_line(tmp_path, one_line):
    path = tmp_path / "validation.csv"
    path.write_text("question,passage,label\nq,p,1\n\"two\nlines\",p,7\n")
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(path, "validation")
    assert one_line(e) == (
        f"{path}, line 3: unknown label '7' in field 'label' (expected one of False, True)"
    )


def test_folder_without_files_names_what_it_looked_for(tmp_path, one_line):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        tasks.get("boolq").read(tmp_path / "empty", "train")
    assert "nor a table (train.parquet, train-*.parquet, train.csv)" in one_line(e)


# ------------------------------------------------------------------ QQP as distributed


QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"


def test_qqp_training_split_skips_malformed_rows_with_one_warning(write):
    text = (QQP_HEADER + "1\t11\t12\tHow to cook?\tHow do I cook?\t1\n"
            "2\t13\t14\tA question that breaks\n"  # split over two lines in the file
            "over a line?\tAnother?\t0\n"
            "3\t15\t16\tWhy?\tWhy not?\tx\n"  # no usable label
            "4\t17\t18\tWhere?\tWhen?\t0\n")  # fmt: skip
    path = write("QQP/train.tsv", text)
    task = tasks.get("qqp")
    with pytest.warns(DataWarning) as caught:
        examples = task.read(path, "train")
    assert [str(w.message) for w in caught] == [
        f"{path}: skipped 3 malformed rows of the training split (first at line 3), as TFDS "
        f"does"
    ]
    assert [task.format(e)[0] for e in examples] == [
        "question1: How to cook? question2: How do I cook?", "question1: Where? question2: When?"
    ]
    dev = write("QQP/dev.tsv", text)
    with pytest.raises(ValueError, match="line 3: expected 6 tab-separated fields"):
        task.read(dev, "validation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file warns about nothing
        task.read(write("QQP/train.tsv", QQP_HEADER + "1\t1\t2\ta\tb\t1\n"), "train")


def test_a_repository_with_a_loading_script_is_read_from_its_parquet_copy(hub, monkeypatch):
    """`datasets` 4 no longer runs loading scripts; the Hub keeps a Parquet copy of such a
    dataset under refs/convert/parquet, which is read instead."""
    publish_dataset({"validation": dataset("boolq", CASES["boolq"][1])}, "aps/super_glue", "boolq")
    real, asked = datasets.load_dataset, []

    def load_dataset(path, name=None, revision=None, **kwargs):
        asked.append(revision)
        if revision is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found super_glue.py")
        return real(path, name, **kwargs)  # the cached rows stand in for the Parquet copy

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert len(tasks.get("boolq").read(None, "validation")) == 2
    assert asked == [None, "refs/convert/parquet"]
