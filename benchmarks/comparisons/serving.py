"""Serving shapes: a batch that mixes prompts, and an ensemble in one batched pass.

Mixed: prompt ids ``0, 1, 2, 3, ...`` against all 0 in batches of the same shape.
Ensemble: rank classification under 5 prompts in one pass (every input replicated 5
times) against 5 passes, over a small and a full request batch.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import workload
from benchmarks.harness.context import Context, median, paired
from benchmarks.harness.pool import Contender, interleave
from benchmarks.harness.report import number, times


def measure(ctx: Context) -> dict:
    """Set up, interleave and time every contender; the rows of `table`, and the raw repeats."""
    p = ctx.profile
    spec = p.serve_model.to_dict()
    errors, rows, raw = {}, {}, {}
    for b in ctx.backends:
        info = ctx.setup(b, "serving", "keras.serving", errors, model=spec, batch=p.serve_batch,
                         input_length=p.serve_input_length, prompt_length=p.prompt_length,
                         target_length=p.target_length, labels=list(workload.TWO_LABELS))
        if info is None:
            continue
        w = ctx.pool.worker(b)
        ctx.log(f"  {b}: mixed vs single, {p.serve_rounds} rounds")
        m = interleave([Contender(f"{b} mixed", w, "serving", "mixed"),
                        Contender(f"{b} single", w, "serving", "single")],
                       p.serve_rounds, p.warmup, ctx.log)
        rows[b] = {
            "mixed_s": median(m, f"{b} mixed"), "single_s": median(m, f"{b} single"),
            "mixed_over_single": paired(m, f"{b} mixed", f"{b} single"), "ensemble": {}}
        # a small request batch (where one pass fills the machine better) and the suite's
        for n in sorted({min(4, p.serve_batch), p.serve_batch}):
            ctx.log(f"  {b}: ensemble of 5 over {n} inputs, one pass vs passes, "
                    f"{p.serve_rounds} rounds")
            one, many = f"{b} ensemble one pass@{n}", f"{b} ensemble passes@{n}"
            m.update(interleave([Contender(one, w, "serving", f"ensemble_one_pass:{n}"),
                                 Contender(many, w, "serving", f"ensemble_passes:{n}")],
                                p.serve_rounds, p.warmup, ctx.log))
            a, c = m[one].extra.get("scores"), m[many].extra.get("scores")
            diff = (float(np.max(np.abs(np.asarray(a) - np.asarray(c))))
                    if a is not None and c is not None else None)
            rows[b]["ensemble"][n] = {
                "one_pass_s": median(m, one), "passes_s": median(m, many),
                "speedup": paired(m, many, one), "max_score_difference": diff}
        raw[b] = {k: v.to_dict() for k, v in m.items()}
        ctx.drop("serving")
    return {"model": spec, "batch": p.serve_batch, "input_length": p.serve_input_length,
            "mixed_prompts": 4, "ensemble_prompts": 5, "rows": rows, "errors": errors,
            "measurements": raw}


def table(serve: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    lines = [f"**Serving shapes** ({serve['model']['config']}, "
             f"{serve['input_length']}-token inputs; mixed = prompt ids 0,1,2,3,… vs all 0 "
             f"in a batch of {serve['batch']}; ensemble = rank classification under 5 "
             "prompts)", "",
             "| Backend | mixed (s) | single (s) | mixed/single | ensemble inputs | one pass (s) "
             "| 5 passes (s) | speedup | max score diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    for b, r in serve["rows"].items():
        first = True
        for n, e in sorted(r["ensemble"].items(), key=lambda kv: int(kv[0])):
            head = (f"| {b} | {number(r['mixed_s'], 3)} | {number(r['single_s'], 3)} | "
                   f"{number(r['mixed_over_single'], 3)} " if first else "| | | | ")
            first = False
            lines.append(f"{head}| {n} | {number(e['one_pass_s'])} | {number(e['passes_s'])} | "
                        f"{times(e['speedup'])} | {number(e['max_score_difference'], 4)} |")
    return lines
