"""T5's metrics on hand-made predictions; every expected value is worked out in the comments."""

import pytest

from softprompt.tasks import metrics


def test_accuracy():
    assert metrics.accuracy(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 75.0


@pytest.mark.parametrize("fn", [metrics.accuracy, lambda t, p: metrics.squad(t, p)])
def test_empty_and_mismatched_inputs_are_errors(fn):
    with pytest.raises(ValueError, match="no targets"):
        fn([], [])
    with pytest.raises(ValueError, match="1 predictions for 2 targets"):
        fn([["a"], ["b"]], ["a"])


def test_binary_f1_counts_an_invalid_prediction_as_wrong():
    targets = ["T", "T", "F", "F"]
    predictions = ["T", "F", "T", "maybe"]
    # tp: #0; fn: #1; fp: #2 and #3 ("maybe" on a negative becomes the positive) -> 2/(2+2+1)
    assert metrics.f1_with_invalid(targets, predictions, "T", "F") == pytest.approx(40.0)
    # an invalid prediction on a positive target becomes a miss: tp 0, fn 1 -> 0
    assert metrics.f1_with_invalid(["T"], [""], "T", "F") == 0.0
    # no positives anywhere: F1 is 0, not a division error
    assert metrics.f1_with_invalid(["F", "F"], ["F", "F"], "T", "F") == 0.0


def test_mean_multiclass_f1():
    labels = ["e", "c", "n"]
    targets = ["e", "e", "c", "n"]
    predictions = ["e", "c", "c", "x"]
    # e: tp1 fp0 fn1 -> 2/3; c: tp1 fp1 fn0 -> 2/3; n: tp0 fp0 fn1 -> 0; mean 4/9
    assert metrics.mean_multiclass_f1(targets, predictions, labels) == pytest.approx(400 / 9)
    # a class that never occurs nor is predicted scores 0 (sklearn's zero_division=0)
    assert metrics.mean_multiclass_f1(["e"], ["e"], labels) == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("A cat, an owl & THE dog.", "cat owl dog"),
        ("theater  of   the absurd", "theater of absurd"),  # 'the' inside a word stays
        ("U.S.", "us"),
        ("  ", ""),
    ],
)
def test_squad_normalization(text, expected):
    assert metrics.normalize_squad(text) == expected


def test_squad_takes_the_best_gold_for_each_metric():
    # "city of paris" equals "the city of Paris" once the article goes
    assert metrics.squad([["Paris", "the city of Paris"]], ["City of Paris."]) == {
        "em": 100.0,
        "f1": 100.0,
    }
    # "red dog" vs "big red dog": p=1, r=2/3 -> 0.8; vs "dog": p=1/2, r=1 -> 2/3; best 0.8
    scores = metrics.squad([["big red dog", "dog"]], ["red dog"])
    assert scores["em"] == 0.0
    assert scores["f1"] == pytest.approx(80.0)


def test_squad_averages_over_examples_and_counts_tokens_as_a_multiset():
    golds = [["Denver Broncos"], ["the cat the cat"], ["blue"]]
    predictions = ["the Broncos", "cat", "Blue"]
    # 1) "broncos" vs "denver broncos": p=1, r=1/2 -> 2/3, em 0
    # 2) "cat" vs "cat cat": one shared token: p=1, r=1/2 -> 2/3, em 0
    # 3) exact: 1, 1
    scores = metrics.squad(golds, predictions)
    assert scores["em"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)


def test_squad_empty_prediction_and_empty_gold():
    # an empty prediction against a real answer scores nothing
    assert metrics.squad([["blue"]], [""]) == {"em": 0.0, "f1": 0.0}
    # both normalize to "": exact match, but F1 0 (T5 / SQuAD v1.1 script behaviour)
    assert metrics.squad([["a"]], ["The"]) == {"em": 100.0, "f1": 0.0}


def test_squad_unanswerable():
    # no gold answer: full marks only for saying nothing (after normalization)
    assert metrics.squad([[]], [""]) == {"em": 100.0, "f1": 100.0}
    assert metrics.squad([[]], ["the"]) == {"em": 100.0, "f1": 100.0}
    assert metrics.squad([[]], ["Paris"]) == {"em": 0.0, "f1": 0.0}


def test_multirc_groups_answer_options_by_question():
    groups = [(0, 0), (0, 0), (0, 1), (1, 0)]
    targets = ["True", "False", "True", "False"]
    predictions = ["True", "False", "False", "?"]
    # questions: (0,0) all right; (0,1) wrong; (1,0) "?" is never right -> em 1/3
    # options: tp #0, tn #1, fn #2, "?" on a False target counts as True -> fp #3 -> 2/(2+1+1)
    scores = metrics.multirc(groups, targets, predictions)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1a"] == pytest.approx(50.0)


def test_multirc_group_count_must_match():
    with pytest.raises(ValueError, match="group ids"):
        metrics.multirc([1], ["True", "False"], ["True", "False"])
