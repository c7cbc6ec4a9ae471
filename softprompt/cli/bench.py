"""``softprompt bench``: the benchmark suite, short version, tables printed.

The suite lives in the source tree's ``benchmarks/`` package (``python -m benchmarks.run``,
``nox -s bench``); this command finds it beside an editable install or a checkout and runs
the same code; from an installed package without it, it says in one line how to run
it from a checkout (exit code 2). Each keras backend runs in a worker process of its own
(keras fixes its backend per process), so the command itself never imports keras.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from softprompt.cli.common import FilePath, backend_option, user_errors


def load_suite():
    """The ``benchmarks.run`` module of softprompt's source tree.

    Found by path beside the package (a checkout, an editable install): it is part of the
    source tree, not a distribution, so it is imported by name only after that check.
    """
    import importlib

    import softprompt

    root = Path(softprompt.__file__).resolve().parent.parent
    if (root / "benchmarks" / "run.py").is_file():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        run = importlib.import_module("benchmarks.run")
        if Path(run.__file__).resolve().parent.parent == root:
            return run
    raise ValueError(
        f"the benchmarks are not part of the installed package ({root / 'softprompt'} has no "
        "benchmarks/ beside it): run them from a source checkout, `pip install -e .` there, "
        "then `softprompt bench` (or `python -m benchmarks.run`)"
    )


@click.command()
@backend_option
@click.option("--backends", default=None,
              help="Comma-separated keras backends to compare (default: every installed one; "
                   "--backend X alone means --backends X).")
@click.option("--full", is_flag=True,
              help="The issue's sizes everywhere (T5-small shapes; long on a CPU).")
@click.option("--suites", default=None,
              help="Comma-separated subset of: train, varlen, rank, serving, decode.")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Timed rounds per comparison (default: the profile's).")
@click.option("--torch-compile", is_flag=True,
              help="Also time the torch train step under torch.compile.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Pin every worker to N intra-op threads (default: each framework's own).")
@click.option("--dtypes", default=None,
              help="Comma-separated train-step dtypes of the frozen model: float32, bfloat16, "
                   "mixed_bfloat16 (default: float32,bfloat16; PEFT runs in each).")
@click.option("--no-baselines", is_flag=True,
              help="Skip the PEFT/transformers baselines even when they are installed.")
@click.option("--all-frameworks", is_flag=True,
              help="Let each keras worker import every installed framework, as keras and "
                   "keras-hub do by default (default: only its backend's, as "
                   "SOFTPROMPT_ONLY_BACKEND=1 does).")
@click.option("--out", type=FilePath(file_okay=False), default=None,
              help="Where results.json and results.md go (default: benchmarks/results).")
@click.option("--profile", type=click.Choice(["toy", "short", "full"]), default=None, hidden=True,
              help="Sizes by name (toy: the test's; --full is --profile full).")
@user_errors
def bench(backends, full, suites, rounds, torch_compile, threads, dtypes, no_baselines,
          all_frameworks, out, profile):
    """Benchmark prompt tuning on this machine, against PEFT and the machine's matmul peak.

    Train step, length bucketing, rank classification vs generation, mixed-prompt
    batches and ensembles, cached decoding: each comparison alternates its
    contenders round by round and reports medians of paired ratios, so a busy
    machine slows them alike. Prints the tables and writes them with every raw
    timing to --out.

    \b
    Example:
        softprompt bench                           # short suite, every installed backend
        softprompt bench --backend jax --suites train,decode
    """
    from click.core import ParameterSource

    ctx = click.get_current_context()
    if backends is None and ctx.get_parameter_source("backend") == ParameterSource.COMMANDLINE:
        backends = os.environ["KERAS_BACKEND"]
    suite = load_suite()
    _, text, out_dir = suite.run(
        profile=profile or ("full" if full else "short"),
        backends=suite.parse_list(backends, suite.BACKENDS, "backend"),
        suites=suite.parse_list(suites, tuple(suite.SUITES), "suite"),
        rounds=rounds, torch_compile=torch_compile, baselines=not no_baselines, out=out,
        threads=threads, dtypes=suite.parse_list(dtypes, suite.DTYPES, "dtype"),
        only_backend=not all_frameworks, log=lambda line: click.echo(line, err=True),
    )
    click.echo(text)
    click.echo(f"results: {out_dir / 'results.json'}, {out_dir / 'results.md'}", err=True)
