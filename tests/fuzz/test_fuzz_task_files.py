"""Fuzzed task files: arbitrary bytes, and records near each task's format with parts broken.

Every task reads what it is given into examples it can format and score, or raises a user
error naming the file. Pure Python: no framework is imported.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest
from fuzzing import (
    budget,
    edges,
    expect_clean,
    file_with,
    json_values,
    mutated,
    nasty_lines,
    text,
)
from hypothesis import given
from hypothesis import strategies as st

from softprompt import tasks
from softprompt.tasks import readers

edges_or_json = edges | json_values()
words = st.text(st.characters(codec="utf-8", exclude_characters="\t\r\n"), min_size=1,
                max_size=12)
SPLITS = ("train", "validation", "test")


# ---------------------------------------------------------------------- the readers


@st.composite
def raw_files(draw):
    """Bytes as they may arrive: random, text-like lines, a BOM, CRLF, gzipped or not."""
    if draw(st.booleans()):
        data = draw(st.binary(max_size=400))
    else:
        lines = draw(st.lists(st.one_of(text, nasty_lines, json_values().map(json.dumps)),
                              max_size=6))
        data = draw(st.sampled_from(["\n", "\r\n"])).join(lines).encode("utf-8",
                                                                        "surrogatepass")
        if draw(st.booleans()):
            data = b"\xef\xbb\xbf" + data
    gz = draw(st.booleans())
    return (gzip.compress(data) if gz and draw(st.booleans()) else data), gz


@budget(150)
@given(raw_files())
def test_jsonl_reader(file):
    data, gz = file
    with file_with("f.jsonl.gz" if gz else "f.jsonl", data) as path:
        records = expect_clean(lambda: list(readers.iter_jsonl(path)), path)
    for where, record in records or ():
        assert isinstance(record, dict) and where.startswith(f"{path}, line ")


@budget(100)
@given(raw_files(), st.lists(words, max_size=3))
def test_tsv_reader(file, required):
    data, _ = file
    with file_with("f.tsv", data) as path:
        rows = expect_clean(lambda: list(readers.iter_tsv(path, required)), path)
    for _, row in rows or ():
        assert set(required) <= set(row) and all(isinstance(v, str) for v in row.values())


@budget(100)
@given(raw_files())
def test_json_document_reader(file):
    data, _ = file
    with file_with("f.json", data) as path:
        expect_clean(lambda: readers.read_json(path), path)


# ---------------------------------------------------------------------- every task


def _label(labels):
    """A valid gold label: the string, its class index, or a JSON boolean for True/False."""
    valid = st.sampled_from(labels) | st.integers(0, len(labels) - 1)
    return valid | st.booleans() if labels == ["False", "True"] else valid


@st.composite
def record_of(draw, name: str, labels=None):
    """A valid record in task `name`'s source format (`labels`: the jsonl task's)."""
    if name in ("boolq", "wic"):
        fields = ("passage", "question") if name == "boolq" else ("sentence1", "sentence2", "word")
        return {**{f: draw(words) for f in fields}, "label": draw(_label(["False", "True"]))}
    if name in ("cb", "rte"):
        labels = tasks.get(name).labels
        return {"premise": draw(words), "hypothesis": draw(words), "label": draw(_label(labels))}
    if name == "copa":
        return {"premise": draw(words), "choice1": draw(words), "choice2": draw(words),
                "question": draw(st.sampled_from(["cause", "effect"])),
                "label": draw(_label(["choice1", "choice2"]))}
    if name == "multirc":
        answers = [{"text": draw(words), "label": draw(_label(["False", "True"]))}
                   for _ in range(draw(st.integers(1, 3)))]
        return {"idx": draw(st.integers(0, 9)),
                "passage": {"text": draw(words), "questions": [{"question": draw(words),
                                                                "answers": answers}]}}
    if name == "record":
        passage = draw(words) + " " + draw(words)
        start = draw(st.integers(0, len(passage) - 1))
        end = draw(st.integers(start, len(passage) - 1))
        return {"passage": {"text": passage, "entities": [{"start": start, "end": end}]},
                "qas": [{"query": draw(words) + " @placeholder",
                         "answers": [{"text": passage[start:end + 1]}]}]}
    if name == "wsc":
        sentence = draw(st.lists(words.filter(lambda w: " " not in w), min_size=2, max_size=6))
        i = draw(st.integers(0, len(sentence) - 1))
        return {"text": " ".join(sentence),
                "target": {"span1_text": sentence[0], "span1_index": 0,
                           "span2_text": sentence[i], "span2_index": i},
                "label": draw(st.booleans())}
    if name in ("squad", "mrqa/squad"):
        context = draw(words)
        answer = context[: draw(st.integers(1, len(context)))]
        qa = {"id": draw(words), "question": draw(words),
              "answers": [{"text": answer, "answer_start": 0}]}
        if name == "mrqa/squad":
            return {"context": context,
                    "qas": [{**qa, "qid": qa.pop("id"), "answers": [answer],
                             "detected_answers": [{"text": answer}]}]}
        return {"data": [{"title": draw(words), "paragraphs": [{"context": context,
                                                                "qas": [qa]}]}]}
    if name == "jsonl":
        return {"text": draw(words), "label": draw(_label(labels) if labels else words)}
    columns = {"sst2": ["sentence", "label"],
               "mrpc": ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
               "qqp": ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]}[name]
    return {c: str(draw(st.integers(0, 1))) if c in ("label", "Quality", "is_duplicate")
            else draw(words) for c in columns}


def _tsv(rows: list, junk: str | None = None) -> str:
    """GLUE's TSV: the first row's keys as the header (fuzzed rows may differ from it)."""
    header = [str(k) for k in rows[0]] if rows and isinstance(rows[0], dict) else ["x"]
    lines = ["\t".join(header)]
    for row in rows:
        cells = [str(v) for v in row.values()] if isinstance(row, dict) else [json.dumps(row)]
        lines.append("\t".join(cells))
    if junk is not None:
        lines.insert(len(lines) // 2 + 1, junk)
    return "\n".join(lines) + "\n"


TASKS = ["boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc", "sst2", "mrpc",
         "qqp", "squad", "mrqa/squad", "jsonl"]
JSONL_ARGS = {"template": "review: {text}", "target_field": "label", "labels": ["bad", "good"]}


@pytest.mark.parametrize("name", TASKS)
@budget(40)
@given(data=st.data())
def test_every_task_reads_fuzzed_files_or_names_the_file(name, data):
    draw = data.draw
    args = {}
    if name == "jsonl":
        args = JSONL_ARGS if draw(st.booleans()) else {"template": "q: {text}",
                                                       "target_field": "label"}
    task = tasks.get(name, **args)
    split = draw(st.sampled_from(SPLITS))
    originals = draw(st.lists(record_of(name, args.get("labels")), min_size=1, max_size=4))
    broken = draw(st.booleans())
    records = [draw(mutated(r)) for r in originals] if broken else originals
    filename = task.filenames[split][0]
    if name == "squad":
        document = draw(mutated(originals[0])) if broken else originals[0]
        content = json.dumps(document, ensure_ascii=draw(st.booleans()))
    elif name in ("sst2", "mrpc", "qqp"):
        content = _tsv(records, draw(st.none() | text)) if broken else _tsv(originals)
    else:
        lines = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records]
        if broken and draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), draw(nasty_lines))
        if name == "mrqa/squad":
            lines.insert(0, json.dumps({"header": {"dataset": "SQuAD"}}))
        content = "\n".join(lines) + "\n"
    payload = content.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_bytes(gzip.compress(payload) if filename.endswith(".gz") else payload)
        examples = expect_clean(lambda: task.read(tmp, split), path)
        if examples is None:
            assert broken, "a valid file was refused"
            return
    assert examples and all(isinstance(ex, dict) for ex in examples)
    trained = task.train_examples(examples) if split == "train" else examples
    for example in trained:
        inputs, target = task.format(example)
        assert isinstance(inputs, str) and isinstance(target, str)
    if split != "test":
        golds = [task.format(ex)[1] for ex in examples]
        scores = task.evaluate(examples, golds)
        assert all(isinstance(v, float) and math.isfinite(v) and 0 <= v <= 100
                   for v in scores.values()), scores


@budget(60)
@given(template=text, target=text, labels=st.none() | st.lists(text, max_size=4)
       | json_values(), record=json_values())
def test_jsonl_task_options_and_records(template, target, labels, record):
    """The jsonl task's options as a user types them, and any record: a task that formats
    every record it read, or a user error naming the option or the file."""
    task = expect_clean(lambda: tasks.get("jsonl", template=template, target_field=target,
                                          labels=labels), "template", "labels", "target_field")
    if task is None:
        return
    with file_with("test.jsonl", json.dumps(record) + "\n") as path:
        examples = expect_clean(lambda: task.read(path, "test"), path)
    for example in examples or ():
        inputs, target_text = task.format(example)
        assert isinstance(inputs, str) and isinstance(target_text, str)


@pytest.mark.parametrize("name", TASKS)
@budget(40)
@given(data=st.data())
def test_format_postprocess_and_candidates_take_any_record(name, data):
    """`predict` hands request records to the task as they come: any field, any JSON value."""
    args = JSONL_ARGS if name == "jsonl" else {}
    task = tasks.get(name, **args)
    fields = ["text", "label", "passage", "question", "premise", "hypothesis", "choice1",
              "choice2", "sentence1", "sentence2", "word", "answer", "paragraph", "query",
              "entities", "answers", "context", "span1_text", "span2_text", "span2_index",
              "sentence", "question1", "question2", "idx"]
    record = data.draw(st.dictionaries(st.sampled_from(fields), edges_or_json, max_size=8))
    formatted = expect_clean(lambda: task.format(record), name, "field", "template")
    if formatted is not None:
        assert all(isinstance(part, str) for part in formatted), formatted
    candidates = expect_clean(lambda: task.candidates(record), name, "field")
    assert candidates is None or all(isinstance(c, str) for c in candidates), candidates
    prediction = data.draw(text)
    post = expect_clean(lambda: task.postprocess(prediction, record), name, "field")
    assert post is None or isinstance(post, str)
