"""Backend selection and the adapters' small contracts (fast: most need no framework)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import click
import numpy as np
import pytest
from click.testing import CliRunner

from softprompt import backends
from softprompt.backends import base
from softprompt.backends.base import Distribution, parse_mesh, pick_kind, row_bounds


# ------------------------------------------------------------------ selection
def test_unknown_backend_is_a_one_line_value_error():
    with pytest.raises(ValueError) as err:
        backends.select("theano")
    message = str(err.value)
    assert "\n" not in message
    assert "'theano'" in message and "jax, torch, tensorflow" in message


def test_unknown_backend_on_the_command_line_is_a_usage_error():
    from softprompt.cli.common import backend_option

    @click.command()
    @backend_option
    def command():
        click.echo("ran")

    result = CliRunner().invoke(command, ["--backend", "theano"])
    assert result.exit_code == 2
    assert "ran" not in result.output
    assert "unknown backend 'theano'" in result.output


SELECT = textwrap.dedent(
    """
    import click
    from softprompt import backends
    from softprompt.cli.common import backend_option

    @click.command()
    @backend_option
    def command():
        adapter = backends.current()
        click.echo(f"{adapter.name} {backends.name()}")

    command(args=ARGS, standalone_mode=False)
    """
)


@pytest.mark.parametrize(
    "env, args, expected",
    [
        ({"KERAS_BACKEND": "jax"}, [], "jax"),  # by the environment variable
        ({"KERAS_BACKEND": "jax"}, ["--backend", "torch"], "torch"),  # --backend wins
        ({"KERAS_BACKEND": "torch"}, ["--backend", "tensorflow"], "tensorflow"),
    ],
)
def test_backend_is_chosen_by_env_var_or_option(env, args, expected):
    """In a fresh process; under nox only in the session of the backend expected."""
    if os.environ.get("KERAS_BACKEND") not in (None, expected):
        pytest.skip(f"runs in the tests-{expected} session")
    pytest.importorskip(expected)
    script = SELECT.replace("ARGS", repr(args))
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == [expected, expected]


# ------------------------------------------------------------------ arguments
def test_parse_mesh():
    assert parse_mesh("2x4") == (2, 4)
    assert parse_mesh((1, 8)) == (1, 8)
    assert parse_mesh(None) is None
    for bad in ("2x", "0x4", "2x2x2", (2,), "eight"):
        with pytest.raises(ValueError, match="DATAxMODEL"):
            parse_mesh(bad)


def test_pick_kind():
    assert pick_kind("auto", 1, None) == "none"
    assert pick_kind("auto", 4, None) == "data"
    assert pick_kind("auto", 4, (2, 2)) == "model"
    assert pick_kind("auto", 4, (4, 1)) == "data"
    with pytest.raises(ValueError, match="unknown distribution 'pipeline'"):
        pick_kind("pipeline", 4, None)
    with pytest.raises(ValueError, match="only for distribution 'model'"):
        pick_kind("data", 4, (2, 2))


def test_configure_rejects_bad_values(monkeypatch):
    adapter = base.Adapter()
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        adapter.set_dtype("float8")
    monkeypatch.setenv("SOFTPROMPT_CPU_DEVICES", "four")
    with pytest.raises(ValueError, match="SOFTPROMPT_CPU_DEVICES='four'"):
        base.cpu_devices_from_env()
    monkeypatch.setenv("SOFTPROMPT_CPU_DEVICES", "")
    assert base.cpu_devices_from_env() is None


# ------------------------------------------------------------------ batches
class TwoProcesses(Distribution):
    """The base class' cutting, as process `rank` of two sees it."""

    num_replicas = 2
    num_processes = 2

    def __init__(self, rank):
        self.rank = rank

    def _process_shards(self):
        return 2, self.rank


def test_row_bounds_cover_the_batch_like_array_split():
    for rows in range(2, 12):
        for count in (2, 3, 4):
            if rows < count:
                continue
            parts = [row_bounds(rows, count, i) for i in range(count)]
            expected = np.array_split(np.arange(rows), count)
            assert [list(range(*p)) for p in parts] == [list(e) for e in expected]


def test_shard_batch_gives_each_process_its_rows():
    x = {"ids": np.arange(10).reshape(5, 2), "mask": np.ones((5, 2))}
    y, w = np.arange(5), np.arange(5.0)
    x0, y0, w0 = TwoProcesses(0).shard_batch(x, y, w)
    x1, y1, w1 = TwoProcesses(1).shard_batch(x, y, w)
    np.testing.assert_array_equal(np.concatenate([y0, y1]), y)
    np.testing.assert_array_equal(np.concatenate([x0["ids"], x1["ids"]]), x["ids"])
    assert len(w0) == 3 and len(w1) == 2
    assert TwoProcesses(0).shard_batch(x)[1:] == (None, None)
    assert TwoProcesses(1).is_writer is False and TwoProcesses(0).is_writer is True
    with pytest.raises(ValueError, match="a global batch of 1 rows cannot be split over 2"):
        TwoProcesses(0).shard_batch({"ids": np.zeros((1, 3))})


def test_single_device_distribution_changes_nothing():
    dist = Distribution()
    x, y = {"ids": np.zeros((3, 2))}, np.zeros(3)
    assert dist.shard_batch(x, y) == (x, y, None)
    assert dist.num_replicas == 1 and dist.is_writer
    with dist.scope():
        pass
    dist.barrier()
    dist.close()


# ------------------------------------------------------------------ torch launch
def test_torch_launch_runs_torchrun(monkeypatch):
    from softprompt.backends import torch_adapter

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    adapter = torch_adapter.TorchAdapter()
    assert adapter.needs_launch(2) and not adapter.needs_launch(1)
    assert not adapter.needs_launch(None)
    calls = []
    monkeypatch.setattr(torch_adapter.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert adapter.launch(2, ["/bin/softprompt", "train", "--devices", "2"]) == 0
    assert calls == [[sys.executable, "-m", "torch.distributed.run", "--standalone",
                      "--nproc-per-node=2", "/bin/softprompt", "train", "--devices", "2"]]
    with pytest.raises(ValueError, match="torchrun --nproc-per-node 2"):
        adapter.distribute(devices=2)
    with pytest.raises(ValueError, match="model parallel training needs the jax backend"):
        adapter.distribute("model")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not adapter.needs_launch(2)  # already under torchrun
    with pytest.raises(ValueError, match="would nest"):
        adapter.launch(2, ["x"])


def test_other_backends_do_not_launch():
    from softprompt.backends import jax_adapter

    adapter = jax_adapter.JaxAdapter()
    assert not adapter.needs_launch(8)
    with pytest.raises(ValueError, match="from one process"):
        adapter.launch(2, ["x"])


def test_multihost_is_detected_from_the_environment(monkeypatch):
    from softprompt.backends.jax_adapter import multihost_requested

    names = ("SOFTPROMPT_MULTIHOST", "KERAS_DISTRIBUTION_NUM_PROCESSES",
             "KERAS_DISTRIBUTION_JOB_ADDRESSES", "JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID",
             "SLURM_NTASKS", "OMPI_MCA_orte_hnp_uri", "TPU_WORKER_HOSTNAMES",
             "MEGASCALE_COORDINATOR_ADDRESS")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert not multihost_requested()
    for env in ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "4"},
                {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"},
                {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"},
                {"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"},
                {"SOFTPROMPT_MULTIHOST": "1"}):
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            assert multihost_requested(), env
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert not multihost_requested()
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
    monkeypatch.setenv("SOFTPROMPT_MULTIHOST", "0")
    assert not multihost_requested()


# ------------------------------------------------------------------ precision
def test_mixed_precision_keeps_prompt_and_optimizer_state_float32():
    """Under the running backend: bfloat16 compute, float32 prompt and Adafactor slots."""
    import keras

    from softprompt import PromptedT5
    from softprompt.core.pretraining.scratch import build_backbone
    from softprompt.core.training.adafactor import Adafactor

    adapter = backends.current()
    before = keras.config.dtype_policy().name
    try:
        adapter.configure(dtype="mixed_bfloat16")
        model = PromptedT5(build_backbone(32, "test", "t5.1.1", seed=0), prompt_length=2,
                           init="uniform", seed=0)
        assert model.backbone.compute_dtype == "bfloat16"
        assert model.backbone.token_embedding.embeddings.dtype == "float32"
        assert model.prompt.embeddings.dtype == "float32"
        model.compile(optimizer=Adafactor())
        ones = np.ones((2, 3), "int32")
        x = {"encoder_token_ids": ones, "encoder_padding_mask": ones,
             "decoder_token_ids": ones, "decoder_padding_mask": ones}
        before_step = np.array(model.prompt.embeddings.numpy())
        model.train_on_batch(x, ones, sample_weight=ones.astype("float32"))
        assert not np.array_equal(before_step, model.prompt.embeddings.numpy())
        assert {v.dtype for v in model.optimizer.variables if "iteration" not in v.path} \
            == {"float32"}

        adapter.configure(dtype="bfloat16")
        model = PromptedT5(build_backbone(32, "test", "t5.1.1", seed=0), prompt_length=2,
                           init="uniform", seed=0)
        assert model.backbone.token_embedding.embeddings.dtype == "bfloat16"
        assert model.prompt.embeddings.dtype == "float32"
    finally:
        keras.config.set_dtype_policy(before)


# ------------------------------------------------------------------ CPU memory
def test_freed_memory_is_kept_unless_told_not_to(monkeypatch):
    """glibc's mmap for large blocks is turned off (mallopt), except with the opt-out.

    Kept, a 64 MiB block comes from the heap (reused after a free), not from its own
    mmap: glibc's ``mallinfo2`` counts the bytes in mmap'd blocks.
    """
    from softprompt.backends.base import MALLOC_ENV, keep_freed_memory

    monkeypatch.setenv(MALLOC_ENV, "default")
    assert keep_freed_memory() is False
    monkeypatch.delenv(MALLOC_ENV)
    mallinfo2 = _glibc_mallinfo2()
    if not keep_freed_memory():
        assert not sys.platform.startswith("linux") or mallinfo2 is None
        pytest.skip("no glibc malloc here")
    if mallinfo2 is None:
        pytest.skip("glibc without mallinfo2 (< 2.33)")
    mapped = mallinfo2().hblkhd
    block = np.ones(64 * 2**20, np.uint8)
    assert mallinfo2().hblkhd - mapped < 2**20
    del block


def test_release_freed_memory_hands_kept_blocks_back():
    """A freed 200 MiB block stays resident under `keep_freed_memory` until released."""
    code = textwrap.dedent("""
        import numpy as np
        from softprompt.backends.base import keep_freed_memory, release_freed_memory
        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        if not keep_freed_memory():
            print("skip")
            raise SystemExit
        block = np.ones(200 * 2**20, np.uint8)
        del block
        kept = rss()
        print(release_freed_memory(), kept - rss())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SOFTPROMPT_MALLOC": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    if done.stdout.strip() == "skip":
        pytest.skip("no glibc malloc here")
    ran, released = done.stdout.split()
    assert ran == "True"
    assert float(released) > 150, released


def _glibc_mallinfo2():
    """glibc's ``mallinfo2()`` through ctypes, or None where there is none."""
    import ctypes

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        function = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = Mallinfo2
    return function
