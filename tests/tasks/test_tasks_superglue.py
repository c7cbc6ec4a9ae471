"""SuperGLUE: hand-written lines in the distributed layout, exact T5 formats, hand-worked scores."""

import pytest

from softprompt import tasks

BOOLQ = [
    {"question": "is the moon made of cheese", "idx": 0, "label": False,
     "passage": "The Moon is a rocky body that orbits the Earth."},
    {"question": "does the earth orbit the sun", "idx": 1, "label": True,
     "passage": "The Earth orbits the Sun once a year."},
]  # fmt: skip


def test_boolq_reads_the_distributed_layout(write, tmp_path):
    write("SuperGLUE/BoolQ/val.jsonl", BOOLQ)
    task = tasks.get("boolq")
    # the task folder, the benchmark root above it, and the file itself all work
    for path in ["SuperGLUE/BoolQ", "SuperGLUE", "SuperGLUE/BoolQ/val.jsonl"]:
        examples = task.read(tmp_path / path, "validation")
        assert [e["label"] for e in examples] == ["False", "True"]
    assert task.format(examples[0]) == (
        "passage: The Moon is a rocky body that orbits the Earth. "
        "question: is the moon made of cheese",
        "False",
    )
    # surrounding whitespace is dropped; anything else that is not the label is wrong
    assert task.evaluate(examples, [" False\n", "yes"]) == {"accuracy": 50.0}


def test_cb_reports_mean_per_class_f1_and_accuracy(write):
    lines = [
        {"premise": "Ann said it might rain.", "hypothesis": "It might rain.",
         "label": "entailment", "idx": 0},
        {"premise": "Bo denied eating.", "hypothesis": "Bo ate.", "label": "contradiction",
         "idx": 1},
        {"premise": "Cy thinks so.", "hypothesis": "It is so.", "label": "neutral", "idx": 2},
        {"premise": "Di wonders.", "hypothesis": "Di knows.", "label": "neutral", "idx": 3},
    ]  # fmt: skip
    task = tasks.get("cb")
    examples = task.read(write("CB/train.jsonl", lines), "train")
    assert task.format(examples[0]) == (
        "hypothesis: It might rain. premise: Ann said it might rain.",
        "entailment",
    )
    # e: tp1 -> F1 1; c: tp0 fn1 -> 0; n: tp2 fp1 -> 4/5; mean 0.6; accuracy 3/4
    scores = task.evaluate(examples, ["entailment", "neutral", "neutral", "neutral"])
    assert scores == pytest.approx(
        {"f1_multiclass": 60.0, "accuracy": 75.0, "mean_3class_f1": 60.0}  # and T5's name
    )
    assert list(scores) == ["f1_multiclass", "accuracy", "mean_3class_f1"]


def test_copa_targets_are_choice_names(write):
    lines = [
        {"premise": "The lamp went dark.", "choice1": "The bulb burned out.",
         "choice2": "The room was painted.", "question": "cause", "idx": 0, "label": 0},
        {"premise": "I dropped the glass.", "choice1": "It floated.",
         "choice2": "It shattered.", "question": "effect", "idx": 1, "label": 1},
    ]  # fmt: skip
    task = tasks.get("copa")
    examples = task.read(write("COPA/val.jsonl", lines), "val")
    assert task.format(examples[0]) == (
        "choice1: The bulb burned out. choice2: The room was painted. "
        "premise: The lamp went dark. question: cause",
        "choice1",
    )
    assert task.format(examples[1])[1] == "choice2"
    assert task.evaluate(examples, ["choice1", "choice1"]) == {"accuracy": 50.0}


def test_rte_and_wic_formats(write):
    rte = tasks.get("rte")
    [ex] = rte.read(write("RTE/train.jsonl", [
        {"premise": "Tina owns three cats.", "hypothesis": "Tina owns a pet.",
         "label": "entailment", "idx": 0}]), "train")  # fmt: skip
    assert rte.format(ex) == (
        "hypothesis: Tina owns a pet. premise: Tina owns three cats.",
        "entailment",
    )
    wic = tasks.get("wic")
    [ex] = wic.read(write("WiC/train.jsonl", [
        {"word": "bank", "sentence1": "He sat on the river bank.",
         "sentence2": "She went to the bank to pay.", "idx": 0, "label": False,
         "start1": 20, "start2": 16, "end1": 24, "end2": 20}]), "train")  # fmt: skip
    assert wic.format(ex) == (
        "sentence1: He sat on the river bank. sentence2: She went to the bank to pay. word: bank",
        "False",
    )


MULTIRC = [
    {"idx": 3, "version": 1.1, "passage": {
        "text": "<b>Sent 1: </b>Ana planted a tree.<br><b>Sent 2: </b>It grew tall.<br>",
        "questions": [
            {"question": "What did Ana plant?", "idx": 0, "answers": [
                {"text": "A tree", "idx": 0, "label": 1},
                {"text": "A flower", "idx": 1, "label": 0}]},
            {"question": "Did it grow?", "idx": 1, "answers": [
                {"text": "Yes, tall", "idx": 2, "label": 1}]}]}},
    {"idx": 4, "version": 1.1, "passage": {
        "text": "Bo stayed home.",
        "questions": [{"question": "Did Bo swim?", "idx": 0, "answers": [
            {"text": "No", "idx": 0, "label": 0}]}]}},
]  # fmt: skip


def test_multirc_flattens_to_answer_options_and_strips_html(write):
    task = tasks.get("multirc")
    examples = task.read(write("MultiRC/val.jsonl", MULTIRC), "validation")
    assert len(examples) == 4
    assert examples[2]["idx"] == {"paragraph": 3, "question": 1, "answer": 2}
    assert task.format(examples[0]) == (
        "question: What did Ana plant? answer: A tree "
        "paragraph: Sent 1: Ana planted a tree. Sent 2: It grew tall. ",
        "True",
    )
    # questions (3,0): both right; (3,1): wrong; (4,0): wrong -> exact_match 1/3
    # options: tp #0, tn #1, fn #2, fp #3 -> f1a 2/(2+1+1)
    scores = task.evaluate(examples, ["True", "False", "False", "True"])
    assert scores == pytest.approx({"f1a": 50.0, "exact_match": 100 / 3, "f1": 50.0})  # T5: f1


RECORD_TEXT = (
    "Lena Park won the race in Oslo.\n@highlight\nPark beat Tom Lee\n@highlight\n"
    "The race was held in Oslo"
)


def _span(text, needle, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return {"start": start, "end": start + len(needle) - 1, "text": needle}


def record_lines():
    entities = [_span(RECORD_TEXT, "Lena Park"), _span(RECORD_TEXT, "Oslo"),
                _span(RECORD_TEXT, "Park", 1), _span(RECORD_TEXT, "Tom Lee"),
                _span(RECORD_TEXT, "Oslo", 1)]  # fmt: skip
    return [{
        "source": "made up", "idx": 7,
        "passage": {"text": RECORD_TEXT, "entities": [
            {"start": e["start"], "end": e["end"]} for e in entities]},
        "qas": [
            {"query": "@placeholder finished first.", "idx": 0, "answers": [
                _span(RECORD_TEXT, "Park", 1), _span(RECORD_TEXT, "Lena Park"),
                _span(RECORD_TEXT, "Lena Park")]},
            {"query": "@placeholder came second.", "idx": 1, "answers": [
                _span(RECORD_TEXT, "Tom Lee")]},
        ],
    }]  # fmt: skip


def test_record_format_candidates_training_expansion_and_scores(write):
    task = tasks.get("record")
    examples = task.read(write("ReCoRD/val.jsonl", record_lines()), "validation")
    assert len(examples) == 2  # one per query
    ex = examples[0]
    assert ex["entities"] == ["Lena Park", "Oslo", "Park", "Tom Lee"]  # unique, sorted
    assert ex["answers"] == ["Lena Park", "Park"]
    assert task.format(ex) == (
        "query: @placeholder finished first. entities: Lena Park, Oslo, Park, Tom Lee "
        "passage: Lena Park won the race in Oslo. Park beat Tom Lee. The race was held in Oslo",
        "Lena Park",
    )
    assert task.candidates(ex) == ["Lena Park", "Oslo", "Park", "Tom Lee"]
    train = task.train_examples(examples)
    assert [task.format(e)[1] for e in train] == ["Lena Park", "Park", "Tom Lee"]
    # 1) "park" matches gold "Park": 1, 1.  2) "tom" vs "tom lee": em 0, f1 2/3
    scores = task.evaluate(examples, ["park", "Tom"])
    assert scores == pytest.approx({"em": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_record_highlight_after_quote_keeps_the_quote():
    task = tasks.get("record")
    ex = {"passage": 'He said "go"\n@highlight\nThey went', "query": "q", "entities": []}
    assert task.format(ex)[0] == 'query: q entities:  passage: He said "go" They went'


WSC = [
    {"text": "Mara thanked Jo because she had helped.", "idx": 0, "label": True,
     "target": {"span1_index": 2, "span1_text": "Jo", "span2_index": 4, "span2_text": "she"}},
    {"text": "The cup fell off the shelf because it was loose.", "idx": 1, "label": False,
     "target": {"span1_index": 0, "span1_text": "The cup", "span2_index": 7,
                "span2_text": "it"}},
    # span2_index is one word off and the pronoun carries punctuation
    {"text": "Sam called Lee, but nobody answered him.", "idx": 2, "label": True,
     "target": {"span1_index": 0, "span1_text": "Sam", "span2_index": 5,
                "span2_text": "him"}},
]  # fmt: skip


def test_wsc_marks_the_pronoun_and_targets_the_referent(write):
    task = tasks.get("wsc")
    examples = task.read(write("WSC/val.jsonl", WSC), "validation")
    assert [task.format(e) for e in examples] == [
        ("Mara thanked Jo because *she* had helped.", "Jo"),
        ("The cup fell off the shelf because *it* was loose.", "The cup"),
        ("Sam called Lee, but nobody answered *him*.", "Sam"),
    ]
    assert task.labels is None and task.candidates(examples[0]) is None
    # training keeps only the examples whose candidate is the referent
    assert [e["idx"] for e in task.train_examples(examples)] == [0, 2]


@pytest.mark.parametrize(
    "prediction, referent, named",
    [
        ("jo", "Jo", True),
        ("the cup", "The cup", True),  # determiners and case ignored
        ("cup", "The cup", True),  # one word set inside the other
        ("the blue cup", "The cup", True),
        ("the shelf", "The cup", False),
        ("Jo's", "Jo", False),  # a possessive only matches a possessive
    ],
)
def test_wsc_referent_match(prediction, referent, named):
    task = tasks.get("wsc")
    assert task.postprocess(prediction, {"span1_text": referent}) == str(named)


@pytest.mark.parametrize("prediction", ["", "  ", "the", "The a"])
def test_wsc_empty_prediction_is_never_right(write, prediction):
    """T5's wsc_simple returns -1 for an empty cleaned prediction: it matches no label, so a
    model that outputs nothing scores 0, not the share of False-labelled examples."""
    task = tasks.get("wsc")
    assert task.postprocess(prediction, {"span1_text": "Jo"}) == "invalid"
    examples = task.read(write("WSC/val.jsonl", WSC), "validation")
    assert task.evaluate(examples, [prediction] * len(examples)) == {"accuracy": 0.0}


def test_wsc_scores_whether_the_referent_was_named(write):
    task = tasks.get("wsc")
    examples = task.read(write("WSC/val.jsonl", WSC), "validation")
    # predictions name: Jo (True, gold True), the shelf (False, gold False), Lee (False, gold
    # True) -> 2 of 3 right
    assert task.evaluate(examples, ["Jo", "the shelf", "Lee"]) == pytest.approx(
        {"accuracy": 200 / 3}
    )


def test_test_split_may_be_unlabeled_but_cannot_be_scored(write, one_line):
    unlabeled = [{k: v for k, v in line.items() if k != "label"} for line in BOOLQ]
    task = tasks.get("boolq")
    examples = task.read(write("BoolQ/test.jsonl", unlabeled), "test")
    assert [e["label"] for e in examples] == [None, None]
    assert task.format(examples[0])[1] == ""
    with pytest.raises(ValueError) as e:
        task.evaluate(examples, ["True", "True"])
    assert "example 0 has no gold 'label'" in one_line(e)
    # ReCoRD's test queries have no answers
    lines = record_lines()
    for qa in lines[0]["qas"]:
        del qa["answers"]
    record = tasks.get("record")
    examples = record.read(write("ReCoRD/test.jsonl", lines), "test")
    assert record.format(examples[0])[1] == ""
    with pytest.raises(ValueError, match="no gold 'answers'"):
        record.evaluate(examples, ["a", "b"])
    with pytest.raises(ValueError, match="no gold 'answers'"):
        record.train_examples(examples)


# ------------------------------------------------------------------------------- bad input


def test_malformed_json_line_names_file_and_line(write, one_line):
    path = write(
        "BoolQ/val.jsonl", '{"question": "q", "passage": "p", "label": true}\n{"question": \n'
    )
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(path.parent, "validation")
    message = one_line(e)
    assert f"{path}, line 2: malformed JSON" in message


def test_a_line_that_is_not_an_object(write):
    path = write("BoolQ/val.jsonl", "[1, 2]\n")
    with pytest.raises(ValueError, match="line 1: expected a JSON object, found list"):
        tasks.get("boolq").read(path, "validation")


def test_missing_field_names_file_line_and_field(write, one_line):
    path = write("BoolQ/train.jsonl", [BOOLQ[0], {"passage": "p", "label": True}])
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(path, "train")
    assert one_line(e) == f"{path}, line 2: missing field 'question'"


def test_missing_label_outside_test(write, one_line):
    path = write("BoolQ/train.jsonl", [{"passage": "p", "question": "q"}])
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(path, "train")
    assert "line 1: missing field 'label' (only the test split may be unlabeled)" in one_line(e)


def test_nested_missing_field_names_the_json_path(write, one_line):
    lines = [{"idx": 0, "passage": {"text": "t", "questions": [
        {"question": "q", "answers": [{"text": "a", "label": 1}, {"label": 0}]}]}}]  # fmt: skip
    path = write("MultiRC/train.jsonl", lines)
    with pytest.raises(ValueError) as e:
        tasks.get("multirc").read(path, "train")
    assert one_line(e) == (f"{path}, line 1: missing field 'passage.questions[0].answers[1].text'")
    lines[0]["passage"]["questions"][0]["answers"][1] = {"text": "b"}
    path = write("MultiRC/train.jsonl", lines)
    with pytest.raises(
        ValueError, match=r"missing field 'passage.questions\[0\].answers\[1\].label'"
    ):
        tasks.get("multirc").read(path, "train")


def test_multirc_ids_must_be_integers_or_strings_in_both_row_forms(write, one_line):
    lines = [{"idx": [0], "passage": {"text": "t", "questions": [
        {"question": "q", "answers": [{"text": "a", "label": 1}]}]}}]  # fmt: skip
    path = write("MultiRC/train.jsonl", lines)
    with pytest.raises(ValueError) as e:
        tasks.get("multirc").read(path, "train")
    assert one_line(e) == f"{path}, line 1: field 'idx' must be an integer or a string, found list"
    flat = [{"paragraph": "p", "question": "q", "answer": "a", "label": 1,
             "idx": {"paragraph": 0, "question": {"n": 1}, "answer": 0}}]
    path = write("MultiRC/train.jsonl", flat)
    with pytest.raises(ValueError) as e:
        tasks.get("multirc").read(path, "train")
    assert one_line(e).endswith("field 'idx.question' must be an integer or a string, found dict")


def test_wrong_field_type(write):
    path = write("RTE/train.jsonl", [{"premise": 3, "hypothesis": "h", "label": "entailment"}])
    with pytest.raises(ValueError, match="line 1: field 'premise' must be a string, found int"):
        tasks.get("rte").read(path, "train")


@pytest.mark.parametrize(
    "name, line, shown",
    [
        ("cb", {"premise": "p", "hypothesis": "h", "label": "maybe"}, "'maybe'"),
        ("copa", {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause",
                  "label": 2}, "2"),
        ("boolq", {"passage": "p", "question": "q", "label": "yes"}, "'yes'"),
    ],
)  # fmt: skip
def test_unknown_label(write, one_line, name, line, shown):
    path = write(f"{name}/train.jsonl", [line])
    with pytest.raises(ValueError) as e:
        tasks.get(name).read(path, "train")
    message = one_line(e)
    assert f"{path}, line 1: unknown label {shown} in field 'label'" in message
    assert "expected one of" in message


def test_record_entity_out_of_range(write, one_line):
    lines = record_lines()
    lines[0]["passage"]["entities"][1]["end"] = 500
    path = write("ReCoRD/train.jsonl", lines)
    with pytest.raises(ValueError) as e:
        tasks.get("record").read(path, "train")
    assert "line 1: field 'passage.entities[1].end' out of range" in one_line(e)


def test_record_missing_answers_outside_test(write):
    lines = record_lines()
    del lines[0]["qas"][1]["answers"]
    path = write("ReCoRD/train.jsonl", lines)
    with pytest.raises(ValueError, match=r"line 1: missing field 'qas\[1\].answers'"):
        tasks.get("record").read(path, "train")


def test_wsc_pronoun_not_in_text(write, one_line):
    line = {**WSC[0], "target": {**WSC[0]["target"], "span2_text": "they"}}
    path = write("WSC/train.jsonl", [WSC[1], line])
    with pytest.raises(ValueError) as e:
        tasks.get("wsc").read(path, "train")
    message = one_line(e)
    assert f"{path}, line 2: field 'target.span2_index'" in message
    assert "'they'" in message


def test_empty_split(write, one_line):
    path = write("BoolQ/val.jsonl", "\n  \n")
    with pytest.raises(ValueError) as e:
        tasks.get("boolq").read(path.parent, "validation")
    assert one_line(e) == f"{path}: no examples in split 'validation'"


def test_bad_paths(tmp_path, write, one_line):
    task = tasks.get("boolq")
    with pytest.raises(FileNotFoundError) as e:
        task.read(tmp_path / "nowhere", "train")
    assert one_line(e) == f"{tmp_path / 'nowhere'}: no such file or directory"
    write("BoolQ/val.jsonl", BOOLQ)
    with pytest.raises(FileNotFoundError) as e:
        task.read(tmp_path / "BoolQ", "train")  # the folder lacks train.jsonl
    message = one_line(e)
    assert "no file for split 'train'" in message and "train.jsonl" in message


def test_wsc_prefers_the_word_at_the_index_ignoring_case():
    from softprompt.tasks.superglue_spans import mark_pronoun

    # "He" occurs at word 0 too, but word 2 is the pronoun meant
    assert mark_pronoun("He said he would come.", "He", 2) == "He said *he* would come."
    # a two-word span
    assert mark_pronoun("Ann gave her own book away.", "her own", 2) == (
        "Ann gave *her own* book away."
    )
