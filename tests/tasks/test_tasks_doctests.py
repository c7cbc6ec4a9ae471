"""The ``Examples`` in the task modules' docstrings run as written."""

import doctest
import importlib

import pytest

MODULES = ["base", "catalog", "classification", "glue", "jsonl", "metrics", "qa", "readers", "sources",
           "superglue"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"softprompt.tasks.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_package_docstring():
    import softprompt.tasks

    assert doctest.testmod(softprompt.tasks).failed == 0
