"""Distributed training equals one device: JAX data / model parallel, torchrun, MirroredStrategy.

Device counts are fixed when a framework starts, so every run is a separate
process (`worker.py`) with its own environment: ``SOFTPROMPT_CPU_DEVICES``
for simulated CPU devices (JAX, TensorFlow), torchrun for torch. Each run
trains twice on the same 5 global batches (see `worker.py`):

- plain SGD with ``train_on_batch``: the prompt must equal the one-device
  prompt to 1e-5 (measured: ~2e-7);
- softprompt's Adafactor at the paper's lr 0.3 with ``fit``: to 1e-4. Adafactor
  divides each gradient element by its own RMS, so a float32 rounding
  difference of relative size r in a small gradient element becomes an
  update difference of about ``lr * r`` (measured: 1e-5 to 3e-5 after 5 steps,
  while the prompt moves by more than 1).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 300
TOLERANCE = {"sgd": 1e-5, "adafactor": 1e-4}


def needs(backend: str, module: str):
    """Skip unless `module` is installed; under nox, run only in the backend's own session.

    The runs start their own processes whatever ``KERAS_BACKEND`` the test
    session has, so each is run once: in ``tests-<backend>``, or always when
    ``KERAS_BACKEND`` is unset.
    """
    session = os.environ.get("KERAS_BACKEND")
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None or session not in (None, backend),
        reason=f"runs in the tests-{backend} session, with {module} installed",
    )


def environment(backend: str, cpu_devices: int | None = None) -> dict:
    # CPU only, whatever the machine has: simulated devices, gloo for torch.
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES="")
    env.pop("SOFTPROMPT_CPU_DEVICES", None)
    if cpu_devices:
        env["SOFTPROMPT_CPU_DEVICES"] = str(cpu_devices)
    return env


def run(where: Path, backend: str, specs: list[str], cpu_devices=None, launcher=()) -> tuple:
    """Run the worker (under `launcher`, e.g. torchrun) and return (out dir, infos by rank)."""
    process = spawn(where, backend, specs, cpu_devices, launcher)
    return finish(process, where)


def spawn(where: Path, backend: str, specs: list[str], cpu_devices=None, launcher=()):
    (where / "out").mkdir(parents=True)
    (where / "info").mkdir()
    command = [sys.executable, *launcher, str(WORKER), str(where / "out"), str(where / "info"),
               *specs]
    return subprocess.Popen(command, env=environment(backend, cpu_devices),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, where: Path) -> tuple[Path, dict]:
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker timed out after {TIMEOUT}s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-6000:]
    infos = {}
    for path in sorted((where / "info").glob("rank*.json")):
        info = json.loads(path.read_text())
        infos[int(path.stem[4:])] = info
    return where / "out", infos


def runs_by(info: dict) -> dict:
    return {(r["spec"].split(":")[0], r["optimizer"]): r for r in info["runs"]}


def deviation(out: Path, base: Path, kind: str, name: str) -> float:
    ours, theirs = np.load(out / f"{kind}-{name}.npy"), np.load(base / f"none-{name}.npy")
    return float(np.abs(ours - theirs).max())


def check_equal(out, base, kind, base_runs, report, optimizers=("sgd", "adafactor")):
    """The prompt (and the logits it gives) equal the one-device run's."""
    for opt in optimizers:
        dev = deviation(out, base, kind, opt)
        report[f"{kind}/{opt}"] = dev
        assert dev <= TOLERANCE[opt], f"{kind} with {opt}: prompt differs by {dev:.3g}"
        # Training moved the prompt far more than the tolerance.
        assert base_runs["none", opt]["moved"] > 100 * TOLERANCE[opt]
        logits = deviation(out, base, kind, f"{opt}-logits")
        report[f"{kind}/{opt}/logits"] = logits
        assert logits <= 10 * TOLERANCE[opt], f"{kind} with {opt}: logits differ by {logits:.3g}"


@needs("jax", "jax")
def test_jax_data_and_model_parallel_equal_one_device(tmp_path, record_property):
    # Model parallel with SGD only: Adafactor and fit are checked with data parallel.
    out, infos = run(tmp_path, "jax", ["none", "data", "model:2x2@sgd"], cpu_devices=4)
    info = infos[0]
    assert info["backend"] == "jax"  # chosen by KERAS_BACKEND
    assert info["devices"] == 4  # SOFTPROMPT_CPU_DEVICES
    runs = runs_by(info)
    assert runs["data", "sgd"]["replicas"] == 4
    assert runs["model", "sgd"]["replicas"] == 2  # the mesh's batch axis
    sharded = runs["model", "sgd"]["sharded"]
    assert "token_embedding/embeddings" in sharded
    assert any(p.endswith("query_projector/kernel") for p in sharded)
    assert any(p.endswith("gate_projector/kernel") for p in sharded)
    assert "prompt/embeddings" not in sharded
    assert runs["data", "sgd"]["sharded"] == []
    assert runs["none", "sgd"]["prompt_devices"] == 1
    assert runs["data", "sgd"]["prompt_devices"] == runs["model", "sgd"]["prompt_devices"] == 4
    report = {}
    for kind, optimizers in (("data", ("sgd", "adafactor")), ("model", ("sgd",))):
        check_equal(out, out, kind, runs, report, optimizers)
        for opt in optimizers:
            np.testing.assert_allclose(runs[kind, opt]["losses"], runs["none", opt]["losses"],
                                       rtol=1e-5)
    record_property("deviations", report)


@needs("tensorflow", "tensorflow")
def test_tensorflow_mirrored_strategy_equals_one_device(tmp_path, record_property):
    out, infos = run(tmp_path, "tensorflow", ["none", "data"], cpu_devices=2)
    info = infos[0]
    assert info["backend"] == "tensorflow"
    runs = runs_by(info)
    assert runs["data", "sgd"]["replicas"] == 2
    report = {}
    check_equal(out, out, "data", runs, report)
    for opt in ("sgd", "adafactor"):
        np.testing.assert_allclose(runs["data", opt]["losses"], runs["none", opt]["losses"],
                                   rtol=1e-5)
    record_property("deviations", report)


@needs("torch", "torch")
def test_torchrun_two_processes_equal_one_process(tmp_path, record_property):
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    # The one-process run and the torchrun job run side by side.
    single = spawn(tmp_path / "single", "torch", ["none"])
    job = spawn(tmp_path / "job", "torch", ["data"], launcher=torchrun)
    base, base_infos = finish(single, tmp_path / "single")
    out, infos = finish(job, tmp_path / "job")
    assert sorted(infos) == [0, 1]
    base_runs = runs_by(base_infos[0])
    ranks = {rank: runs_by(info) for rank, info in infos.items()}
    assert infos[0]["backend"] == "torch"
    for rank, runs in ranks.items():
        assert runs["data", "sgd"]["processes"] == 2
        assert runs["data", "sgd"]["rank"] == rank
        assert runs["data", "sgd"]["writer"] is (rank == 0)
    # Only rank 0 wrote files.
    assert sorted(p.name for p in out.iterdir()) == [
        "data-adafactor-logits.npy", "data-adafactor.npy", "data-sgd-logits.npy", "data-sgd.npy"]
    report = {}
    check_equal(out, base, "data", base_runs, report)
    # Every rank reports the loss of the global batch.
    for rank in (0, 1):
        for opt in ("sgd", "adafactor"):
            np.testing.assert_allclose(ranks[rank]["data", opt]["losses"],
                                       base_runs["none", opt]["losses"], rtol=1e-5)
    record_property("deviations", report)
