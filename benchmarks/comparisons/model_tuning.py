"""Model tuning's train step against transformers' full fine-tuning of the same T5.

Per backend: one `train_on_batch` of `softprompt train --method model-tuning` (every
weight trainable, Adafactor as T5X fine-tunes); transformers' `T5ForConditionalGeneration`
with every parameter trainable and its `Adafactor` (lr 1e-3, parameter scaling), on all
threads and pinned to one. Same shape (the train comparison's model, no prompt), same
batch, float32, all in one interleaving. A row's ``speedup_vs_transformers`` is the
median of per-round ratios against transformers on all threads.
"""

from __future__ import annotations

from benchmarks.harness.context import Context, median, paired
from benchmarks.harness.pool import HF, Contender, interleave
from benchmarks.harness.report import number, times

KEY = "model-tuning"


def measure(ctx: Context) -> dict:
    """Set up, interleave and time every contender; the rows of `table`, and the raw repeats."""
    p = ctx.profile
    spec = p.train_model.to_dict()
    shape = dict(batch=p.batch, input_length=p.input_length, target_length=p.target_length)
    errors, setups, memory, contenders = {}, {}, {}, []
    for name in ctx.backends:
        ctx.log(f"  setting up {name} model tuning (build, compile, first step)")
        info = ctx.setup(name, KEY, "keras.model_tuning_step", errors, name, model=spec,
                         **shape)
        if info is not None:
            setups[name] = info
            memory[name] = ctx.pool.worker(name).info(KEY)
            contenders.append(Contender(name, ctx.pool.worker(name), KEY, "step"))
    if ctx.hf:
        ctx.log("  setting up transformers full fine-tuning")
        info = ctx.setup(HF, KEY, "hf.full_finetune", errors, "transformers", model=spec,
                         **shape)
        if info is not None:
            setups["transformers"] = info
            memory["transformers"] = ctx.pool.worker(HF).info(KEY)
            worker = ctx.pool.worker(HF)
            contenders.append(Contender("transformers", worker, KEY, "step"))
            if info.get("threads", 1) > 1:  # the fair baseline on a busy machine
                contenders.append(Contender("transformers-1thread", worker, KEY, "step:1"))
    ctx.log(f"  timing {len(contenders)} contenders x {p.train_rounds} rounds")
    m = interleave(contenders, p.train_rounds, p.warmup, ctx.log)
    rows = {}
    for contender in contenders:
        label = contender.label
        step = median(m, label)
        if step is None:
            continue
        base = "transformers" if label.startswith("transformers") else label
        rows[label] = {
            "step_s": step,
            "speedup_vs_transformers": paired(m, "transformers", label),
            "speedup_vs_transformers_1thread": paired(m, "transformers-1thread", label),
            "trainable_parameters": setups.get(base, {}).get("trainable_parameters"),
            "peak_rss_mb": memory.get(base, {}).get("peak_rss_mb"),
        }
    ctx.drop(KEY)
    return {"shape": shape, "model": spec, "rows": rows, "setup": setups, "errors": errors,
            "measurements": {k: v.to_dict() for k, v in m.items()}}


def table(result: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    s = result["shape"]
    lines = [f"**Model tuning step** (every weight trains; batch {s['batch']}, "
             f"{s['input_length']} input tokens, {s['target_length']} target tokens; "
             f"{result['model']['config']}, float32; Adafactor, lr 1e-3, parameter scaling)",
             "",
             "| Contender | step (s) | vs transformers | vs transformers 1 thread | "
             "trained parameters | peak RSS (MiB) |",
             "|---|---|---|---|---|---|"]
    for label, r in result["rows"].items():
        trained = r.get("trainable_parameters")
        lines.append(
            f"| {label} | {r['step_s']:.2f} | {times(r.get('speedup_vs_transformers'))} | "
            f"{times(r.get('speedup_vs_transformers_1thread'))} | "
            f"{'—' if trained is None else f'{trained / 1e6:.1f} M'} | "
            f"{number(r.get('peak_rss_mb'), 0)} |")
    return lines
