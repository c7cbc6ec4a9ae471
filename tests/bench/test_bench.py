"""The benchmark suite at toy size, through ``softprompt bench``, so it cannot rot.

One backend (the session's ``KERAS_BACKEND``) and, when transformers and peft are
installed, the PEFT baselines; every suite, one round. Timings at this size mean nothing;
the test checks that every comparison ran, that the derived numbers and the tables are
there, and the agreements the suite reports (cached = uncached decoding = PEFT's
``generate`` on the same weights; an ensemble in one pass = its prompts one by one).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SUITES = ("train", "varlen", "rank", "serving", "decode", "tune")
ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "benchmarks" / "reference"
TITLES = ("**Train step**", "**Variable lengths**", "**Rank classification",
          "**Serving shapes**", "**Greedy decoding**")
#: Tables of comparisons added since the kept reference results were measured.
NEW_TITLES = ("**Model tuning step**",)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from softprompt.cli.main import cli

    out = tmp_path_factory.mktemp("bench")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    result = CliRunner().invoke(
        cli, ["bench", "--profile", "toy", "--backends", backend, "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return backend, json.loads((out / "results.json").read_text()), result.output, out


def baselines() -> bool:
    return all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft"))


def test_every_suite_ran_without_errors(toy_run):
    backend, results, _, _ = toy_run
    assert set(results["suites"]) == set(SUITES)
    suites = results["suites"]
    assert not suites["train"]["errors"]
    assert backend in suites["train"]["rows"]
    assert backend in suites["varlen"]["rows"]
    for data in suites["rank"]["tasks"].values():
        assert backend in data["rows"]
    assert backend in suites["serving"]["rows"]
    assert all(backend in d["rows"] for d in suites["decode"]["lengths"].values())


def test_train_row_has_every_measure(toy_run):
    backend, results, _, _ = toy_run
    train = results["suites"]["train"]
    row = train["rows"][backend]
    for key in ("step_s", "forward_s", "step_over_forward", "gflops", "share_of_peak",
                "peak_rss_mb"):
        assert row[key] is not None and row[key] > 0, key
    assert "step_memory_mb" in row
    assert results["only_backend"] is True  # the default: each worker its own framework
    assert train["flops"]["step"] > train["flops"]["forward"] > 0
    assert train["matmul_peak_flops"] > 0
    if baselines():
        assert row["speedup_vs_peft"] > 0
        assert "peft" in train["rows"]
        assert row["peak_rss_vs_peft"] == row["peak_rss_mb"] / train["rows"]["peft"]["peak_rss_mb"]


def test_model_tuning_step_against_transformers(toy_run):
    """Every weight trains in both: the same parameter count, and a ratio when both ran."""
    backend, results, _, _ = toy_run
    tune = results["suites"]["tune"]
    assert not tune["errors"]
    row = tune["rows"][backend]
    assert row["step_s"] > 0 and row["trainable_parameters"] > 0
    if baselines():
        hf = tune["rows"]["transformers"]
        assert hf["trainable_parameters"] == row["trainable_parameters"]
        assert row["speedup_vs_transformers"] > 0


def test_train_step_runs_in_bfloat16_too(toy_run):
    """The bfloat16 rows: our backbone and PEFT's model in bfloat16, against a bfloat16 peak."""
    backend, results, _, _ = toy_run
    train = results["suites"]["train"]
    assert train["dtypes"] == ["float32", "bfloat16"]
    row = train["rows"][f"{backend} bf16"]
    assert row["dtype"] == "bfloat16"
    assert train["setup"][f"{backend} bf16"]["dtype"] == "bfloat16"  # the backbone's compute
    for key in ("step_s", "forward_s", "share_of_peak", "share_of_float32_peak"):
        assert row[key] is not None and row[key] > 0, key
    assert train["matmul_peak_by_dtype"]["bfloat16"] > 0
    if baselines():
        peft = train["setup"]["peft bf16"]
        assert peft["dtype"] == "bfloat16" and peft["prompt_dtype"] == "float32"
        assert row["speedup_vs_peft_same_dtype"] > 0


def test_agreements(toy_run):
    backend, results, _, _ = toy_run
    serving = results["suites"]["serving"]["rows"][backend]
    for ensemble in serving["ensemble"].values():
        assert ensemble["max_score_difference"] < 1e-3
    assert serving["mixed_over_single"] > 0
    for length, data in results["suites"]["decode"]["lengths"].items():
        row = data["rows"][backend]
        assert row["same_tokens_as_uncached"] == 1.0
        assert 1 <= row["steps"] <= int(length)
        if baselines():
            assert row["same_tokens_as_peft"] == 1.0
            assert row["steps"] == data["rows"]["peft generate"]["steps"]  # equal work


def test_tables_are_written_and_printed(toy_run):
    backend, results, output, out = toy_run
    text = (out / "results.md").read_text()
    for title in TITLES + NEW_TITLES:
        assert title in text and title in output
    assert f"| {backend} bf16 |" in text  # a train-step row per backend and dtype
    # ratios only: no targets and no verdicts in what a run writes
    assert "verdicts" not in results
    assert "Verdict" not in text and "Target" not in text
    assert results["machine"]["cpu"] and "cpu_flags" in results["machine"]


def test_tables_are_rebuilt_from_a_results_file(toy_run):
    _, _, _, out = toy_run
    rebuilt = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tables", str(out / "results.json")],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert rebuilt == (out / "results.md").read_text()


def test_each_reference_result_matches_its_tables():
    """Every kept suite result prints as the tables kept beside it (`--tables`)."""
    kept = sorted(REFERENCE.glob("*/suite.json"))
    assert kept, "no reference suite result under benchmarks/reference/"
    for path in kept:
        rebuilt = subprocess.run(
            [sys.executable, "-m", "benchmarks.run", "--tables", str(path)],
            cwd=ROOT, capture_output=True, text=True, check=True).stdout
        assert rebuilt == path.with_suffix(".md").read_text(), path
        assert all(title in rebuilt for title in TITLES), path


def test_every_micro_benchmark_has_help():
    for name in ("attention_core", "jax_products", "allocator", "profile_step",
                 "learning_bar", "step_bound", "memory_stages", "tf_step_profile", "decode_fusions"):
        done = subprocess.run([sys.executable, "-m", f"benchmarks.micro.{name}", "--help"],
                              cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr[-2000:])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="no TensorFlow")
def test_tf_step_profile_finds_the_products_in_the_trace():
    """The toy step under TensorFlow's profiler: its matrix products, forward and backward,
    are read back from the trace with their calls, and the times are the step's."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.micro.tf_step_profile",
                           "--profile", "toy", "--steps", "1", "--rows", "40"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[1].replace(".", "").isdigit():
            rows[cells[0]] = (float(cells[1]), float(cells[3]))
    products = {k: v for k, v in rows.items() if "MatMul" in k}
    assert any("(forward)" in k for k in products) and any("(backward)" in k for k in products)
    assert all(calls >= 1 for _, calls in products.values()), products
    assert sum(ms for ms, _ in products.values()) > 0, products
    assert "Process" not in rows  # the executor's own spans are not operators


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="no JAX")
def test_decode_fusions_times_three_compilations_of_the_same_decode():
    done = subprocess.run([sys.executable, "-m", "benchmarks.micro.decode_fusions",
                           "--profile", "toy", "--rounds", "1", "--lengths", "2,3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "same tokens in all three: True" in done.stdout
    rows = [line for line in done.stdout.splitlines()
            if line.startswith(("| as shipped", "| fusions everywhere", "| fusions nowhere"))]
    assert len(rows) == 3, done.stdout


@pytest.mark.parametrize("gated,layers,kv", [(False, 6, 64), (True, 3, 32), (False, 1, 16)])
def test_step_bound_times_exactly_the_counted_products(gated, layers, kv):
    """The bound's list of products has the FLOPs of the step's honest count, no more."""
    from benchmarks.harness.flops import step_flops
    from benchmarks.micro.step_bound import product_flops, step_products

    shape = dict(batch=8, prompt_length=100, input_length=128, target_length=8,
                 hidden_dim=512, num_layers=layers, num_heads=8, key_value_dim=kv,
                 intermediate_dim=2048, vocabulary_size=32128, gated=gated)
    products = step_products(**shape)
    assert product_flops(products) == step_flops(**shape)["step"]
    assert min(products.values()) >= 1


def test_bad_backend_is_a_usage_error():
    from softprompt.cli.main import cli

    result = CliRunner().invoke(cli, ["bench", "--backends", "numpy"])
    assert result.exit_code == 2
    assert "unknown backend numpy" in result.output


def test_bad_dtype_is_a_usage_error():
    from softprompt.cli.main import cli

    result = CliRunner().invoke(cli, ["bench", "--dtypes", "float32,float64"])
    assert result.exit_code == 2
    assert "unknown dtype float64" in result.output


def test_an_installed_package_without_the_suite_says_how_to_run_it(tmp_path):
    """softprompt installed without its source tree (a wheel): one line, exit code 2."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import softprompt

    site = tmp_path / "site-packages"
    shutil.copytree(Path(softprompt.__file__).parent, site / "softprompt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "softprompt.cli.main", "bench"], cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: the benchmarks are not part"), lines
    assert "pip install -e ." in lines[0] and "softprompt bench" in lines[0]
