"""The five comparisons of issue 9, each measured by interleaving its contenders.

Each suite function takes a `Context` and returns a JSON-able dict: the raw measurements
(every repeat, medians) and the derived numbers that `benchmarks.report` tabulates.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import workload
from benchmarks.flops import step_flops
from benchmarks.pool import HF, Contender, Pool, WorkerError, interleave
from benchmarks.profiles import Profile


@dataclasses.dataclass
class Context:
    pool: Pool
    profile: Profile
    backends: list[str]
    hf: bool  # transformers + peft available: run the baselines
    cache: Path  # scratch files (the shared checkpoint and prompt of suite 5)
    log: Callable[[str], None]
    torch_compile: bool = False

    def setup(self, worker_name, key, case, errors, label=None, **params):
        """Set up a case; on failure record the error under `label` and return None."""
        try:
            return self.pool.worker(worker_name).setup(key, case, **params)
        except WorkerError as err:
            errors[label or worker_name] = str(err)
            self.log(f"  {label or worker_name}: set-up failed: {err}")
            return None

    def drop(self, key):
        for worker in self.pool.workers.values():
            try:
                worker.drop(key)
            except WorkerError:
                pass


def _median(measurements, label):
    m = measurements.get(label)
    return None if m is None else m.median


def _paired(measurements, num, den):
    """Median over rounds of ``num_r / den_r``: the two were timed in the same round.

    Pairing by round cancels load that drifts over minutes better than a ratio of
    medians; a label may also be a list of per-round values.
    """
    def series(x):
        if isinstance(x, list):
            return x
        m = measurements.get(x)
        return None if m is None else m.seconds

    a, b = series(num), series(den)
    if not a or not b:
        return None
    ratios = [x / y for x, y in zip(a, b) if y]
    return statistics.median(ratios) if ratios else None


# ----------------------------------------------------------------------------- 1
#: how a dtype shows in contender labels ("torch", "torch bf16", "peft bf16", ...)
DTYPE_TAGS = {"float32": "", "bfloat16": " bf16", "mixed_bfloat16": " mixed-bf16"}


def _tagged(name: str, dtype: str) -> str:
    return name + DTYPE_TAGS.get(dtype, f" {dtype}")


def _peak_dtype(dtype: str) -> str:
    """The matmul dtype behind a compute dtype (``mixed_bfloat16`` multiplies in bfloat16)."""
    return "bfloat16" if "bfloat16" in dtype else dtype


def _dtype_key(base: str, dtype: str) -> str:
    return base if dtype == "float32" else f"{base}-{dtype}"


def train_step(ctx: Context) -> dict:
    """Train step and forward per backend and dtype, PEFT in each dtype, matmul peaks per dtype.

    All in one interleaving. A row's ``speedup_vs_peft`` is against PEFT in float32 (its
    default), ``speedup_vs_peft_same_dtype`` against PEFT in the row's dtype, and
    ``share_of_peak`` against the machine's matmul peak in the row's dtype.
    """
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
    for label, name, jit, dtype in variants:
        key = "train-compiled" if jit else _dtype_key("train", dtype)
        ctx.log(f"  setting up {label} (build, compile, first step)")
        info = ctx.setup(name, key, "keras.train_step", errors, label, model=spec,
                         jit_compile=jit, dtype=dtype, **shape)
        if info is None:
            continue
        setups[label], row_dtype[label] = info, dtype
        memory[label] = ctx.pool.worker(name).info(key)
        worker = ctx.pool.worker(name)
        contenders += [Contender(f"{label} step", worker, key, "step"),
                       Contender(f"{label} forward", worker, key, "forward")]
    if ctx.hf:
        for dtype in dtypes:
            label, key = _tagged("peft", dtype), _dtype_key("train", dtype)
            ctx.log(f"  setting up {label}")
            info = ctx.setup(HF, key, "hf.peft_train", errors, label, model=spec, dtype=dtype,
                             **shape)
            if info is None:
                continue
            setups[label], row_dtype[label] = info, dtype
            memory[label] = ctx.pool.worker(HF).info(key)
            worker = ctx.pool.worker(HF)
            contenders += [Contender(f"{label} step", worker, key, "step"),
                           Contender(f"{label} forward", worker, key, "forward")]
            if dtype == "float32" and info.get("threads", 1) > 1:
                # the same, pinned to one thread (see the README)
                contenders.append(Contender("peft-1thread step", worker, key, "step:1"))
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
        step, forward = _median(m, f"{label} step"), _median(m, f"{label} forward")
        if step is None:
            continue
        same = _tagged("peft", dtype)
        row = {"dtype": dtype,
               "step_s": step, "forward_s": forward,
               "step_over_forward": _paired(m, f"{label} step", f"{label} forward"),
               "speedup_vs_peft": _paired(m, "peft step", f"{label} step"),
               "speedup_vs_peft_same_dtype": _paired(m, f"{same} step", f"{label} step")}
        if flops:
            row["gflops"] = flops["step"] / step / 1e9
            steps = m[f"{label} step"].seconds
            peak_rounds = round_peaks.get(_peak_dtype(dtype)) or []
            row["share_of_peak"] = _paired(m, [flops["step"] / t for t in steps], peak_rounds)
            if dtype != "float32":
                row["share_of_float32_peak"] = _paired(
                    m, [flops["step"] / t for t in steps], round_peaks.get("float32") or [])
            if forward:
                row["forward_share_of_peak"] = _paired(
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
    for key in ["train-compiled", *(_dtype_key("train", d) for d in dtypes),
                *(_dtype_key("peak", d) for d in peak_dtypes)]:
        ctx.drop(key)
    fp32 = peaks.get("float32", {})
    return {"shape": shape, "model": spec, "flops": flops, "dtypes": dtypes,
            "matmul_peaks_flops": fp32, "matmul_peak_flops": max(fp32.values()) if fp32 else None,
            "matmul_peaks_by_dtype": peaks,
            "matmul_peak_by_dtype": {d: max(v.values()) for d, v in peaks.items() if v},
            "rows": rows, "setup": setups, "errors": errors,
            "measurements": {k: v.to_dict() for k, v in m.items()}}


# ----------------------------------------------------------------------------- 2
def variable_length(ctx: Context) -> dict:
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
            "speedup_vs_peft": _paired(m, peft_epochs, mine) if peft_epochs else None,
            "speedup_vs_own_pad_to_max": _paired(m, own_max, mine),
            "padded_input_tokens": tokens["library"], "plan": setups[b]["plans"]["library"],
            "fine_buckets_epoch_s": statistics.median(fine) if fine else None,
            "fine_buckets_speedup_vs_peft": _paired(m, peft_epochs, fine) if peft_epochs else None,
            "fine_buckets_vs_library_buckets": _paired(m, mine, fine),
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


# ----------------------------------------------------------------------------- 3
TASKS = {"2 labels (BoolQ-like)": ("boolq", workload.TWO_LABELS),
         "3 labels (CB-like)": ("cb", workload.THREE_LABELS)}
#: The trained check: the embedded model + its text instruction on the built-in task.
BUILTIN = "6 labels (built-in animal_food, embedded model)"


def rank_vs_generate(ctx: Context) -> dict:
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
            rank, gen = _median(m, f"{b} rank"), _median(m, f"{b} generate")
            if rank is None or gen is None:
                continue
            rank_pred = m[f"{b} rank"].extra.get("predictions", [])
            gen_pred = m[f"{b} generate"].extra.get("predictions", [])
            valid = [i for i, g in enumerate(gen_pred) if g >= 0]
            same = sum(rank_pred[i] == gen_pred[i] for i in valid)
            rows[b] = {"rank_examples_per_s": len(lengths) / rank,
                       "generate_examples_per_s": len(lengths) / gen,
                       "speedup": _paired(m, f"{b} generate", f"{b} rank"),
                       # the encoder is common to both: generate / encoder bounds any speedup
                       "encoder_s": _median(m, f"{b} encoder only"),
                       "speedup_bound": _paired(m, f"{b} generate", f"{b} encoder only"),
                       "decode_length": setups[b]["decode_length"],
                       "valid_generations": len(valid), "identical_where_valid": same}
        ctx.drop("labels")
        out["tasks"][task_name] = {
            "labels": labels, "examples": len(lengths),
            "median_length": float(np.median(lengths)) if labels else None,
            "rows": rows, "errors": errors,
            "agreement_check": task_name == BUILTIN,  # not one of the two targets
            "setup": setups, "measurements": {k: v.to_dict() for k, v in m.items()}}
    return out


# ----------------------------------------------------------------------------- 4
def serving(ctx: Context) -> dict:
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
            "mixed_s": _median(m, f"{b} mixed"), "single_s": _median(m, f"{b} single"),
            "mixed_over_single": _paired(m, f"{b} mixed", f"{b} single"), "ensemble": {}}
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
                "one_pass_s": _median(m, one), "passes_s": _median(m, many),
                "speedup": _paired(m, many, one), "max_score_difference": diff}
        raw[b] = {k: v.to_dict() for k, v in m.items()}
        ctx.drop("serving")
    return {"model": spec, "batch": p.serve_batch, "input_length": p.serve_input_length,
            "mixed_prompts": 4, "ensemble_prompts": 5, "rows": rows, "errors": errors,
            "measurements": raw}


# ----------------------------------------------------------------------------- 5
def decoding(ctx: Context) -> dict:
    p = ctx.profile
    spec = p.decode_model.to_dict()
    errors = {}
    ctx.cache.mkdir(parents=True, exist_ok=True)
    prompt_path = ctx.cache / f"prompt-{p.prompt_length}-{spec['config']}.npy"
    from softprompt.core.pretraining.scratch import CONFIGS

    dim = CONFIGS[spec["config"]]["hidden_dim"]
    rng = np.random.default_rng(0)
    np.save(prompt_path, rng.uniform(-0.5, 0.5, (p.prompt_length, dim)).astype(np.float32))
    hf_dir = None
    if ctx.hf:
        hf_dir = str(ctx.cache / f"hf-{spec['config']}-{spec['style']}-{spec['vocabulary_size']}")
        if ctx.setup(HF, "checkpoint", "hf.checkpoint", errors, "checkpoint", model=spec,
                     out=hf_dir) is None:
            hf_dir = None
        ctx.drop("checkpoint")
    source = {"hf_dir": hf_dir} if hf_dir else {"model": spec}
    common = dict(batch=p.decode_batch, input_length=p.decode_input_length,
                  prompt=str(prompt_path))
    workers = {}
    for b in ctx.backends:
        if ctx.setup(b, "decode", "keras.decode", errors, **source, **common) is not None:
            workers[b] = ctx.pool.worker(b)
    if hf_dir and ctx.setup(HF, "decode", "hf.generate", errors, "peft generate",
                            hf_dir=hf_dir, **common) is not None:
        workers["peft generate"] = ctx.pool.worker(HF)
    by_length = {}
    for n in p.decode_lengths:
        contenders = []
        for label, w in workers.items():
            if label == "peft generate":
                contenders.append(Contender(f"peft generate@{n}", w, "decode", f"generate:{n}"))
            else:
                contenders += [Contender(f"{label} cached@{n}", w, "decode", f"cached:{n}"),
                               Contender(f"{label} uncached@{n}", w, "decode", f"uncached:{n}")]
        ctx.log(f"  {n} tokens: timing {len(contenders)} contenders x {p.decode_rounds} rounds")
        m = interleave(contenders, p.decode_rounds, p.warmup, ctx.log)
        hf_tokens = m.get(f"peft generate@{n}")
        hf_tokens = None if hf_tokens is None else hf_tokens.extra.get("tokens")
        rows = {}
        for b in ctx.backends:
            cached, uncached = _median(m, f"{b} cached@{n}"), _median(m, f"{b} uncached@{n}")
            if cached is None:
                continue
            tokens = m[f"{b} cached@{n}"].extra.get("tokens")
            rows[b] = {"cached_s": cached, "uncached_s": uncached,
                       "cached_speedup": _paired(m, f"{b} uncached@{n}", f"{b} cached@{n}"),
                       "vs_peft_generate": _paired(m, f"peft generate@{n}", f"{b} cached@{n}"),
                       "same_tokens_as_uncached": _same(tokens, m[f"{b} uncached@{n}"].extra
                                                        .get("tokens")),
                       "same_tokens_as_peft": _same(tokens, hf_tokens)}
        if hf_tokens is not None:
            rows["peft generate"] = {"cached_s": _median(m, f"peft generate@{n}")}
        by_length[n] = {"rows": rows, "measurements": {k: v.to_dict() for k, v in m.items()}}
    ctx.drop("decode")
    return {"model": spec, "same_weights_as_peft": bool(hf_dir), "batch": p.decode_batch,
            "input_length": p.decode_input_length, "lengths": by_length, "errors": errors}


def _same(a, b):
    """Fraction of rows decoded identically (up to the shorter of the two), or None."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a), np.asarray(b)
    n = min(a.shape[1], b.shape[1])
    return float(np.mean(np.all(a[:, :n] == b[:, :n], axis=1)))


SUITES = {
    "train": train_step,
    "varlen": variable_length,
    "rank": rank_vs_generate,
    "serving": serving,
    "decode": decoding,
}
