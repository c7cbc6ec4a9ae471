"""softprompt's benchmark suite: ratios measured inside one run, against PEFT and the machine.

Run it with ``python -m benchmarks.run`` (short), ``python -m benchmarks.run --full``
(T5-small sizes everywhere), ``nox -s bench`` or ``softprompt bench``. Each keras backend runs
in its own worker process (keras fixes its backend per process), PEFT/transformers in another,
and the coordinator alternates single repeats of the contenders of each comparison across
those processes, so that a noisy, shared machine slows every contender alike; ratios are
medians of per-round ratios.

Layout:
    run          the entry point: options, the run, ``results.json`` + ``results.md``.
    profiles     the sizes of the toy, short and full runs.
    comparisons  one module per comparison: ``measure(ctx)`` and ``table(result)``.
    cases        what a worker can set up and time (keras, PEFT/transformers, matmul peak).
    harness      worker processes, interleaved timing, workloads, FLOPs, number formats.
    micro        focused investigations, each run on its own.
    reference    one kept result per comparison and machine.
"""
