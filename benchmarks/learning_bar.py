"""The learning bar of the built-in demo, measured in one run (see softprompt/data/README.md).

On the built-in task ``animal_color`` over the embedded model ``softprompt_tiny``:

1. dev accuracy with no prompt, with the text instruction, and after prompt tuning
   (the bar: tuning reaches >= 95 % of the instruction's score);
2. class-label vs uniform initialization (P=20): steps until the dev accuracy
   first reaches ``--target`` (default: the instruction's score), evaluated
   every ``--eval-every`` (5) steps, for ``--seeds`` (3) seeds;
3. prompt length 1, 5, 20, 100 (sampled-vocab init, ``--steps`` each): the
   best dev accuracy of each.

    KERAS_BACKEND=tensorflow python benchmarks/learning_bar.py     # ~4 min on 2 cores
    python benchmarks/learning_bar.py --steps 100 --lengths 1,20   # quicker

Prints a table and writes ``benchmarks/results/learning_bar.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(out: Path, **overrides) -> dict:
    """One prompt-tuning run of the demo; returns its dev curve and best score."""
    from softprompt.core import demo
    from softprompt.core.train import TrainConfig, train

    options = demo.configure({"out": str(out), **overrides}, {"out", *overrides})
    t0 = time.perf_counter()
    result = train(TrainConfig.from_dict(options), progress=False, echo=lambda s: None)
    seconds = time.perf_counter() - t0
    curve = [(r["step"], r[demo.METRIC]) for r in map(json.loads, (out / "metrics.jsonl")
                                                       .read_text().splitlines()) if r]
    return {"best": result.best_score, "best_step": result.best_step, "curve": curve,
            "seconds": round(seconds, 1)}


def steps_to(curve, target: float):
    """The first evaluated step whose score reaches `target` (None: never)."""
    for step, score in curve:
        if score >= target:
            return step
    return None


def _mean(values, never: int) -> float:
    return sum(never if v is None else v for v in values) / max(len(values), 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=5,
                        help="Evaluation interval of the init comparison.")
    parser.add_argument("--init-steps", type=int, default=60,
                        help="Steps of each init-comparison run.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lengths", default="1,5,20,100")
    parser.add_argument("--target", type=float, default=None,
                        help="Dev accuracy for the init comparison (default: the instruction's "
                             "score).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/learning_bar.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from softprompt import backends
    from softprompt.core import demo
    from softprompt.core.model import PromptedT5

    t_all = time.perf_counter()
    model = PromptedT5.from_preset(demo.PRESET, prompt_length=1, init="zeros")
    dev = demo.task().read(demo.DATA, "validation")
    base = demo.baselines(model, dev)
    target = args.target if args.target is not None else base["instruction"]
    report: dict = {"backend": backends.name(), "steps": args.steps, "baselines": base,
                    "target": target}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = {}
        runs["class-labels P=20"] = _run(tmp / "cl20", init="class-labels", prompt_length=20,
                                         steps=args.steps, eval_every=50, seed=args.seed)
        speed = {}
        for init in ("class-labels", "uniform"):
            speed[init] = []
            for seed in range(args.seeds):
                run = _run(tmp / f"{init}-{seed}", init=init, prompt_length=20,
                           steps=args.init_steps, eval_every=args.eval_every, seed=seed)
                speed[init].append(steps_to(run["curve"], target))
        for length in [int(x) for x in args.lengths.split(",") if x]:
            runs[f"sampled-vocab P={length}"] = _run(
                tmp / f"sv{length}", init="sampled-vocab", prompt_length=length,
                steps=args.steps, eval_every=50, seed=args.seed)
    report["runs"] = runs
    report["steps_to_target"] = speed
    tuned = runs["class-labels P=20"]["best"]
    report["bar"] = {
        "tuned_over_instruction": round(tuned / max(base["instruction"], 1e-9), 3),
        "tuning_reaches_95pct_of_instruction": tuned >= 0.95 * base["instruction"],
        "mean_steps_to_target": {k: _mean(v, args.init_steps) for k, v in speed.items()},
    }
    report["seconds"] = round(time.perf_counter() - t_all, 1)

    print(f"backend {report['backend']}, dev accuracy % "
          f"(chance {100 / len(demo.TASK_ARGS['labels']):.1f})")
    print(f"  no prompt     {base['no_prompt']:6.1f}")
    print(f"  instruction   {base['instruction']:6.1f}   \"{demo.INSTRUCTION}\"")
    for name, run in runs.items():
        print(f"  {name:20s} best {run['best']:6.1f} at step {run['best_step']:4d} of "
              f"{args.steps}   ({run['seconds']:.0f} s)")
    bar = report["bar"]
    print(f"prompt tuning / instruction = {bar['tuned_over_instruction']:.3f} "
          f"(bar >= 0.95: {'met' if bar['tuning_reaches_95pct_of_instruction'] else 'NOT met'})")
    print(f"steps to reach {target:.1f} (evaluated every {args.eval_every}; seeds "
          f"0..{args.seeds - 1}; never = {args.init_steps}):")
    for init, values in speed.items():
        print(f"  {init:14s} {values}  mean {bar['mean_steps_to_target'][init]:.1f}")
    print(f"total {report['seconds']:.0f} s")
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
