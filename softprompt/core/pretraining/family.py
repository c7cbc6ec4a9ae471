"""The embedded model family: one recipe, three sizes over 11x in parameters.

``softprompt_tiny`` ships with the package; ``softprompt_small`` and
``softprompt_base`` are built on demand into softprompt's cache
(`softprompt.core.interop.cache.cache_dir`) by ``scripts/build_embedded.py --size
small|base``, which runs ``softprompt adapt`` with `adapt_arguments`. All three
are T5 1.1 models (gated GELU, untied output matrix) pretrained from random
weights on the same synthetic mixture (`softprompt.data.synthetic`) with the
same 256-piece BPE vocabulary; they differ in width, depth and in how long
they train (sized so that each build takes minutes of CPU, not hours; see
``docs/comparison.md`` for the measured times and how far each trained).

Example:
    >>> FAMILY["base"].parameters
    9574144
    >>> adapt_arguments("base", Path("build/embedded"), Path("/tmp/softprompt_base"))[:2]
    ['--from-config', '{"hidden_dim":256,"num_layers":4,"num_heads":4,...}']
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Member:
    """One size of the family: its architecture and its pretraining schedule (Adam)."""

    arch: dict
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    eval_every: int

    @property
    def parameters(self) -> int:
        """The backbone's parameter count (vocabulary of 256, T5 1.1 layout)."""
        d, layers = self.arch["hidden_dim"], self.arch["num_layers"]
        inner = self.arch["num_heads"] * self.arch["key_value_dim"]
        ff = self.arch["intermediate_dim"]
        attention, feed_forward = 4 * d * inner, 3 * d * ff
        per_layer = (attention + feed_forward + 2 * d) + (2 * attention + feed_forward + 3 * d)
        buckets = 2 * 32 * self.arch["num_heads"]
        return layers * per_layer + 2 * d + buckets + 2 * VOCABULARY * d


VOCABULARY = 256
#: The family, smallest first. ``tiny`` is the shipped model's recipe, unchanged.
FAMILY = {
    "tiny": Member({"hidden_dim": 128, "num_layers": 2, "num_heads": 4, "intermediate_dim": 256,
                    "key_value_dim": 32}, steps=3000, batch_size=64, lr=2e-3, warmup_steps=150,
                   eval_every=500),
    "small": Member({"hidden_dim": 192, "num_layers": 3, "num_heads": 4, "intermediate_dim": 384,
                     "key_value_dim": 48}, steps=800, batch_size=32, lr=2e-3, warmup_steps=100,
                    eval_every=250),
    "base": Member({"hidden_dim": 256, "num_layers": 4, "num_heads": 4, "intermediate_dim": 1024,
                    "key_value_dim": 64}, steps=500, batch_size=32, lr=1e-3, warmup_steps=100,
                   eval_every=250),
}
SIZES = tuple(FAMILY)


def preset_name(size: str) -> str:
    """``"small"`` -> ``"softprompt_small"``."""
    if size not in FAMILY:
        raise ValueError(f"unknown size {size!r}: expected one of {', '.join(SIZES)}")
    return f"softprompt_{size}"


def adapt_arguments(size: str, work: Path, out: Path, workdir: Path | None = None,
                    steps: int | None = None, seed: int = 0) -> list[str]:
    """``softprompt adapt``'s arguments that build `size` from the mixture in `work`.

    `steps` shortens the schedule (a smoke run); the warm-up shrinks with it.
    """
    member = FAMILY[size]
    preset_name(size)
    steps = member.steps if steps is None else int(steps)
    return [
        "--from-config", json.dumps(member.arch, separators=(",", ":")),
        "--style", "t5.1.1", "--vocab-model", "bpe", "--vocab-size", str(VOCABULARY),
        "--corpus", str(work / "lm.txt"), "--corpus", str(work / "tasks.jsonl"),
        "--steps", str(steps), "--batch-size", str(member.batch_size),
        "--optimizer", "adam", "--lr", f"{member.lr:.0e}".replace("e-0", "e-"),
        "--warmup-steps", str(min(member.warmup_steps, max(steps // 10, 1))),
        "--max-input-length", "64", "--max-target-length", "64",
        "--eval-every", str(min(member.eval_every, steps)), "--seed", str(seed),
        "--out", str(out), "--workdir", str(workdir or work / ("run" if size == "tiny"
                                                              else f"run-{size}")),
    ]
