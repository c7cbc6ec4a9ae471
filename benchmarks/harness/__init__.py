"""The machinery every comparison shares: worker processes, interleaved timing, workloads.

Modules:
    pool       worker processes and the interleaved measurement (`interleave`).
    worker     a worker's loop (``python -m benchmarks.harness.worker NAME``).
    context    what a comparison is given, and medians / paired ratios of its repeats.
    workload   synthetic data: SuperGLUE-like lengths, a word tokenizer, label tasks.
    flops      the FLOP count of a prompt-tuning step.
    timing     best-of-N wall time, for the micro-benchmarks.
    report     number formats and the header of a results table.
"""
