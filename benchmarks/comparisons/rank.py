"""Rank classification against generate-then-parse, and the encoder alone that both share.

Two label tasks on a random model (2 labels with BoolQ-like inputs, 3 with CB-like ones),
and the built-in task on the embedded trained model, where the generations parse and the
two methods' answers are compared.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import workload
from benchmarks.harness.context import Context, median, paired
from benchmarks.harness.pool import Contender, interleave
from benchmarks.harness.report import times

TASKS = {"2 labels (BoolQ-like)": ("boolq", workload.TWO_LABELS),
         "3 labels (CB-like)": ("cb", workload.THREE_LABELS)}
#: The trained check: the embedded model + its text instruction on the built-in task.
BUILTIN = "6 labels (built-in animal_food, embedded model)"


def measure(ctx: Context) -> dict:
    """Set up, interleave and time every contender; the rows of `table`, and the raw repeats."""
    p = ctx.profile
    spec = p.eval_model.to_dict()
    out = {"model": spec, "tasks": {}}
    plans = []
    for task_name, (law, labels) in TASKS.items():
        lengths = workload.lengths_like(law, p.eval_examples, seed=1,
                                        max_length=p.eval_max_length)
        plans.append((task_name, "keras.labels", list(labels), lengths, dict(
            model=spec, lengths=lengths, labels=list(labels), batch=p.eval_batch,
            prompt_length=p.prompt_length)))
    plans.append((BUILTIN, "keras.builtin_labels", None, [0] * p.eval_examples,
                  dict(examples=p.eval_examples, batch=p.eval_batch)))
    for task_name, case, labels, lengths, params in plans:
        errors, setups, contenders = {}, {}, []
        for b in ctx.backends:
            info = ctx.setup(b, "labels", case, errors, **params)
            if info is not None:
                setups[b] = info
                w = ctx.pool.worker(b)
                contenders += [Contender(f"{b} rank", w, "labels", "rank"),
                               Contender(f"{b} generate", w, "labels", "generate"),
                               Contender(f"{b} encoder only", w, "labels", "encode")]
        ctx.log(f"  {task_name}: timing {len(contenders)} contenders x {p.eval_rounds} rounds")
        m = interleave(contenders, p.eval_rounds, p.warmup, ctx.log)
        rows = {}
        for b in ctx.backends:
            rank, gen = median(m, f"{b} rank"), median(m, f"{b} generate")
            if rank is None or gen is None:
                continue
            rank_pred = m[f"{b} rank"].extra.get("predictions", [])
            gen_pred = m[f"{b} generate"].extra.get("predictions", [])
            valid = [i for i, g in enumerate(gen_pred) if g >= 0]
            same = sum(rank_pred[i] == gen_pred[i] for i in valid)
            rows[b] = {"rank_examples_per_s": len(lengths) / rank,
                       "generate_examples_per_s": len(lengths) / gen,
                       "speedup": paired(m, f"{b} generate", f"{b} rank"),
                       # the encoder is common to both: generate / encoder bounds any speedup
                       "encoder_s": median(m, f"{b} encoder only"),
                       "speedup_bound": paired(m, f"{b} generate", f"{b} encoder only"),
                       "decode_length": setups[b]["decode_length"],
                       "valid_generations": len(valid), "identical_where_valid": same}
        ctx.drop("labels")
        out["tasks"][task_name] = {
            "labels": labels, "examples": len(lengths),
            "median_length": float(np.median(lengths)) if labels else None,
            "rows": rows, "errors": errors,
            "agreement_check": task_name == BUILTIN,  # the trained model: answers compared
            "setup": setups, "measurements": {k: v.to_dict() for k, v in m.items()}}
    return out


def table(rank: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    lines = [f"**Rank classification vs generate-then-parse** "
             f"({rank['model']['config']}, random weights; the built-in task on the "
             "embedded trained model checks that both methods agree)", "",
             "| Task | Backend | rank ex/s | generate ex/s | speedup | bound: generate / "
             "encoder alone | decoded tokens | identical where generation valid |",
             "|---|---|---|---|---|---|---|---|"]
    for task, data in rank["tasks"].items():
        for b, r in data["rows"].items():
            lines.append(f"| {task} | {b} | {r['rank_examples_per_s']:.2f} | "
                        f"{r['generate_examples_per_s']:.2f} | {times(r['speedup'])} | "
                        f"{times(r.get('speedup_bound'))} | "
                        f"{r['decode_length']} | {r['identical_where_valid']}/"
                        f"{r['valid_generations']} |")
    return lines
