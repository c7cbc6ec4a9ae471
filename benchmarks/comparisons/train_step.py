"""The train step against PEFT and against the machine's matmul peak.

Per backend and dtype: `train_on_batch` (step) and `test_on_batch` (forward) of a
T5-small-shaped prompt-tuning model; PEFT prompt tuning in each dtype, and its float32 step
pinned to one thread; a large matmul in each framework and dtype (the machine's peak per
dtype is the best framework's, per round). All in one interleaving. A row's
``speedup_vs_peft`` is against PEFT in float32 (its default),
``speedup_vs_peft_same_dtype`` against PEFT in the row's dtype, and ``share_of_peak``
against the matmul peak of the row's dtype.

Memory, per row: ``peak_rss_mb`` is the worker process's resident-memory high-water mark
over the case's first `MEMORY_STEPS` steps (restarted before the first: it is what the
process holds at its fullest while training, imports and weights included);
``step_memory_mb`` what the steps added to what the process held before them (the step's
own working set, as far as the allocator did not serve it from memory freed earlier);
``peak_rss_vs_peft`` the peak against PEFT's in the row's dtype (float32's where PEFT has
no row in it). A worker that sets up several dtypes holds all their models at once, so
only its first dtype's peak is alone.
"""

from __future__ import annotations

from benchmarks.cases import MEMORY_STEPS
from benchmarks.harness.context import Context, median, paired
from benchmarks.harness.flops import step_flops
from benchmarks.harness.pool import HF, Contender, interleave
from benchmarks.harness.report import number, percent, times

#: how a dtype shows in contender labels ("torch", "torch bf16", "peft bf16", ...)
DTYPE_TAGS = {"float32": "", "bfloat16": " bf16", "mixed_bfloat16": " mixed-bf16"}


def _tagged(name: str, dtype: str) -> str:
    return name + DTYPE_TAGS.get(dtype, f" {dtype}")


def _peak_dtype(dtype: str) -> str:
    """The matmul dtype behind a compute dtype (``mixed_bfloat16`` multiplies in bfloat16)."""
    return "bfloat16" if "bfloat16" in dtype else dtype


def _dtype_key(base: str, dtype: str) -> str:
    return base if dtype == "float32" else f"{base}-{dtype}"


def measure(ctx: Context) -> dict:
    """Set up, interleave and time every contender; the rows of `table`, and the raw repeats."""
    p = ctx.profile
    spec = p.train_model.to_dict()
    shape = dict(batch=p.batch, input_length=p.input_length, prompt_length=p.prompt_length,
                 target_length=p.target_length)
    dtypes = list(p.train_dtypes)
    errors, setups, memory, contenders = {}, {}, {}, []
    variants = [(_tagged(b, d), b, None, d) for d in dtypes for b in ctx.backends]
    if ctx.torch_compile and "torch" in ctx.backends:
        variants.append(("torch+compile", "torch", True, "float32"))
    row_dtype = {}

    def add(worker_name, key, case, label, dtype, **params):
        """Set up one train-step case; queue its step and forward. None if set-up failed."""
        info = ctx.setup(worker_name, key, case, errors, label, model=spec, dtype=dtype,
                         **shape, **params)
        if info is not None:
            worker = ctx.pool.worker(worker_name)
            setups[label], row_dtype[label] = info, dtype
            memory[label] = worker.info(key)
            contenders.extend([Contender(f"{label} step", worker, key, "step"),
                               Contender(f"{label} forward", worker, key, "forward")])
        return info

    for label, name, jit, dtype in variants:
        ctx.log(f"  setting up {label} (build, compile, first step)")
        add(name, "train-compiled" if jit else _dtype_key("train", dtype), "keras.train_step",
            label, dtype, jit_compile=jit)
    if ctx.hf:
        for dtype in dtypes:
            label, key = _tagged("peft", dtype), _dtype_key("train", dtype)
            ctx.log(f"  setting up {label}")
            info = add(HF, key, "hf.peft_train", label, dtype)
            if info is not None and dtype == "float32" and info.get("threads", 1) > 1:
                # the same, pinned to one thread: the fair baseline on a busy machine
                contenders.append(Contender("peft-1thread step", ctx.pool.worker(HF), key,
                                            "step:1"))
                row_dtype["peft-1thread"] = dtype
    peak_workers = list(ctx.backends) + ([HF] if ctx.hf and "torch" not in ctx.backends else [])
    peak_dtypes = sorted({"float32", *(_peak_dtype(d) for d in dtypes)})
    for name in peak_workers:
        framework = "torch" if name == HF else name
        for dtype in peak_dtypes:
            label, key = _tagged(f"{framework} matmul", dtype), _dtype_key("peak", dtype)
            info = ctx.setup(name, key, "matmul", errors, label, framework=framework,
                             size=p.matmul_size, dtype=dtype)
            if info is not None:
                setups[label] = info
                contenders.append(Contender(label, ctx.pool.worker(name), key, "matmul"))
    ctx.log(f"  timing {len(contenders)} contenders x {p.train_rounds} rounds")
    m = interleave(contenders, p.train_rounds, p.warmup, ctx.log)

    # the machine's peak per dtype: the best framework's matmul, overall and in each round
    peaks, round_peaks = {}, {}
    for dtype in peak_dtypes:
        per_round = []
        for framework in ("jax", "torch", "tensorflow"):
            label = _tagged(f"{framework} matmul", dtype)
            if label in setups and m.get(label) and m[label].seconds:
                flops = setups[label]["flops_per_call"]
                peaks.setdefault(dtype, {})[framework] = flops / m[label].median
                per_round.append([flops / t for t in m[label].seconds])
        round_peaks[dtype] = [max(r) for r in zip(*per_round)] if per_round else []

    shape_info = next((s["shape"] for s in setups.values() if "shape" in s), None)
    flops = step_flops(**shape, **shape_info) if shape_info else None
    rows = {}
    for label, dtype in row_dtype.items():  # every contender set up, in set-up order
        step, forward = median(m, f"{label} step"), median(m, f"{label} forward")
        if step is None:
            continue
        same = _tagged("peft", dtype)
        row = {"dtype": dtype,
               "step_s": step, "forward_s": forward,
               "step_over_forward": paired(m, f"{label} step", f"{label} forward"),
               "speedup_vs_peft": paired(m, "peft step", f"{label} step"),
               "speedup_vs_peft_same_dtype": paired(m, f"{same} step", f"{label} step")}
        if flops:
            row["gflops"] = flops["step"] / step / 1e9
            steps = m[f"{label} step"].seconds
            peak_rounds = round_peaks.get(_peak_dtype(dtype)) or []
            row["share_of_peak"] = paired(m, [flops["step"] / t for t in steps], peak_rounds)
            if dtype != "float32":
                row["share_of_float32_peak"] = paired(
                    m, [flops["step"] / t for t in steps], round_peaks.get("float32") or [])
            if forward:
                row["forward_share_of_peak"] = paired(
                    m, [flops["forward"] / t for t in m[f"{label} forward"].seconds],
                    peak_rounds)
        base = "peft" if label == "peft-1thread" else label
        mem = memory.get(base, {})
        row["peak_rss_mb"] = mem.get("peak_rss_mb")
        before = setups.get(base, {}).get("rss_before_steps_mb")
        if mem.get("peak_rss_mb") and before:
            row["step_memory_mb"] = mem["peak_rss_mb"] - before
        if "device_peak_mb" in mem:
            row["device_peak_mb"] = mem["device_peak_mb"]
        rows[label] = row
    for row in rows.values():
        row["peak_rss_vs_peft"] = rss_vs_peft(rows, row)
    for key in ["train-compiled", *(_dtype_key("train", d) for d in dtypes),
                *(_dtype_key("peak", d) for d in peak_dtypes)]:
        ctx.drop(key)
    fp32 = peaks.get("float32", {})
    return {"shape": shape, "model": spec, "flops": flops, "dtypes": dtypes,
            "memory_steps": MEMORY_STEPS,
            "matmul_peaks_flops": fp32, "matmul_peak_flops": max(fp32.values()) if fp32 else None,
            "matmul_peaks_by_dtype": peaks,
            "matmul_peak_by_dtype": {d: max(v.values()) for d, v in peaks.items() if v},
            "rows": rows, "setup": setups, "errors": errors,
            "measurements": {k: v.to_dict() for k, v in m.items()}}


def rss_vs_peft(rows: dict, row: dict) -> float | None:
    """`row`'s peak resident memory over PEFT's in its dtype (float32's if PEFT has none)."""
    peft = rows.get(_tagged("peft", row.get("dtype", "float32"))) or rows.get("peft") or {}
    if row.get("peak_rss_mb") and peft.get("peak_rss_mb"):
        return row["peak_rss_mb"] / peft["peak_rss_mb"]
    return None


def table(train: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    by_dtype = train.get("matmul_peak_by_dtype") or (
        {"float32": train["matmul_peak_flops"]} if train.get("matmul_peak_flops") else {})
    peak = ", ".join(f"{d} {v / 1e9:.0f} GFLOP/s" for d, v in sorted(by_dtype.items()))
    flops = f"{train['flops']['step'] / 1e9:.0f} G" if train.get("flops") else "—"
    s = train["shape"]
    count = train.get("memory_steps", 1)  # results from before the key: one step
    steps = "step" if count == 1 else f"{count} steps"
    lines = [f"**Train step** (batch {s['batch']}, {s['input_length']} input tokens + prompt "
             f"{s['prompt_length']}, {s['target_length']} target tokens; "
             f"{train['model']['config']}): step FLOPs {flops}, matmul peak {peak or '—'}; "
             "`bf16`: the frozen backbone in bfloat16, the prompt in float32. Peak RSS: the "
             f"worker's resident high-water mark over its first {steps} "
             "(imports and weights included; a worker holds the models of all its dtypes); "
             "step memory: what that added to the resident memory before it",
             "",
             "| Contender | step (s) | forward (s) | step/forward | GFLOP/s | of peak "
             "(its dtype) | vs PEFT float32 | vs PEFT same dtype | peak RSS (MiB) | "
             "step memory (MiB) | peak RSS vs PEFT |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in train["rows"].items():
        lines.append(
            f"| {k} | {r['step_s']:.2f} | {number(r.get('forward_s'))} | "
            f"{number(r.get('step_over_forward'))} | {number(r.get('gflops'), 1)} | "
            f"{percent(r.get('share_of_peak'))} | {times(r.get('speedup_vs_peft'))} | "
            f"{times(r.get('speedup_vs_peft_same_dtype'))} | "
            f"{number(r.get('peak_rss_mb'), 0)} | {number(r.get('step_memory_mb'), 0)} | "
            f"{times(rss_vs_peft(train['rows'], r))} |")
    return lines
