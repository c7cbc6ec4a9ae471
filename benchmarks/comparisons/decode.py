"""Greedy decoding with the key/value cache against without it, and against PEFT's `generate`.

Both sides decode from the same weights (a random transformers T5 saved with
`save_pretrained` and converted on ours) and the tokens are compared; each side also
reports how many steps it ran (both stop once every row has produced ``</s>``), so a
ratio never compares decodes of different lengths unnoticed.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness.context import Context, median, paired
from benchmarks.harness.pool import HF, Contender, interleave
from benchmarks.harness.report import number, percent, times


def measure(ctx: Context) -> dict:
    """Set up, interleave and time every contender; the rows of `table`, and the raw repeats."""
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
        hf = m.get(f"peft generate@{n}")
        hf_tokens = None if hf is None else hf.extra.get("tokens")
        hf_steps = None if hf is None else hf.extra.get("steps")
        rows = {}
        for b in ctx.backends:
            cached, uncached = median(m, f"{b} cached@{n}"), median(m, f"{b} uncached@{n}")
            if cached is None:
                continue
            tokens = m[f"{b} cached@{n}"].extra.get("tokens")
            rows[b] = {"cached_s": cached, "uncached_s": uncached,
                       "cached_speedup": paired(m, f"{b} uncached@{n}", f"{b} cached@{n}"),
                       "vs_peft_generate": paired(m, f"peft generate@{n}", f"{b} cached@{n}"),
                       "same_tokens_as_uncached": _same(tokens, m[f"{b} uncached@{n}"].extra
                                                        .get("tokens")),
                       "same_tokens_as_peft": _same(tokens, hf_tokens),
                       "steps": m[f"{b} cached@{n}"].extra.get("steps")}
        if hf_tokens is not None:
            rows["peft generate"] = {"cached_s": median(m, f"peft generate@{n}"),
                                     "steps": hf_steps}
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


def table(decode: dict) -> list[str]:
    """The markdown lines of one result of `measure`."""
    lines = [f"**Greedy decoding** ({decode['model']['config']}, batch "
             f"{decode['batch']} × {decode['input_length']} tokens"
             f"{', same weights as PEFT' if decode['same_weights_as_peft'] else ''})", "",
             "| Tokens | Backend | steps run | cached (s) | uncached (s) | cache speedup | "
             "vs PEFT generate | same tokens: uncached / PEFT |",
             "|---|---|---|---|---|---|---|---|"]
    for n, data in sorted(decode["lengths"].items(), key=lambda kv: int(kv[0])):
        for b, r in data["rows"].items():
            steps = "" if r.get("steps") is None else r["steps"]
            if b == "peft generate":
                lines.append(f"| {n} | PEFT generate | {steps} | {number(r['cached_s'])} "
                             "| | | | |")
                continue
            lines.append(f"| {n} | {b} | {steps} | {number(r['cached_s'])} | "
                         f"{number(r['uncached_s'])} | {times(r['cached_speedup'])} | "
                         f"{times(r['vs_peft_generate'])} | "
                         f"{percent(r['same_tokens_as_uncached'])} / "
                         f"{percent(r['same_tokens_as_peft'])} |")
    return lines
