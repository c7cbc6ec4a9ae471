"""Every example a ``--help`` text shows can be copied: it parses, and it either runs offline
on what the package ships (then it runs here) or its inputs are obviously the user's own.

The examples are read from the commands' help texts (the ``Example:`` blocks), so a new
example is checked without touching this file. An input (a preset, data, a prompt file, a
corpus) must be one of:

- a preset the package ships (``softprompt_tiny``), or a larger member of its family that
  ``scripts/build_embedded.py`` builds into softprompt's cache (``softprompt_small``);
- a placeholder that is obviously the user's own: under ``path/to/``, named ``my-…``, or a
  Hugging Face Hub checkpoint ``hf://ORG/NAME``;
- written by an earlier example of the same block (``--out``, ``--output``, ``OUT``);
- a run directory under ``runs/``; ``runs/demo`` is what ``softprompt train`` (the built-in
  demo) writes, so examples reading it run here after a short demo run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

import softprompt
from softprompt.backends import SUPPORTED
from softprompt.cli.main import COMMANDS
from softprompt.cli.main import cli as main_group
from softprompt.core.pretraining.family import FAMILY

SHIPPED_PRESETS = {p.name for p in (Path(softprompt.__file__).parent / "presets").iterdir()
                   if p.is_dir()}
#: The embedded family's members that are built on demand (not runnable here: minutes of CPU).
BUILT_PRESETS = {f"softprompt_{size}" for size in FAMILY} - SHIPPED_PRESETS
#: Parameters that read a file or model the user must have (by click parameter name).
INPUTS = {"preset", "data", "prompt_file", "prompt_files", "prompt_specs", "init_file",
          "corpus", "input_path", "src", "peft_dir", "prompt", "vocab_model", "prompts"}
#: Parameters that name what a command writes.
OUTPUTS = {"out", "output"}
#: Runnable examples that other checks run, because they take minutes.
RUN_ELSEWHERE = {
    "softprompt train": "the main command: scripts/check_main_command.py runs it on every "
                        "backend and checks its outputs (CI's main-command phase)",
    "softprompt bench": "the benchmark suite; tests/bench runs its code on the toy profile",
    "softprompt bench --backend jax --suites train,decode": "as `softprompt bench`",
}


def commands():
    """``(name, click command)`` for the group and every command and subcommand."""
    found = [("softprompt", main_group)]
    for name in COMMANDS:
        command = main_group.get_command(None, name)
        found.append((f"softprompt {name}", command))
        if isinstance(command, click.Group):
            found += [(f"softprompt {name} {sub}", command.get_command(None, sub))
                      for sub in command.list_commands(None)]
    return found


def example_blocks():
    """``(where, [example line, ...])`` from each help text's ``Example:`` block.

    Lines are joined at backslashes and written back without comments (``shlex.join``).
    """
    blocks = []
    for where, command in commands():
        text = command.help or ""
        match = re.search(r"Examples?:\n(.*)", text, re.S)
        if not match:
            continue
        lines, current = [], ""
        for raw in match.group(1).splitlines():
            line = raw.strip()
            if not line and not current:
                continue
            if not line:
                break
            current = f"{current} {line}".strip()
            if current.endswith("\\"):
                current = current[:-1].rstrip()
                continue
            if not current.startswith("#"):
                lines.append(shlex.join(shlex.split(current, comments=True)))
            current = ""
        blocks.append((where, lines))
    return blocks


BLOCKS = example_blocks()
EXAMPLES = [(where, line) for where, lines in BLOCKS for line in lines]


def parse(line: str):
    """``(command, params, explicit names)`` of one example, parsed as click would."""
    words = shlex.split(line, comments=True)
    assert words[0] == "softprompt", line
    command, rest, name = main_group, words[1:], "softprompt"
    while isinstance(command, click.Group):
        name = f"{name} {rest[0]}"
        command, rest = command.get_command(None, rest[0]), rest[1:]
        assert command is not None, f"{line}: no command {name!r}"
    # --backend and --dtype act when parsed (select keras' backend, set its dtype policy):
    # check their values here instead of letting them act on this test process.
    kept, i = [], 0
    while i < len(rest):
        if rest[i] == "--backend":
            assert rest[i + 1] in SUPPORTED, line
            i += 2
            continue
        if rest[i] == "--dtype" and command.name != "train":
            assert rest[i + 1] in ("float32", "bfloat16", "mixed_bfloat16"), line
            i += 2
            continue
        kept.append(rest[i])
        i += 1
    ctx = command.make_context(name, kept)
    explicit = {p for p in ctx.params
                if ctx.get_parameter_source(p) is not click.core.ParameterSource.DEFAULT}
    return command, ctx.params, explicit


def values(value):
    """The paths in one parameter's value (lists, ``NAME=path`` prompt specs)."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in values(item)]
    text = str(value)
    return [text.split("=", 1)[1] if "=" in text and not text.startswith(".") else text]


def is_placeholder(path: str) -> bool:
    """Obviously the user's own: ``path/to/...``, a name beginning with ``my-``/``my_``, or a
    Hugging Face Hub checkpoint (``hf://ORG/NAME``), which only a machine online can fetch."""
    clean = path.removeprefix("./")
    return clean.startswith(("path/to/", "hf://")) or any(
        part.startswith(("my-", "my_")) for part in Path(clean).parts)


def written_by(params, explicit, command) -> list[str]:
    out = [v for name in OUTPUTS & explicit for v in values(params.get(name))]
    if command.name == "train" and not params.get("task") and not params.get("data"):
        from softprompt.core import demo

        out.append(params["out"] if "out" in explicit else demo.DEFAULTS["out"])
    return out


def under(path: str, roots) -> bool:
    p = Path(path.removeprefix("./"))
    return any(p == Path(r.removeprefix("./")) or Path(r.removeprefix("./")) in p.parents
               for r in roots)


@pytest.mark.parametrize("where,line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_example_parses(where, line):
    parse(line)


def test_every_command_has_examples():
    assert {where for where, lines in BLOCKS if lines} >= {
        f"softprompt {name}" for name in COMMANDS} | {"softprompt"}


@pytest.mark.parametrize("where,lines", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_example_inputs_are_shipped_or_the_users_own(where, lines):
    produced: list[str] = []
    for line in lines:
        command, params, explicit = parse(line)
        for path in read_paths(params, explicit):
            ok = (path in SHIPPED_PRESETS | BUILT_PRESETS or is_placeholder(path)
                  or under(path, produced) or under(path, ["runs"]))
            assert ok, (f"{where}: {line!r}: {path!r} is neither shipped, nor a placeholder "
                        "(path/to/..., my-...), nor written by an example above")
        produced += written_by(params, explicit, command)


def read_paths(params, explicit) -> list[str]:
    """The inputs an example reads (``--resume`` reads its ``--out``)."""
    paths = [p for name in INPUTS & explicit for p in values(params[name])]
    return paths + ([params["out"]] if params.get("resume") else [])


def runnable(line: str) -> bool:
    """An example whose inputs all exist after the built-in demo ran (``runs/demo``)."""
    command, params, explicit = parse(line)
    paths = read_paths(params, explicit)
    return all(p in SHIPPED_PRESETS or under(p, ["runs/demo"]) for p in paths)


RUNNABLE = sorted({line for _, line in EXAMPLES if runnable(line)})


def test_the_examples_run_elsewhere_are_runnable_ones():
    assert set(RUN_ELSEWHERE) <= set(RUNNABLE)


@pytest.fixture(scope="module")
def after_the_demo(tmp_path_factory, runner, cli):
    """A directory where a short built-in demo run (``runs/demo``) exists, as a user's would."""
    cwd = tmp_path_factory.mktemp("user")
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(cli, ["train", "--steps", "2", "--eval-every", "2",
                                     "--prompt-length", "3", "--quiet"])
        assert result.exit_code == 0, result.output
        assert (cwd / "runs/demo/best.npy").is_file()
        yield cwd
    finally:
        os.chdir(previous)


@pytest.mark.parametrize("line", [x for x in RUNNABLE if x not in RUN_ELSEWHERE])
def test_runnable_example_runs(line, after_the_demo, runner, cli, monkeypatch):
    monkeypatch.chdir(after_the_demo)
    words = shlex.split(line, comments=True)
    if "--backend" in words:  # keras cannot switch backends in this process: a new one
        result = subprocess.run([sys.executable, "-m", "softprompt.cli.main", *words[1:]],
                                capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert result.returncode == 0, result.stderr[-2000:]
        return
    result = runner.invoke(cli, words[1:])
    assert result.exit_code == 0, result.output
