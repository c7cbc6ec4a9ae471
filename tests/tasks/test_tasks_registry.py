"""The registry: names, lookup, close-match errors, registering, and each task's attributes."""

import pytest

from softprompt import tasks
from softprompt.tasks import base

REQUIRED = [
    "boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc", "sst2", "mrpc", "qqp",
    "squad", "jsonl", "mrqa/textbookqa", "mrqa/bioasq", "mrqa/race", "mrqa/relationextraction",
    "mrqa/duorc", "mrqa/drop", "mrqa/squad", "mrqa/newsqa", "mrqa/triviaqa", "mrqa/searchqa",
    "mrqa/hotpotqa", "mrqa/naturalquestions",
]  # fmt: skip


def test_exports():
    assert set(tasks.__all__) == {"get", "names", "Task", "register"}


def test_names_lists_every_required_task_sorted():
    names = tasks.names()
    assert set(REQUIRED) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "jsonl"])
def test_get_returns_a_named_task(name):
    task = tasks.get(name)
    assert isinstance(task, tasks.Task)
    assert task.name == name


def test_get_is_case_insensitive_and_returns_fresh_instances():
    a, b = tasks.get("BoolQ"), tasks.get(" boolq ")
    assert a.name == b.name == "boolq"
    assert a is not b
    a.labels.append("Maybe")  # one instance's labels are its own
    assert b.labels == ["False", "True"]
    assert tasks.get(a) is a


def test_unknown_name_lists_close_matches(one_line):
    with pytest.raises(ValueError) as e:
        tasks.get("boolk")
    message = one_line(e)
    assert "'boolk'" in message and "did you mean 'boolq'" in message
    with pytest.raises(ValueError) as e:
        tasks.get("mrqa/textbook")
    assert "'mrqa/textbookqa'" in one_line(e)
    with pytest.raises(ValueError) as e:  # nothing close: every name, in order
        tasks.get("zzzz")
    assert one_line(e).endswith(f"unknown task 'zzzz' (known: {', '.join(tasks.names())})")


@pytest.mark.parametrize(
    "name, labels, main_metric",
    [
        ("boolq", ["False", "True"], "accuracy"),
        ("cb", ["entailment", "contradiction", "neutral"], "f1_multiclass"),
        ("copa", ["choice1", "choice2"], "accuracy"),
        ("multirc", ["False", "True"], "f1a"),
        ("record", None, "em"),
        ("rte", ["entailment", "not_entailment"], "accuracy"),
        ("wic", ["False", "True"], "accuracy"),
        ("wsc", None, "accuracy"),
        ("sst2", ["negative", "positive"], "accuracy"),
        ("mrpc", ["not_equivalent", "equivalent"], "f1"),
        ("qqp", ["not_duplicate", "duplicate"], "f1"),
        ("squad", None, "em"),
        ("mrqa/bioasq", None, "em"),
    ],
)
def test_labels_and_main_metric(name, labels, main_metric):
    task = tasks.get(name)
    assert task.labels == labels
    assert task.main_metric == main_metric


def test_candidates():
    assert tasks.get("cb").candidates({}) == ["entailment", "contradiction", "neutral"]
    assert tasks.get("copa").candidates({"choice1": "x", "choice2": "y"}) == [
        "choice1",
        "choice2",
    ]
    assert tasks.get("record").candidates({"entities": ["Oslo", "Park"]}) == ["Oslo", "Park"]
    assert tasks.get("wsc").candidates({}) is None
    assert tasks.get("squad").candidates({}) is None


def test_register_a_custom_task():
    class Echo(tasks.Task):
        def format(self, example):
            return example["text"], example["text"]

    try:
        tasks.register("test-echo", Echo)
        assert "test-echo" in tasks.names()
        task = tasks.get("test-echo")
        assert task.name == "test-echo"
        assert task.format({"text": "hi"}) == ("hi", "hi")
        assert task.train_examples([{"a": 1}]) == [{"a": 1}]
        with pytest.raises(ValueError, match="already registered"):
            tasks.register("test-echo", Echo)
        tasks.register("test-echo", lambda: Echo(), overwrite=True)

        @tasks.register("test-deco")
        class Deco(Echo):
            pass

        assert Deco.name == "test-deco" and isinstance(tasks.get("test-deco"), Deco)
    finally:
        base._REGISTRY.pop("test-echo", None)
        base._REGISTRY.pop("test-deco", None)
    with pytest.raises(ValueError, match="must not be empty"):
        tasks.register("  ", Echo)


def test_get_passes_keyword_arguments():
    assert tasks.get("squad", pad_punctuation=False).pad_punctuation is False
    with pytest.raises(ValueError, match="task 'boolq': .*unexpected keyword argument 'nonsense'"):
        tasks.get("boolq", nonsense=1)  # e.g. from a sidecar: a user error, not a TypeError


@pytest.mark.parametrize("split", ["Train", "val", "dev", "validation", "test"])
def test_split_names(split):
    assert base.readers.normalize_split(split) in ("train", "validation", "test")


def test_unknown_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'eval'"):
        tasks.get("boolq").read(tmp_path, "eval")


def test_evaluate_checks_counts():
    task = tasks.get("rte")
    example = {"premise": "p", "hypothesis": "h", "label": "entailment"}
    with pytest.raises(ValueError, match="nothing to evaluate"):
        task.evaluate([], [])
    with pytest.raises(ValueError, match="2 predictions for 1 examples"):
        task.evaluate([example], ["entailment", "entailment"])
