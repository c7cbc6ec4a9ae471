"""What the fuzz tests found, pinned as plain examples: each was a traceback (or exit code 1)
and is now a one-line user error naming the file, line or value."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from softprompt import tasks
from softprompt.tasks import readers

USER_ERRORS = (ValueError, FileNotFoundError, IsADirectoryError)


def refused(call, *fragments):
    with pytest.raises(USER_ERRORS) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


@pytest.mark.parametrize("line,reason", [
    ("[" * 100000, "nested too deeply"),
    ("1" * 5000, "malformed JSON"),
    ('{"text": "a\\ud800b", "label": "good"}', "unpaired surrogate"),
])
def test_json_lines_that_escaped_the_readers(tmp_path, line, reason):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "good"}\n' + line + "\n")
    refused(lambda: list(readers.iter_jsonl(path)), f"{path}, line 2", reason)
    gz = tmp_path / "doc.json.gz"
    gz.write_bytes(gzip.compress(line.encode()))
    refused(lambda: readers.read_json(gz), gz)


def test_class_index_in_other_digits(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"passage": "p", "question": "q", "label": "\u00b2"}) + "\n")
    refused(lambda: tasks.get("boolq").read(path, "train"), f"{path}, line 1", "unknown label")


@pytest.mark.parametrize("name,record,fragment", [
    ("squad", {"data": [{"paragraphs": [{"context": "c", "qas": [None]}]}]}, "qas[0]"),
    ("mrqa/squad", {"context": "c", "qas": [{"question": "q", "answers": ["c"],
                                            "detected_answers": 5}]}, None),
])
def test_qa_entries_of_the_wrong_type(tmp_path, name, record, fragment):
    task = tasks.get(name)
    path = tmp_path / task.filenames["validation"][0]
    text = json.dumps(record) if name == "squad" else json.dumps(record) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    try:
        examples = task.read(path, "validation")
    except ValueError as err:
        assert str(path) in str(err) and (fragment is None or fragment in str(err)), err
    else:  # detected_answers of the wrong type are ignored: the gold answers stay
        assert examples[0]["answers"] == ["c"]


@pytest.mark.parametrize("name,record", [
    ("record", {"query": "q", "passage": "p", "entities": [1]}),
    ("record", {"query": "q", "passage": "p", "answers": 5}),
    ("wsc", {"text": "a b", "span1_text": "a", "span2_text": "b", "span2_index": "x"}),
    ("wsc", {"text": "a b", "span1_text": "a", "span2_text": " ", "span2_index": 0}),
    ("squad", {"question": "q", "context": "c", "answers": 5}),
])
def test_format_of_request_records(name, record):
    refused(lambda: tasks.get(name).format(record), name)


def test_classification_targets_are_strings():
    assert tasks.get("boolq").format({"passage": "p", "question": "q", "label": -1})[1] == "-1"


@pytest.mark.parametrize("template,fragment", [
    ("{text!z}", "unknown conversion"),
    ("{text:{width}}", "not supported"),
    ("{text:>99999999}", "not supported"),
])
def test_jsonl_templates_that_failed_only_while_training(template, fragment):
    refused(lambda: tasks.get("jsonl", template=template, target_field="label"), fragment)


def test_a_template_spec_that_does_not_fit_a_value_names_the_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"text": "words", "label": "x"}) + "\n")
    task = tasks.get("jsonl", template="n: {text:d}", target_field="label")
    refused(lambda: task.read(path, "train"), f"{path}, line 1", "cannot format")


def test_unknown_task_arguments_from_a_sidecar():
    refused(lambda: tasks.get("jsonl", template="{a}", target_field="b", shots=3), "shots")
    refused(lambda: tasks.get("jsonl", template="{a}", target_field="b", labels=5), "labels")


def test_predict_request_naming_a_task_that_is_not_a_name():
    from softprompt.core.inference.predict import prepare

    requests = [("in.jsonl, line 1", {"task": ["boolq"], "passage": "p", "question": "q"})]
    refused(lambda: prepare(["a"], [{}], requests, "decode", None, 4), "line 1", "'task'")
    requests = [("in.jsonl, line 1", {"task": " ", "passage": "p"})]
    refused(lambda: prepare(["a"], [{}], requests, "decode", None, 4), "line 1",
            "unknown task")


def test_writing_onto_a_directory(tmp_path):
    from softprompt.core.io.atomic import atomic_write

    def write():
        with atomic_write(tmp_path) as f:
            f.write(b"x")

    refused(write, tmp_path, "directory")


def test_a_numpy_header_that_python_cannot_tokenize(tmp_path):
    from softprompt.core.io.prompt_files import load_prompt

    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': \n"
    path = tmp_path / "p.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    refused(lambda: load_prompt(path), path, "damaged .npy header")


def test_a_huge_count_of_empty_items(tmp_path):
    from softprompt.core.io.prompt_files import load_prompt

    path = tmp_path / "p.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|V0", "fortran_order": False, "shape": (2**70,)})
    refused(lambda: load_prompt(path), path)


@pytest.mark.parametrize("config,fragment", [
    ([1, 2], "expected a JSON object"),
    ({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 0, "token_dim": 4},
     "num_virtual_tokens"),
    ({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": True, "token_dim": 4},
     "num_virtual_tokens"),
])
def test_peft_configs(tmp_path, config, fragment):
    from safetensors.numpy import save_file

    from softprompt.core.interop.peft import read_peft

    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    save_file({"prompt_embeddings": np.ones((2, 4), np.float32)},
              str(tmp_path / "adapter_model.safetensors"))
    refused(lambda: read_peft(tmp_path), "adapter_config.json", fragment)


@pytest.mark.parametrize("change,fragment", [
    ({"d_model": "512"}, "d_model"), ({"num_heads": None, "d_kv": 8}, "num_heads"),
    ({"d_ff": 1e400}, "d_ff"), ({"dropout_rate": [0.1]}, "dropout_rate"),
])
def test_hugging_face_config_numbers(tmp_path, change, fragment):
    from softprompt.core.interop.hf_t5 import read_hf_config

    config = {"model_type": "t5", "d_model": 8, "d_ff": 16, "d_kv": 4, "num_heads": 2,
              "num_layers": 1, "vocab_size": 32, **change}
    (tmp_path / "config.json").write_text(json.dumps(config).replace("Infinity", "1e400"))
    refused(lambda: read_hf_config(tmp_path), "config.json", fragment)


def test_corpus_that_is_not_utf8(tmp_path):
    from softprompt.core.pretraining.corpus import read_corpus_files

    path = tmp_path / "c.txt"
    path.write_bytes(b"fine line\n\xff\xfe broken\n")
    refused(lambda: read_corpus_files([str(path)]), path, "not UTF-8")


def test_a_nul_byte_in_a_path_argument_is_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from softprompt.cli.main import cli
    from softprompt.core.io.prompt_files import save_prompt

    prompt = save_prompt(tmp_path / "p.npy", np.ones((2, 4), np.float32))
    result = CliRunner().invoke(cli, ["export", str(prompt), "out\x00put", "--to", "official"])
    assert result.exit_code == 2 and "NUL byte" in result.stderr, (result.exception, result.output)
