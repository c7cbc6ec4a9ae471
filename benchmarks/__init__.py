"""softprompt's benchmark suite: ratios measured inside one run, against PEFT and the machine.

Run it with ``python -m benchmarks.run`` (short), ``python -m benchmarks.run --full`` (the
issue's sizes), ``nox -s bench`` or ``softprompt bench``. Each keras backend runs in its own
worker process (keras fixes its backend per process), PEFT/transformers in another, and the
coordinator alternates single repeats of the contenders of each comparison across those
processes, so that a noisy, shared machine slows every contender alike; ratios are of medians.

Modules:
    run        the entry point: arguments, the suites, JSON + markdown output.
    profiles   the sizes of the toy, short and full runs.
    pool       worker processes and the interleaved measurement.
    worker     the worker's loop (``python -m benchmarks.worker``).
    cases      what a worker can set up and time (keras, PEFT/transformers, matmul peak).
    workload   synthetic data: SuperGLUE-like lengths, a word tokenizer, label tasks.
    flops      the honest FLOP count of a prompt-tuning step.
    report     tables, targets and the verdicts.
"""
