"""nox sessions: one test run per backend, cross-backend agreement, lint, benchmarks, demo.

Sessions run in the current Python environment (``venv_backend="none"``):
TensorFlow, JAX and PyTorch together are several GB, and keras-hub needs
TensorFlow on every backend, so one environment with all three installed
(``pip install "torch==2.13.0" -e ".[all,test]"``) serves every session and
each session only changes ``KERAS_BACKEND``.

    nox                      # the test suite: lint, tests per backend, agreement
    nox -s tests-jax         # one backend
    nox -s main-command      # `softprompt train` on every backend, its outputs checked
    nox -s only-backend      # tests in processes without the other backends' frameworks
    nox -s bench             # benchmarks (installs transformers + peft if missing)

CI (``.ci/run``) builds a fresh virtual environment, installs into it with the README's
command, then runs ``main-command`` and ``nox`` from it.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = [
    "lint", "tests-jax", "tests-torch", "tests-tensorflow", "agreement", "serving-ray",
]

BACKENDS = ("jax", "torch", "tensorflow")
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}


def _tests_session(backend):
    def session_fn(session):
        session.run(
            "python", "-m", "pytest", "tests", "-m", "not agreement and not ray", "-q",
            "-p", "no:cacheprovider", *session.posargs,
            env={"KERAS_BACKEND": backend, **QUIET_TF},
        )

    session_fn.__doc__ = f"The unit and end-to-end tests under KERAS_BACKEND={backend}."
    return nox.session(name=f"tests-{backend}", venv_backend="none")(session_fn)


for _backend in BACKENDS:
    globals()[f"tests_{_backend}"] = _tests_session(_backend)


@nox.session(name="only-backend", venv_backend="none")
@nox.parametrize("backend", ["torch", "jax"])
def only_backend(session, backend):
    """The library, CLI and interop tests in processes that keep the other backends'
    frameworks out (``SOFTPROMPT_ONLY_BACKEND=1``, `softprompt.backends.exclusive`)."""
    session.run(
        "python", "-m", "pytest", "tests/core", "tests/cli", "tests/interop", "-q",
        "-m", "not agreement and not ray", "-p", "no:cacheprovider", *session.posargs,
        env={"KERAS_BACKEND": backend, "SOFTPROMPT_ONLY_BACKEND": "1", **QUIET_TF},
    )


@nox.session(venv_backend="none")
def agreement(session):
    """Property-based checks that JAX, PyTorch and TensorFlow compute the same numbers."""
    session.run(
        "python", "-m", "pytest", "tests/agreement", "-m", "agreement", "-q",
        "-p", "no:cacheprovider", *session.posargs,
        env={"SOFTPROMPT_AGREEMENT_PROFILE": os.environ.get("SOFTPROMPT_AGREEMENT_PROFILE", "ci"),
             **QUIET_TF},
    )


@nox.session(name="main-command", venv_backend="none")
def main_command(session):
    """The README's main command, ``softprompt train``, on each backend; its outputs checked.

    ``nox -s main-command -- --backend jax`` runs one backend (scripts/check_main_command.py).
    """
    session.run("python", "scripts/check_main_command.py", *session.posargs)


@nox.session(name="serving-ray", venv_backend="none")
def serving_ray(session):
    """The Ray Serve deployment on a local Ray instance (``ray[serve]`` comes with ``.[all]``)."""
    session.run("python", "-m", "pytest", "tests/serving/test_ray.py", "-m", "ray", "-q",
                "-p", "no:cacheprovider", *session.posargs,
                env={"KERAS_BACKEND": "jax", **QUIET_TF})


@nox.session(venv_backend="none")
def lint(session):
    session.run("ruff", "check", "softprompt", "tests", "benchmarks", "noxfile.py")


@nox.session(venv_backend="none")
def bench(session):
    """The benchmark suite (short by default; ``nox -s bench -- --full``).

    Installs the baselines first (``.[bench]``: transformers and PEFT); a no-op when the
    test extras are already installed.
    """
    session.run("python", "-m", "pip", "install", "-q", "-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs, env=QUIET_TF)


@nox.session(venv_backend="none")
def demo(session):
    """The main job on the embedded default: ``softprompt train`` with no arguments."""
    session.run("softprompt", "train", *session.posargs, env=QUIET_TF)
