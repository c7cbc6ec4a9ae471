"""Where a train step's time goes: torch's profiler over keras-on-torch and PEFT, same shapes.

Both run the train-step comparison's step (T5-small shape, batch 8, 128 input tokens +
prompt 100, 8 targets) on one thread, and the script prints the operators that take the
most time in each. In float32 both spend three quarters of the step in the same `aten::mm`
(the same BLAS on the same matrices), so no torch-based implementation of the same FLOPs
can be much faster than the other.

``--ensemble`` profiles the serving comparison's ensemble instead: rank classification of
16 inputs under 5 prompts in one pass (80 rows) vs 5 passes of 16 rows, on keras' torch
backend.

``--dtype bfloat16`` profiles both train steps with the frozen model in bfloat16 (ours:
`PromptedT5` over a bfloat16 backbone; PEFT: the model in bfloat16, its prompt float32).

Run: ``python -m benchmarks.micro.profile_step [--ensemble] [--dtype D] [--threads N] [--rows 12]``
(a minute).
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--ensemble", action="store_true")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "torch"
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    steps = _ensemble_calls() if args.ensemble else _train_steps(args.dtype)
    for name, step in steps.items():
        step()  # warm
        started = time.perf_counter()
        step()
        seconds = time.perf_counter() - started
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        mm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::bmm",
                                                                     "aten::addmm"))
        print(f"\n{name}: step {seconds:.2f} s; matrix products {100 * mm / total:.0f}% of "
              f"{total / 1e6:.2f} CPU-s")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows,
                           max_name_column_width=48))
    return 0


def _train_steps(dtype: str = "float32") -> dict:
    from benchmarks.cases.hf_cases import PeftTrain
    from benchmarks.cases.keras_cases import prompted, train_batch
    from benchmarks.profiles import PROFILES

    p = PROFILES["short"]
    spec = p.train_model.to_dict()
    ours = prompted(spec, p.prompt_length, dtype=dtype)
    from softprompt.core.training.adafactor import Adafactor

    ours.compile(optimizer=Adafactor(learning_rate=0.3))
    x, y, w = train_batch(p.batch, p.input_length, p.target_length, spec["vocabulary_size"])
    peft = PeftTrain(spec, p.batch, p.input_length, p.prompt_length, p.target_length,
                     dtype=dtype)
    peft.setup()
    return {"keras (torch backend)": lambda: ours.train_on_batch(x, y, sample_weight=w),
            "PEFT": peft.time_step}


def _ensemble_calls() -> dict:
    from benchmarks.cases.keras_cases import Serving
    from benchmarks.profiles import PROFILES

    p = PROFILES["short"]
    case = Serving(p.serve_model.to_dict(), p.serve_batch, p.serve_input_length,
                   p.prompt_length, p.target_length, ["True", "False"])
    case.setup()
    inputs = p.serve_batch
    return {f"ensemble, one pass of {inputs} x 5 rows": lambda: case.time_ensemble_one_pass(inputs),
            f"ensemble, 5 passes of {inputs} rows": lambda: case.time_ensemble_passes(inputs)}


if __name__ == "__main__":
    raise SystemExit(main())
