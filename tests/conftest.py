"""Shared fixtures: tiny T5 presets built locally (nothing is ever downloaded).

Each preset is a random keras-hub `T5Backbone` plus a `T5Tokenizer` whose
sentencepiece model is trained here, saved with ``save_to_preset`` and meant
to be loaded back through ``from_preset`` exactly as a user's preset would be.
The backend under test is whatever ``KERAS_BACKEND`` says (nox sets it).
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One OpenMP thread in this process and in every process a test starts: the count the demo and
# the server use for small models (`Adapter.small_model_threads`, a setting that lasts for the
# process). A run made with two threads and resumed with one sums in another order and differs
# in the last bit; with one count everywhere, every comparison of reruns is exact.
os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*does not support masking.*")

import pytest  # noqa: E402

# before anything imports keras: with SOFTPROMPT_ONLY_BACKEND=1, importing softprompt keeps the
# other backends' frameworks out of the test process (softprompt.backends.exclusive)
import softprompt  # noqa: E402, F401

WORDS = (
    "the a an quick brown fox jumps over lazy dog cat sat on mat river bank money water "
    "good bad great terrible movie film story plot actor scene true false yes no question "
    "passage answer premise hypothesis entailment contradiction neutral positive negative "
    "red green blue one two three four five six seven eight nine ten apple banana cherry"
).split()


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Deterministic pseudo-sentences over a small vocabulary."""
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_corpus() -> list[str]:
    return corpus()


def _build(tmp_path_factory, style: str, config="test", seed=0):
    from softprompt.core.pretraining.scratch import build_preset

    out = tmp_path_factory.mktemp(f"preset-{style}")
    return str(build_preset(out, corpus(), config=config, style=style, vocab_size=120, seed=seed))


@pytest.fixture(scope="session")
def preset_v10(tmp_path_factory) -> str:
    """T5 1.0 style: relu feed-forward, tied input/output embeddings."""
    return _build(tmp_path_factory, "t5.1.0")


@pytest.fixture(scope="session")
def preset_v11(tmp_path_factory) -> str:
    """T5 1.1 style: gated-GELU feed-forward, untied output projection."""
    return _build(tmp_path_factory, "t5.1.1", seed=1)


@pytest.fixture(scope="session", params=["t5.1.0", "t5.1.1"])
def preset(request, preset_v10, preset_v11) -> str:
    """Both T5 styles, one after the other."""
    return preset_v10 if request.param == "t5.1.0" else preset_v11
