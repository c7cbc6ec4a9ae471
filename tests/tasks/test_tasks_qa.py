"""SQuAD (JSON) and MRQA (.jsonl.gz): T5's padded format, scores against padded golds, errors."""

import pytest

from softprompt import tasks
from softprompt.tasks.qa import pad_punctuation


def squad_doc(extra_qas=()):
    return {"version": "1.1", "data": [{"title": "Cities", "paragraphs": [
        {"context": "Washington, D.C. is the U.S. capital.", "qas": [
            {"id": "q1", "question": "What is the U.S. capital?", "answers": [
                {"text": "Washington, D.C.", "answer_start": 0},
                {"text": "Washington", "answer_start": 0}]}]},
        {"context": "The Nile flows north.", "qas": [
            {"id": "q2", "question": "Which way does the Nile flow?", "answers": [
                {"text": "north", "answer_start": 16}]},
            *extra_qas]},
    ]}]}  # fmt: skip


def test_pad_punctuation_is_t5s():
    assert pad_punctuation("Washington, D.C.") == "Washington , D . C . "
    assert pad_punctuation("snake_case café") == "snake_case caf é "  # RE2's ASCII \W


def test_squad_format_is_t5s_padded_form(write, tmp_path):
    write("squad/dev-v1.1.json", squad_doc())
    task = tasks.get("squad")
    examples = task.read(tmp_path, "validation")
    assert [e["id"] for e in examples] == ["q1", "q2"]
    assert examples[0]["answers"] == ["Washington, D.C.", "Washington"]
    assert task.format(examples[0]) == (
        "question: What is the U . S . capital ? "
        "context: Washington , D . C . is the U . S . capital .",
        "Washington , D . C .",
    )


def test_squad_scores_against_padded_golds(write):
    task = tasks.get("squad")
    examples = task.read(write("dev-v1.1.json", squad_doc()), "validation")
    # 1) "washington d c" equals the padded gold.  2) "the north" -> "north": exact
    assert task.evaluate(examples, ["Washington , D . C .", "the north"]) == {
        "em": 100.0,
        "f1": 100.0,
    }
    # the unpadded spelling normalizes to "washington dc": no exact match; best F1 is against
    # "washington" (p=1/2, r=1 -> 2/3); "south" shares nothing
    scores = task.evaluate(examples, ["Washington, D.C.", "south"])
    assert scores == pytest.approx({"em": 0.0, "f1": 100 * (2 / 3) / 2})


def test_squad_without_padding(write):
    task = tasks.get("squad", pad_punctuation=False)
    examples = task.read(write("dev-v1.1.json", squad_doc()), "validation")
    assert task.format(examples[0]) == (
        "question: What is the U.S. capital? context: Washington, D.C. is the U.S. capital.",
        "Washington, D.C.",
    )
    assert task.evaluate(examples, ["Washington, D.C.", ""]) == {"em": 50.0, "f1": 50.0}


def test_squad2_unanswerable_questions(write):
    impossible = {"id": "q3", "question": "Who owns the Nile?", "answers": [],
                  "is_impossible": True}  # fmt: skip
    task = tasks.get("squad")
    examples = task.read(write("dev-v2.0.json", squad_doc([impossible])), "validation")
    assert examples[2]["answers"] == [] and task.format(examples[2])[1] == ""
    # 1) "capital" shares nothing with either gold.  2) exact.  3) nothing said: right
    scores = task.evaluate(examples, ["the capital", "north", ""])
    assert scores == pytest.approx({"em": 200 / 3, "f1": 200 / 3})
    assert task.evaluate(examples[2:], ["Egypt"]) == {"em": 0.0, "f1": 0.0}


def test_squad_missing_field_names_the_json_path(write, one_line):
    doc = squad_doc()
    del doc["data"][0]["paragraphs"][1]["qas"][0]["question"]
    path = write("dev-v1.1.json", doc)
    with pytest.raises(ValueError) as e:
        tasks.get("squad").read(path, "validation")
    assert one_line(e) == (f"{path}, data[0].paragraphs[1].qas[0]: missing field 'question'")


def test_squad_empty_answers_without_is_impossible(write):
    doc = squad_doc()
    doc["data"][0]["paragraphs"][1]["qas"][0]["answers"] = []
    with pytest.raises(ValueError, match=r"qas\[0\]: field 'answers' is empty"):
        tasks.get("squad").read(write("train-v1.1.json", doc), "train")


def test_squad_malformed_json_names_the_line(write, one_line):
    path = write("dev-v1.1.json", '{"data": [\n  {"title": "x",\n  "paragraphs": [}\n]}')
    with pytest.raises(ValueError) as e:
        tasks.get("squad").read(path, "validation")
    assert one_line(e).startswith(f"{path}, line 3: malformed JSON")


def test_squad_has_no_test_file(write, tmp_path):
    write("squad/dev-v1.1.json", squad_doc())
    with pytest.raises(FileNotFoundError, match="no file for split 'test'"):
        tasks.get("squad").read(tmp_path, "test")


MRQA_LINES = [
    {"header": {"dataset": "TextbookQA", "split": "dev"}},
    {"context": "Cells divide by\nmitosis.\tIt has   phases.", "qas": [
        {"qid": "a1", "question": "How do cells\ndivide?", "answers": ["by mitosis", "mitosis"],
         "detected_answers": [{"text": "mitosis", "char_spans": [[16, 22]]}]},
        {"qid": "a2", "question": "What does mitosis have?", "answers": ["phases"],
         "detected_answers": [{"text": "phases", "char_spans": [[35, 40]]}]}]},
    {"context": "Water boils at 100 degrees.", "qas": [
        {"qid": "b1", "question": "When does water boil?", "answers": ["at 100 degrees"]}]},
]  # fmt: skip


def test_mrqa_reads_gzipped_jsonl_with_header(write, tmp_path):
    write("mrqa/dev/TextbookQA.jsonl.gz", MRQA_LINES)
    task = tasks.get("mrqa/textbookqa")
    examples = task.read(tmp_path / "mrqa", "validation")
    assert [e["id"] for e in examples] == ["a1", "a2", "b1"]  # every question of a context
    assert examples[0]["context"] == "Cells divide by mitosis. It has phases."
    assert task.format(examples[0]) == (
        "question: How do cells divide ? context: Cells divide by mitosis . It has phases .",
        "by mitosis",  # answers[0] (the official preprocessors.mrqa), not the detected span
    )
    assert task.format(examples[2])[1] == "at 100 degrees"
    # 1) exact.  2) "cell phases" vs "phases": p=1/2, r=1 -> 2/3.  3) "100" vs "at 100 degrees":
    # p=1, r=1/3 -> 1/2
    scores = task.evaluate(examples, ["mitosis", "cell phases", "100"])
    assert scores == pytest.approx({"em": 100 / 3, "f1": 100 * (1 + 2 / 3 + 1 / 2) / 3})


def test_mrqa_out_of_domain_sets_have_no_training_split(write, tmp_path):
    write("mrqa/dev/BioASQ.jsonl.gz", MRQA_LINES)
    task = tasks.get("mrqa/bioasq")
    assert len(task.read(tmp_path / "mrqa", "validation")) == 3
    with pytest.raises(FileNotFoundError, match="BioASQ.jsonl.gz"):
        task.read(tmp_path / "mrqa", "train")


def test_mrqa_in_domain_train_and_dev(write, tmp_path):
    write("mrqa/train/SQuAD.jsonl.gz", MRQA_LINES[:2])
    write("mrqa/dev/SQuAD.jsonl.gz", MRQA_LINES[2:])
    task = tasks.get("mrqa/squad")
    assert [e["id"] for e in task.read(tmp_path / "mrqa", "train")] == ["a1", "a2"]
    assert [e["id"] for e in task.read(tmp_path / "mrqa", "validation")] == ["b1"]


def test_mrqa_bad_lines(write, one_line):
    path = write("RACE.jsonl.gz", '{"header": {}}\n{"context": "c", "qas": [\n')
    with pytest.raises(ValueError) as e:
        tasks.get("mrqa/race").read(path, "validation")
    assert one_line(e).startswith(f"{path}, line 2: malformed JSON")
    lines = [MRQA_LINES[0], {"context": "c", "qas": [{"qid": "x", "question": "q"}]}]
    path = write("RACE.jsonl.gz", lines)
    with pytest.raises(ValueError) as e:
        tasks.get("mrqa/race").read(path, "validation")
    assert one_line(e) == f"{path}, line 2: missing field 'qas[0].answers'"
    path = write("RACE.jsonl.gz", [MRQA_LINES[0]])
    with pytest.raises(ValueError, match="no examples in split 'validation'"):
        tasks.get("mrqa/race").read(path, "validation")


def test_corrupt_gzip_is_a_value_error(tmp_path):
    path = tmp_path / "DROP.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="DROP.jsonl.gz: cannot be read"):
        tasks.get("mrqa/drop").read(path, "validation")
