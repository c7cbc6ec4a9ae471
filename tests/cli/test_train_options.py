"""``softprompt train``'s options are `TrainConfig`'s fields: defaults and choices from the library."""

from __future__ import annotations

import click

from softprompt.backends.base import DTYPES, KINDS
from softprompt.cli.train import train
from softprompt.core.inference.methods import METHODS
from softprompt.core.model.init import INITS
from softprompt.core.training.config import TrainConfig


def _params():
    return {p.name: p for p in train.params}


def test_every_training_option_has_the_configs_default():
    params = _params()
    defaults = TrainConfig.defaults()
    assert set(defaults) <= set(params)  # every field is an option of the same name
    for name, default in defaults.items():
        assert params[name].default == default, name


def test_choices_are_the_librarys():
    params = _params()
    for name, choices in (("init", INITS), ("eval_method", METHODS), ("distribution", KINDS),
                          ("dtype", DTYPES)):
        assert isinstance(params[name].type, click.Choice), name
        assert tuple(params[name].type.choices) == tuple(choices), name


def test_the_config_refuses_what_the_cli_would():
    base = dict(out="runs/x", task="rte", data="d", preset="p")
    for name, value in (("init", "zeros"), ("eval_method", "beam"), ("distribution", "pipeline")):
        try:
            TrainConfig(**base, **{name: value}).validate()
        except ValueError as err:
            assert name in str(err)
        else:
            raise AssertionError(f"{name}={value!r} was accepted")
