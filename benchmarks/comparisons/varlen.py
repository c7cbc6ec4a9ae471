"""One epoch of variable-length inputs: length buckets against PEFT's pad-to-max recipe."""

from __future__ import annotations

import statistics

import numpy as np

from benchmarks.harness import workload
from benchmarks.harness.context import Context, paired
from benchmarks.harness.pool import HF, Contender, interleave
from benchmarks.harness.report import cell, times


def measure(ctx: Context) -> dict:
    """An epoch of BoolQ-like inputs: our length buckets vs PEFT's pad-to-max recipe.

    Each contender is one training step at one padded width; an epoch is the plan's
    number of batches of each width times that width's step, per round (see
    `benchmarks.cases.keras_cases.BucketSteps`). PEFT's recipe pads every batch to the
    maximum: ``examples / batch`` steps at the maximum width.
    """
    p = ctx.profile
    spec = p.varlen_model.to_dict()
    lengths = workload.boolq_lengths(p.varlen_examples, seed=0, max_length=p.varlen_max_length)
    common = dict(model=spec, batch=p.batch, prompt_length=p.prompt_length, target_length=3,
                  max_length=p.varlen_max_length)
    errors, setups, contenders = {}, {}, []
    for b in ctx.backends:
        info = ctx.setup(b, "varlen", "keras.buckets", errors, lengths=lengths, **common)
        if info is None:
            continue
        setups[b] = info
        for width in sorted({int(w) for plan in info["plans"].values() for w in plan}):
            # set-up compiled and ran every width once
            contenders.append(Contender(f"{b} @{width}", ctx.pool.worker(b), "varlen",
                                        f"width:{width}", warmup=0))
    if ctx.hf:
        info = ctx.setup(HF, "varlen", "hf.peft_padded", errors, "peft", **common)
        if info is not None:
            contenders.append(Contender("peft @max", ctx.pool.worker(HF), "varlen", "step",
                                        warmup=0))
    ctx.log(f"  timing {len(contenders)} step shapes x {p.varlen_rounds} rounds")
    m = interleave(contenders, p.varlen_rounds, p.warmup, ctx.log)
    n = len(lengths)

    def epochs(backend, scheme):
        """Per-round epoch seconds of `backend` under a bucket `scheme`."""
        plan = setups[backend]["plans"][scheme]
        series = [m[f"{backend} @{w}"].seconds for w in plan]
        if any(not s for s in series):
            return None
        return [sum(int(c) * s[r] for c, s in zip(plan.values(), series))
                for r in range(min(len(s) for s in series))]

    peft = m.get("peft @max")
    peft_epochs = [n / p.batch * t for t in peft.seconds] if peft and peft.seconds else None
    rows = {}
    for b in setups:
        mine = epochs(b, "library")
        if mine is None:
            continue
        tokens = setups[b]["padded_input_tokens"]
        fine, own_max = epochs(b, "fine"), epochs(b, "max")
        rows[b] = {
            "epoch_s": statistics.median(mine), "examples_per_s": n / statistics.median(mine),
            "speedup_vs_peft": paired(m, peft_epochs, mine) if peft_epochs else None,
            "speedup_vs_own_pad_to_max": paired(m, own_max, mine),
            "padded_input_tokens": tokens["library"], "plan": setups[b]["plans"]["library"],
            "fine_buckets_epoch_s": statistics.median(fine) if fine else None,
            "fine_buckets_speedup_vs_peft": paired(m, peft_epochs, fine) if peft_epochs else None,
            "fine_buckets_vs_library_buckets": paired(m, mine, fine),
            "fine_buckets_padded_input_tokens": tokens["fine"],
        }
    if peft_epochs:
        rows["peft"] = {"epoch_s": statistics.median(peft_epochs),
                        "examples_per_s": n / statistics.median(peft_epochs),
                        "speedup_vs_peft": 1.0, "padded_input_tokens": n * p.varlen_max_length}
    ctx.drop("varlen")
    stats = {"examples": n, "median_length": float(np.median(lengths)),
             "p90_length": float(np.percentile(lengths, 90)), "max_length": max(lengths),
             "cut_at_max": sum(v >= p.varlen_max_length for v in lengths),
             "real_input_tokens": sum(lengths)}
    return {"lengths": stats, "model": spec, "batch": p.batch, "rows": rows, "setup": setups,
            "errors": errors, "measurements": {k: v.to_dict() for k, v in m.items()}}


def table(varlen: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    s = varlen["lengths"]
    lines = [f"**Variable lengths** (an epoch of {s['examples']} BoolQ-like inputs, "
             f"median {s['median_length']:.0f} tokens, p90 {s['p90_length']:.0f}, "
             f"{s['cut_at_max']} cut at {s['max_length']}; {varlen['model']['config']}, "
             f"batch {varlen.get('batch', '?')}; from timed steps of each padded width × "
             "the plan's batches of that width)",
             "", "| Contender | epoch (s) | examples/s | padded input tokens | vs PEFT "
             "| vs own pad-to-max |", "|---|---|---|---|---|---|"]
    for k, r in varlen["rows"].items():
        name = "peft pad-to-max" if k == "peft" else f"{k} bucketed"
        lines.append(f"| {name} | {r['epoch_s']:.1f} | {r['examples_per_s']:.2f} | "
                    f"{cell(r.get('padded_input_tokens'))} | "
                    f"{times(r.get('speedup_vs_peft'))} | "
                    f"{times(r.get('speedup_vs_own_pad_to_max'))} |")
        if r.get("fine_buckets_epoch_s"):
            n = varlen["lengths"]["examples"]
            lines.append(f"| {k} √2 buckets (not the library's) | "
                        f"{r['fine_buckets_epoch_s']:.1f} | "
                        f"{n / r['fine_buckets_epoch_s']:.2f} | "
                        f"{r['fine_buckets_padded_input_tokens']} | "
                        f"{times(r.get('fine_buckets_speedup_vs_peft'))} | — |")
    return lines
