"""``SOFTPROMPT_ONLY_BACKEND``: a process that keeps the other backends' frameworks out.

Each check runs child processes (the frameworks are kept out before keras is imported,
which this test process did long ago): the same training and decoding with and without it
give the same numbers, the chosen backend's framework alone is loaded, ``--backend`` may
still pick another backend than ``KERAS_BACKEND``, and keras-hub's tokenizer in a process
without TensorFlow gives tensorflow-text's SentencePiece ids (hypothesis).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softprompt.backends import exclusive

WORKER = Path(__file__).with_name("only_backend_worker.py")
ROOT = Path(__file__).resolve().parents[2]
BACKEND = keras.backend.backend()


def _env(only: bool, backend: str = BACKEND) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env[exclusive.ONLY_BACKEND_ENV] = "1" if only else "0"
    return env


def _run(args, env, timeout=600) -> dict:
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------- the switch
def test_kept_out_never_names_the_backend_or_torch():
    for backend, modules in exclusive.KEPT_OUT.items():
        assert modules, backend
        assert "torch" not in modules
        assert not any(m.startswith(backend[:3]) for m in modules), (backend, modules)


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("YES", True),
                                            ("0", False), ("", False), ("no", False)])
def test_requested_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(exclusive.ONLY_BACKEND_ENV, value)
    assert exclusive.requested() is expected


def test_child_environment_passes_the_switch_on(monkeypatch):
    from softprompt import backends

    monkeypatch.setenv(exclusive.ONLY_BACKEND_ENV, "1")
    assert backends.child_environment("jax")[exclusive.ONLY_BACKEND_ENV] == "1"
    monkeypatch.delenv(exclusive.ONLY_BACKEND_ENV)
    assert backends.child_environment("jax") == {"KERAS_BACKEND": "jax"}


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="'theano'"):
        exclusive.only_backend("theano")


def test_from_environment_does_nothing_once_keras_is_imported(monkeypatch):
    monkeypatch.setenv(exclusive.ONLY_BACKEND_ENV, "1")
    before = dict(sys.modules)
    assert exclusive.from_environment(BACKEND) == ()  # keras is imported here
    assert {k: v for k, v in sys.modules.items() if v is None} == \
        {k: v for k, v in before.items() if v is None}


# ------------------------------------------------------------------- in a process
@pytest.fixture(scope="module")
def runs(preset_v10):
    """The worker's training run without and with the other frameworks kept out."""
    return {only: _run([str(WORKER), "train", preset_v10], _env(only)) for only in (False, True)}


def test_only_the_backends_framework_is_loaded(runs):
    kept = set(exclusive.KEPT_OUT[BACKEND])
    assert not kept & set(runs[True]["frameworks"]), runs[True]["frameworks"]
    assert kept & set(runs[False]["frameworks"])  # keras and keras-hub load them otherwise


def test_keras_optional_imports_kept_from_keras_alone(runs):
    """pandas and matplotlib stay out of what keras loads, yet import for anyone else."""
    assert runs[True]["keras_optional"] == [], runs[True]["keras_optional"]
    assert set(runs[False]["keras_optional"]) == set(exclusive.KERAS_OPTIONAL)
    assert runs[True]["pandas_after"] == "pandas"


def _find_spec_from(importer: str, fullname: str):
    """`KerasOptionalFinder.find_spec` called from code in module `importer`."""
    namespace = {"__name__": importer}
    exec("def find(finder, name):\n    return finder.find_spec(name)", namespace)  # noqa: S102
    return namespace["find"](exclusive.KerasOptionalFinder(), fullname)


def test_the_finder_refuses_keras_alone():
    keras_module = "keras.src.trainers.data_adapters.array_slicing"
    for name in ("pandas", "matplotlib.pyplot"):
        with pytest.raises(ModuleNotFoundError, match="kept from keras"):
            _find_spec_from(keras_module, name)
        assert _find_spec_from("datasets.arrow_dataset", name) is None
        assert _find_spec_from("kerasy", name) is None
    assert _find_spec_from(keras_module, "numpy") is None


def test_the_same_numbers_with_and_without_the_other_frameworks(runs):
    plain, only = runs[False], runs[True]
    assert only["ids"] == plain["ids"]
    assert only["losses"] == plain["losses"]  # bit for bit
    assert only["prompt"] == plain["prompt"]
    assert only["generated"] == plain["generated"]


def test_backend_option_lets_its_framework_back_in():
    """KERAS_BACKEND names one backend, ``--backend`` (`select`) another: the selected one
    loads, and the frameworks kept out are those of the selected backend."""
    other = next(b for b in ("jax", "tensorflow") if b != BACKEND)
    code = ("import softprompt, sys; from softprompt import backends; "
            f"backends.select({other!r}); import keras; "
            "print(keras.backend.backend(), sorted(backends.exclusive.kept_out()))")
    done = subprocess.run([sys.executable, "-c", code], env=_env(True, backend="torch"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    name, kept = done.stdout.split(" ", 1)
    assert name == other
    assert eval(kept) == sorted(exclusive.KEPT_OUT[other])  # noqa: S307 - our own output


def test_keras_imported_first_warns():
    """keras-hub (which loads TensorFlow, and through keras JAX) before softprompt: too late."""
    code = "import keras_hub, softprompt; from softprompt import backends; backends.current()"
    done = subprocess.run([sys.executable, "-c", code], env=_env(True), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{exclusive.ONLY_BACKEND_ENV} is set but" in done.stderr


# ----------------------------------------------------------------------- tokenizer
def _tensorflow_free_backend() -> str | None:
    """A backend whose process keeps TensorFlow out (this one unless it is TensorFlow)."""
    for backend in (BACKEND, "jax", "torch"):
        if backend != "tensorflow" and importlib.util.find_spec(backend) is not None:
            return backend
    return None


class Tokenizers:
    """Two long-lived workers: keras-hub's tokenizer without TensorFlow, tensorflow-text's."""

    def __init__(self, preset: str, backend: str):
        self.procs = {}
        for kind, only in (("keras-hub", True), ("tensorflow-text", False)):
            proc = subprocess.Popen([sys.executable, str(WORKER), "tokenize", preset, kind],
                                    env=_env(only, backend), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True, bufsize=1)
            self.procs[kind] = proc
        self.ready = {kind: json.loads(proc.stdout.readline()) for kind, proc in
                      self.procs.items()}

    def ask(self, texts: list[str]) -> dict:
        for proc in self.procs.values():
            proc.stdin.write(json.dumps(texts) + "\n")
        return {kind: json.loads(proc.stdout.readline()) for kind, proc in self.procs.items()}

    def close(self):
        for proc in self.procs.values():
            proc.stdin.close()
            proc.wait(timeout=60)


@pytest.fixture(scope="module")
def tokenizers(preset_v10):
    backend = _tensorflow_free_backend()
    if backend is None:
        pytest.skip("no backend without TensorFlow is installed")
    both = Tokenizers(preset_v10, backend)
    yield both
    both.close()


def test_tokenizer_process_has_no_tensorflow(tokenizers):
    assert "tensorflow" not in tokenizers.ready["keras-hub"]["frameworks"]
    assert "tensorflow_text" in tokenizers.ready["tensorflow-text"]["frameworks"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40),
                          st.text(alphabet="the quick brown fox jumps over lazy dog ",
                                  max_size=60)),
                min_size=1, max_size=6))
def test_tokenizer_without_tensorflow_gives_tensorflow_texts_ids(tokenizers, texts):
    answers = tokenizers.ask(texts)
    assert answers["keras-hub"]["ids"] == answers["tensorflow-text"]["ids"]
    assert answers["keras-hub"]["text"] == answers["tensorflow-text"]["text"]
