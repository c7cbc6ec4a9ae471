"""Fuzzed `predict` requests and corpus files: the lines users write by hand.

A request file is read into ``(where, record)`` pairs or refused naming the file and line;
a record is checked and formatted (`softprompt.core.predict.prepare`) or refused naming its
line; a few fuzzed requests then run through the real model end to end. The corpus reader
of ``softprompt adapt`` gets the same treatment.
"""

from __future__ import annotations

import json

import pytest
from fuzzing import budget, edges, expect_clean, file_with, json_values, nasty_lines, text
from hypothesis import given
from hypothesis import strategies as st

from softprompt.cli.predict import read_requests
from softprompt.core.inference.predict import prepare

NAMES = ["boolq", "free", "rte"]
METAS = [{"task": "boolq", "labels": ["False", "True"], "max_target_length": 3},
         {},
         {"task": "rte", "labels": ["entailment", "not_entailment"]}]
FIELDS = ["prompt", "text", "task", "candidates", "passage", "question", "premise",
          "hypothesis", "label"]
value = edges | json_values() | st.sampled_from(NAMES + ["boolq", "rte", "wsc", "jsonl"])
requests = st.dictionaries(st.sampled_from(FIELDS) | text, value, max_size=6)


@st.composite
def request_files(draw):
    lines = draw(st.lists(requests.map(json.dumps) | nasty_lines | text, max_size=5))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=200)) if draw(st.integers(0, 4)) == 0 else data


@budget(150)
@given(request_files())
def test_request_files(data):
    with file_with("requests.jsonl", data) as path:
        records = expect_clean(lambda: read_requests(path), path)
    for where, record in records or ():
        assert where.startswith(f"{path}, line ") and isinstance(record, dict)


@budget(300)
@given(st.lists(requests, min_size=1, max_size=4), st.sampled_from(["decode", "rank"]))
def test_request_records(records, method):
    """Checked and formatted, or refused with the request's line."""
    lines = [(f"in.jsonl, line {i + 1}", r) for i, r in enumerate(records)]
    prepared = expect_clean(lambda: prepare(NAMES, METAS, lines, method, None, 4), "in.jsonl")
    if prepared is None:
        return
    inputs, pids, candidates, lengths, tasks = prepared
    assert len(inputs) == len(records) and all(isinstance(x, str) for x in inputs)
    for text_, cands in zip(inputs, candidates):
        text_.encode("utf-8")  # text a tokenizer takes
        if method == "rank":
            assert cands and all(isinstance(c, str) for c in cands)


@pytest.fixture(scope="module")
def served(preset_v11):
    """A tiny model holding one prompt per name of `NAMES`."""
    from keras import ops

    from softprompt.core.model.prompted_t5 import PromptedT5

    model = PromptedT5.from_preset(preset_v11, prompt_length=2, init="uniform", seed=0)
    return model.with_prompts([ops.convert_to_numpy(model.prompt.embeddings)[0]] * len(NAMES))


@budget(8)
@given(st.lists(st.fixed_dictionaries({"prompt": st.sampled_from(NAMES), "text": text}),
                min_size=1, max_size=4),
       st.sampled_from(["decode", "rank"]))
def test_requests_end_to_end(served, records, method):
    """Arbitrary text (empty, control characters, any script) through the real model."""
    from softprompt.core.inference.predict import answer

    for record in records:
        if method == "rank":
            record["candidates"] = ["yes", "no"]
    lines = [(f"line {i + 1}", r) for i, r in enumerate(records)]
    results = expect_clean(lambda: answer(served, NAMES, METAS, lines, method, batch_size=4,
                                          max_input_length=8, max_target_length=2), "line ")
    if results is not None:
        assert len(results) == len(records)
        assert all(isinstance(r["prediction"], str) for r in results)


@budget(150)
@given(st.lists(st.binary(max_size=60) | json_values().map(json.dumps) | nasty_lines | text,
                min_size=1, max_size=4),
       st.sampled_from(["c.txt", "c.jsonl"]))
def test_corpus_files(lines, name):
    from softprompt.core.pretraining.corpus import read_corpus_files

    data = b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass")
                      for x in lines)
    with file_with(name, data) as path:
        result = expect_clean(lambda: read_corpus_files([str(path)]), path)
    if result is not None:
        texts, pairs, counts = result
        assert counts == {str(path): len(texts) + len(pairs)} and counts[str(path)] > 0
        for item in texts + [p for pair in pairs for p in pair]:
            item.encode("utf-8")
