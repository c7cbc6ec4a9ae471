"""JAX greedy decoding with and without XLA's YNNPACK fusions, per part of the decode.

A greedy decode is two compiled functions (`softprompt.core.inference.decoding`): the
encoder with the first step, and the loop of cached steps, compiled with ``few_rows``
(`JaxAdapter.compile_function`: on a CPU, XLA's YNNPACK fusions off). This times three
ways of compiling them, in one process on the decode comparison's model and batch, round
by round interleaved:

- ``as shipped``: the encoder with YNNPACK fusions, the loop without;
- ``fusions everywhere``: both with them (XLA's default);
- ``fusions nowhere``: both without them.

From decodes of 8 and 32 tokens it derives the time per token (the loop) and the time of
the encoder with the first step, and checks that the three give the same tokens.

Run (a couple of minutes; from a checkout with ``.[bench]``)::

    python -m benchmarks.micro.decode_fusions
    python -m benchmarks.micro.decode_fusions --rounds 7 --core 1

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

VARIANTS = ("as shipped", "fusions everywhere", "fusions nowhere")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="short", help="benchmark profile (shapes)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lengths", default="8,32", help="two decode lengths, short,long")
    parser.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    args = parser.parse_args(argv)
    short, long = (int(n) for n in args.lengths.split(","))
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("SOFTPROMPT_ONLY_BACKEND", "1")
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    import softprompt  # noqa: F401  # isort: skip - first: it applies SOFTPROMPT_ONLY_BACKEND
    import numpy as np

    from benchmarks.cases.keras_cases import prompted
    from benchmarks.harness import workload
    from benchmarks.profiles import PROFILES
    from benchmarks.run import machine_info
    from softprompt.backends import jax_adapter
    from softprompt.core.inference.decoding import greedy_tokens
    from softprompt.core.text.batching import pad

    profile = PROFILES[args.profile]
    shipped_options = jax_adapter.few_rows_compiler_options
    shipped_compile = jax_adapter.JaxAdapter.compile_function

    def every_function_few_rows(self, fn, variables, few_rows=False):
        return shipped_compile(self, fn, variables, few_rows=True)

    settings = {  # (the options few_rows gives, the compile_function used)
        "as shipped": (shipped_options, shipped_compile),
        "fusions everywhere": (lambda: None, shipped_compile),
        "fusions nowhere": (shipped_options, every_function_few_rows),
    }
    models = {name: prompted(profile.decode_model.to_dict(), profile.prompt_length, seed=0)
              for name in VARIANTS}
    vocab = models[VARIANTS[0]].backbone.vocabulary_size
    ids, mask = pad(workload.token_rows([profile.decode_input_length] * profile.decode_batch,
                                        vocab, 0))

    def decode(name, length):
        options, compile_function = settings[name]
        jax_adapter.few_rows_compiler_options = options  # read when a function compiles
        jax_adapter.JaxAdapter.compile_function = compile_function
        try:
            started = time.perf_counter()
            tokens = np.asarray(greedy_tokens(models[name], ids, mask, max_length=length))
            return time.perf_counter() - started, tokens
        finally:
            jax_adapter.few_rows_compiler_options = shipped_options
            jax_adapter.JaxAdapter.compile_function = shipped_compile

    tokens = {}
    for name in VARIANTS:
        for length in (short, long):
            decode(name, length)  # compiles
            tokens[name, length] = decode(name, length)[1]
    same = all((tokens[name, n] == tokens[VARIANTS[0], n]).all()
               for name in VARIANTS for n in (short, long))
    times = {(name, n): [] for name in VARIANTS for n in (short, long)}
    for round_ in range(args.rounds):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for name in order:
            for length in (short, long):
                times[name, length].append(decode(name, length)[0])
    machine = machine_info()
    print(f"JAX greedy decoding, {profile.decode_batch} x {profile.decode_input_length} input "
          f"tokens + prompt {profile.prompt_length}, model {profile.decode_model.config}; "
          f"{machine['cpu']} ({machine['cpu_flags']}); best of {args.rounds} rounds; "
          f"same tokens in all three: {same}\n")
    print(f"| compiled | {short} tokens (ms) | {long} tokens (ms) | per token (ms) | "
          "encoder + first step (ms) |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        t_short, t_long = min(times[name, short]), min(times[name, long])
        per_token = (t_long - t_short) / (long - short)
        first = t_short - (short - 1) * per_token
        print(f"| {name} | {1000 * t_short:.1f} | {1000 * t_long:.1f} | "
              f"{1000 * per_token:.2f} | {1000 * first:.1f} |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
