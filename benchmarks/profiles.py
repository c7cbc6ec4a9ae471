"""The sizes of a run: ``toy`` (the test), ``short`` (the default) and ``full`` (T5-small).

The train-step comparison runs in float32 and in bfloat16 (`train_dtypes`) and always uses
T5-small's shape outside the toy profile: it is the headline number. The short profile runs
the other comparisons on a narrower model
(``small``: d 256, 4+4 layers, the full 32k vocabulary) and fewer examples so that each
backend finishes in a few minutes on a loaded 2-core CPU; ``--full`` runs them at T5-small
size too.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A random T5 of a `softprompt.core.pretraining.scratch` config."""

    config: str = "t5-small"
    vocabulary_size: int = 32128
    style: str = "t5.1.0"  # T5-small is T5 1.0: relu feed-forward, tied embeddings

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    # 1. train step
    train_model: ModelSpec
    batch: int
    input_length: int
    prompt_length: int
    target_length: int
    train_rounds: int
    matmul_size: int
    # 2. variable-length workload
    varlen_model: ModelSpec
    varlen_examples: int
    varlen_max_length: int
    varlen_rounds: int
    # 3. rank classification vs generate
    eval_model: ModelSpec
    eval_examples: int
    eval_batch: int
    eval_rounds: int
    eval_max_length: int
    # 4. serving shapes
    serve_model: ModelSpec
    serve_batch: int
    serve_input_length: int
    serve_rounds: int
    # 5. decoding
    decode_model: ModelSpec
    decode_batch: int
    decode_input_length: int
    decode_lengths: tuple[int, ...]
    decode_rounds: int
    #: warm-up calls of each contender before the timed rounds (compiles happen there)
    warmup: int = 1
    #: intra-op threads of every worker (None: each framework's default, all cores)
    threads: int | None = None
    #: dtypes of the train-step comparison: every backend and PEFT in each;
    #: ``bfloat16`` is the frozen backbone's weights and compute (the prompt stays float32)
    train_dtypes: tuple[str, ...] = ("float32", "bfloat16")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


T5_SMALL = ModelSpec("t5-small")
SMALL = ModelSpec("small")
TEST = ModelSpec("test", vocabulary_size=512)

PROFILES = {
    "toy": Profile(
        "toy", train_model=TEST, batch=2, input_length=12, prompt_length=4, target_length=3,
        train_rounds=1, matmul_size=128,
        varlen_model=TEST, varlen_examples=40, varlen_max_length=256, varlen_rounds=1,
        eval_model=TEST, eval_examples=4, eval_batch=4, eval_rounds=1, eval_max_length=24,
        serve_model=TEST, serve_batch=4, serve_input_length=12, serve_rounds=1,
        decode_model=TEST, decode_batch=2, decode_input_length=12, decode_lengths=(3,),
        decode_rounds=1, warmup=1, threads=1,
    ),
    "short": Profile(
        "short", train_model=T5_SMALL, batch=8, input_length=128, prompt_length=100,
        target_length=8, train_rounds=3, matmul_size=2048,
        varlen_model=SMALL, varlen_examples=3000, varlen_max_length=512, varlen_rounds=3,
        eval_model=SMALL, eval_examples=32, eval_batch=16, eval_rounds=3,
        eval_max_length=512,
        serve_model=SMALL, serve_batch=16, serve_input_length=128, serve_rounds=3,
        decode_model=SMALL, decode_batch=8, decode_input_length=128,
        decode_lengths=(8, 16, 32), decode_rounds=3,
    ),
    "full": Profile(
        "full", train_model=T5_SMALL, batch=8, input_length=128, prompt_length=100,
        target_length=8, train_rounds=5, matmul_size=2048,
        varlen_model=T5_SMALL, varlen_examples=3000, varlen_max_length=512, varlen_rounds=3,
        eval_model=T5_SMALL, eval_examples=32, eval_batch=16, eval_rounds=3,
        eval_max_length=512,
        serve_model=T5_SMALL, serve_batch=16, serve_input_length=128, serve_rounds=3,
        decode_model=T5_SMALL, decode_batch=8, decode_input_length=128,
        decode_lengths=(4, 8, 16, 32), decode_rounds=3,
    ),
}
