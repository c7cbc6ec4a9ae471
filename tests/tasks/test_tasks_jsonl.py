"""The user's own JSONL task: template, target field, optional labels, and its errors."""

import pytest

from softprompt import tasks

REVIEWS = [
    {"text": "Loved every minute.", "stars": "good", "id": 1},
    {"text": "Fell asleep.", "stars": 0, "id": 2},  # a class index
    {"text": "Fine {really}.", "stars": "good", "id": 3},  # braces in a value are kept
]


def labeled():
    return tasks.get(
        "jsonl", template="review: {text}", target_field="stars", labels=["bad", "good"]
    )


def test_labeled_task_reads_formats_and_scores(write, tmp_path):
    write("reviews/train.jsonl", REVIEWS)
    task = labeled()
    assert task.name == "jsonl" and task.labels == ["bad", "good"]
    assert task.main_metric == "accuracy"
    examples = task.read(tmp_path / "reviews", "train")
    assert [task.format(e) for e in examples] == [
        ("review: Loved every minute.", "good"),
        ("review: Fell asleep.", "bad"),
        ("review: Fine {really}.", "good"),
    ]
    assert task.candidates(examples[0]) == ["bad", "good"]
    # good/bad/good vs good/good/"meh": accuracy 1/3; good: tp1 fp1 fn1 -> 1/2; bad: fn1 -> 0
    scores = task.evaluate(examples, ["good", "good", "meh"])
    assert scores == pytest.approx({"accuracy": 100 / 3, "f1_multiclass": 25.0})


def test_boolean_and_numeric_label_values(write):
    task = tasks.get("jsonl", template="{q}", target_field="a", labels=["False", "True"])
    examples = task.read(write("d.jsonl", [{"q": "x", "a": True}, {"q": "y", "a": "1"}]), "train")
    assert [task.format(e)[1] for e in examples] == ["True", "True"]
    stars = tasks.get("jsonl", template="{t}", target_field="s", labels=["1", "2", "3"])
    # a value that is itself a label wins over reading it as an index
    [ex] = stars.read(write("s.jsonl", [{"t": "ok", "s": 3}]), "train")
    assert stars.format(ex)[1] == "3"


def test_free_text_targets_with_several_golds(write):
    task = tasks.get("jsonl", template="question: {q} context: {c}", target_field="answer")
    assert task.labels is None and task.main_metric == "em"
    lines = [
        {"q": "Who wrote it?", "c": "It was written by Ada Lee.", "answer": ["Ada Lee", "Ada"]},
        {"q": "When?", "c": "In 1901.", "answer": "1901"},
    ]
    examples = task.read(write("qa/validation.jsonl", lines).parent, "validation")
    assert task.format(examples[0]) == (
        "question: Who wrote it? context: It was written by Ada Lee.",
        "Ada Lee",
    )
    assert task.candidates(examples[0]) is None
    # 1) "ada" is the second gold: exact.  2) "in 1901" -> p=1/2, r=1 -> 2/3
    scores = task.evaluate(examples, ["Ada.", "in 1901"])
    assert scores == pytest.approx({"em": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_main_metric_override():
    assert (
        tasks.get("jsonl", template="{a}", target_field="b", main_metric="f1").main_metric == "f1"
    )
    with pytest.raises(ValueError, match="main_metric='accuracy': this task reports em, f1"):
        tasks.get("jsonl", template="{a}", target_field="b", main_metric="accuracy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "needs template="),
        ({"template": "{text}"}, "needs template="),
        ({"template": "no fields", "target_field": "y"}, "uses no field"),
        ({"template": "{a.b}", "target_field": "y"}, "must be a field name"),
        ({"template": "{0}", "target_field": "y"}, "must be a field name"),
        ({"template": "{a", "target_field": "y"}, "template '{a'"),
        ({"template": "{a}", "target_field": "y", "labels": ["x"]}, "at least two distinct"),
        ({"template": "{a}", "target_field": "y", "labels": ["x", "x"]}, "at least two distinct"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.get("jsonl", **kwargs)


def test_missing_template_field_names_the_line(write, one_line):
    path = write("train.jsonl", [REVIEWS[0], {"body": "x", "stars": "good"}])
    with pytest.raises(ValueError) as e:
        labeled().read(path, "train")
    assert one_line(e) == f"{path}, line 2: missing field 'text' (used by the template)"


def test_unknown_and_missing_targets(write, one_line):
    path = write("train.jsonl", [{"text": "x", "stars": "great"}])
    with pytest.raises(ValueError) as e:
        labeled().read(path, "train")
    assert one_line(e) == (
        f"{path}, line 1: unknown label 'great' in field 'stars' (expected one of bad, good)"
    )
    path = write("train.jsonl", [{"text": "x"}])
    with pytest.raises(ValueError, match="line 1: missing field 'stars'"):
        labeled().read(path, "train")
    free = tasks.get("jsonl", template="{text}", target_field="stars")
    with pytest.raises(ValueError, match="line 1: missing field 'stars'"):
        free.read(path, "train")
    path = write("train.jsonl", [{"text": "x", "stars": {"n": 1}}])
    with pytest.raises(ValueError, match="field 'stars' must be a string or a non-empty list"):
        free.read(path, "train")


def test_unlabeled_test_split(write):
    task = labeled()
    [ex] = task.read(write("test.jsonl", [{"text": "x"}]), "test")
    assert task.format(ex) == ("review: x", "")
    with pytest.raises(ValueError, match="no gold 'stars'"):
        task.evaluate([ex], ["good"])


def test_format_of_an_incomplete_example():
    with pytest.raises(ValueError, match="example has no field 'text'"):
        labeled().format({"body": "x"})
