"""Focused investigations, each run on its own (``python -m benchmarks.micro.NAME --help``).

    attention_core   T5's attention core in each backend, written four ways, forward + gradient
    jax_products     JAX's train step with the adapter's products vs autodiff's and plain ones
    bf16_units       which matrix kernels bfloat16 reaches per framework, its peak vs float32
    allocator        large outputs with glibc's default mmap policy vs freed memory kept
    profile_step     torch's profiler on our train step (or ensemble pass) beside PEFT's
    step_bound       the train step's matrix products alone, each timed on its own: how
                     fast any implementation could be, against PEFT's step
    learning_bar     how prompt tuning learns the built-in task: vs the instruction,
                     initializers, prompt lengths (the embedded model's documentation)

They print their tables (``learning_bar`` also writes ``benchmarks/results/``); the
reference outputs are in ``benchmarks/reference/``.
"""
