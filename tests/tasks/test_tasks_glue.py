"""GLUE TSVs as distributed (SST-2, MRPC, QQP): exact formats, F1/accuracy, bad rows."""

import pytest

from softprompt import tasks

SST2_DEV = 'sentence\tlabel\na "warm" and funny film\t1\ndull , slow and far too long\t0\n'
MRPC_DEV = (
    "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    "1\t101\t102\tThe firm sold five shops.\tFive shops were sold by the firm.\n"
    "0\t103\t104\tRain fell all day.\tThe sun shone all day.\n"
    "1\t105\t106\tShe left at noon.\tAt noon, she left.\n"
    "0\t107\t108\tPrices rose.\tPrices fell.\n"
)
QQP_DEV = (
    "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    "1\t11\t12\tHow do I boil an egg?\tWhat is the way to boil an egg?\t1\n"
    "2\t13\t14\tWhy is the sky blue?\tWhy is grass green?\t0\n"
)


def test_sst2_reads_tsv_with_bare_quotes(write, tmp_path):
    write("glue/SST-2/dev.tsv", SST2_DEV)
    task = tasks.get("sst2")
    examples = task.read(tmp_path / "glue", "validation")
    assert [task.format(e) for e in examples] == [
        ('sentence: a "warm" and funny film', "positive"),
        ("sentence: dull , slow and far too long", "negative"),
    ]
    assert task.evaluate(examples, ["positive", "positive"]) == {"accuracy": 50.0}


def test_sst2_test_file_has_no_labels(write):
    path = write("SST-2/test.tsv", "index\tsentence\n0\ta fine film\n")
    task = tasks.get("sst2")
    [ex] = task.read(path.parent, "test")
    assert ex["label"] is None and task.format(ex) == ("sentence: a fine film", "")


def test_mrpc_columns_bom_and_scores(write):
    task = tasks.get("mrpc")
    examples = task.read(write("MRPC/dev.tsv", MRPC_DEV), "validation")
    assert task.format(examples[0]) == (
        "sentence1: The firm sold five shops. sentence2: Five shops were sold by the firm.",
        "equivalent",
    )
    assert [e["label"] for e in examples] == [
        "equivalent", "not_equivalent", "equivalent", "not_equivalent"
    ]  # fmt: skip
    # "same" is invalid on an equivalent pair -> a miss; f1: tp #0, fp #1 #3, fn #2 -> 2/5
    scores = task.evaluate(examples, ["equivalent", "equivalent", "same", "equivalent"])
    assert scores == pytest.approx({"f1": 40.0, "accuracy": 25.0})
    assert list(scores) == ["f1", "accuracy"]


def test_qqp_format_and_scores(write):
    task = tasks.get("qqp")
    examples = task.read(write("QQP/dev.tsv", QQP_DEV), "dev")
    assert task.format(examples[1]) == (
        "question1: Why is the sky blue? question2: Why is grass green?",
        "not_duplicate",
    )
    assert task.evaluate(examples, ["duplicate", "not_duplicate"]) == {
        "f1": 100.0,
        "accuracy": 100.0,
    }


def test_zero_shot_transfer_translates_label_words(write):
    mrpc = tasks.get("mrpc", predictions_from="qqp")
    examples = mrpc.read(write("MRPC/dev.tsv", MRPC_DEV), "validation")
    predictions = ["duplicate", "not_duplicate", "duplicate", "not_duplicate"]
    assert mrpc.evaluate(examples, predictions) == {"f1": 100.0, "accuracy": 100.0}
    qqp = tasks.get("qqp", predictions_from="mrpc")
    assert qqp.postprocess(" not_equivalent", {}) == "not_duplicate"
    with pytest.raises(ValueError, match="predictions_from='sst3'"):
        tasks.get("mrpc", predictions_from="sst3")


def test_glue_jsonl_with_field_names(write):
    path = write("mrpc.jsonl", [{"sentence1": "a", "sentence2": "b", "label": 1, "idx": 9}])
    [ex] = tasks.get("mrpc").read(path, "train")
    assert ex == {"sentence1": "a", "sentence2": "b", "label": "equivalent", "idx": 9}


def test_wrong_number_of_fields_names_the_line(write, one_line):
    path = write("SST-2/train.tsv", "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    with pytest.raises(ValueError) as e:
        tasks.get("sst2").read(path, "train")
    assert one_line(e) == (
        f"{path}, line 3: expected 2 tab-separated fields (sentence, label), found 3"
    )


def test_missing_column_in_header(write, one_line):
    path = write("QQP/train.tsv", "id\tquestion1\tquestion2\n1\ta\tb\n")
    with pytest.raises(ValueError) as e:
        tasks.get("qqp").read(path, "train")
    assert "line 1: missing column 'is_duplicate' in the header" in one_line(e)


def test_unknown_and_missing_label_values(write, one_line):
    path = write("SST-2/train.tsv", "sentence\tlabel\ngood\t1\nodd\t2\n")
    with pytest.raises(ValueError) as e:
        tasks.get("sst2").read(path, "train")
    assert one_line(e).startswith(f"{path}, line 3: unknown label '2' in field 'label'")
    path = write("MRPC/train.tsv", MRPC_DEV.replace("0\t103", "\t103"))
    with pytest.raises(ValueError, match="line 3: missing field 'Quality'"):
        tasks.get("mrpc").read(path, "train")


def test_empty_tsv(write):
    path = write("SST-2/dev.tsv", "")
    with pytest.raises(ValueError, match="empty file"):
        tasks.get("sst2").read(path, "validation")
    path = write("SST-2/dev.tsv", "sentence\tlabel\n")
    with pytest.raises(ValueError, match="no examples in split 'validation'"):
        tasks.get("sst2").read(path, "validation")
