"""The suite's comparisons, one module each: ``measure(ctx) -> dict`` and ``table(result)``.

    train    the train step vs PEFT and vs the machine's matmul peak (`train_step`)
    varlen   an epoch of variable-length inputs: length buckets vs pad-to-max (`varlen`)
    rank     rank classification vs generate-then-parse (`rank`)
    serving  mixed-prompt batches and one-pass ensembles (`serving`)
    decode   cached vs uncached greedy decoding, and PEFT's `generate` (`decode`)

Example:
    >>> results["suites"]["train"] = SUITES["train"].measure(ctx)
    >>> print(markdown(results))
"""

from __future__ import annotations

from benchmarks.comparisons import decode, rank, serving, train_step, varlen
from benchmarks.harness.report import header

#: name (``--suites``) -> module, in the order a run measures them
SUITES = {
    "train": train_step,
    "varlen": varlen,
    "rank": rank,
    "serving": serving,
    "decode": decode,
}


def markdown(results: dict) -> str:
    """The run's header and one table per comparison it measured, with any set-up errors."""
    lines = [header(results)]
    for name, result in results.get("suites", {}).items():
        lines += ["", *SUITES[name].table(result)]
        errors = dict(result.get("errors") or {})
        for task in (result.get("tasks") or {}).values():
            errors.update(task.get("errors") or {})
        if errors:
            lines += ["", "Failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items())]
    return "\n".join(lines) + "\n"
