"""Where does the drift of 5 free-running Adafactor steps come from? (Not a test.)

For cases drawn like the CI profile's (``TRAIN_PROMPT_KINDS``), prints per
case, grouped by model size and T5 style:

- ``step1..5``: the largest cross-backend difference of the prompt after each
  free-running step;
- ``lockstep``: the largest difference of one Adafactor step taken by every
  backend from the same prompt and optimizer state (worst of the 5 steps);
- ``same-point grad``: the gradient at one and the same prompt (each
  backend's step-2 prompt in turn) compared across backends, relative to
  its max;
- ``cross-point grad``: one backend's gradient at the two backends' step-2
  prompts (which differ by ``step2``), relative to its max;
- ``self``: how far one backend's 5-step result moves when its starting
  prompt is perturbed by 2**-20 relative (largest over backends).

Run: ``python tests/agreement/diagnose_adafactor.py [num_cases]`` from the
repository root (about a minute per 10 cases on 2 idle cores).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import given, settings  # noqa: E402

from agreement import strategies  # noqa: E402
from agreement.harness import Pool, max_abs, rel_to_max  # noqa: E402

STEPS = 5


def train(pool, case, steps, optimizer, state=None, return_state=False):
    return pool.run({"op": "train", "case": case, "steps": steps, "optimizer": optimizer,
                     "optimizer_state": state, "return_state": return_state})


def gradient(pool, case, prompt):
    out = train(pool, dict(case, prompt=prompt), 1, {"name": "sgd", "learning_rate": 1.0})
    return {b: o["before"] - o["prompts"][0] for b, o in out.items()}


def worst_pair(arrays, fn=max_abs):
    names = list(arrays)
    return max(fn(arrays[a], arrays[b]) for i, a in enumerate(names) for b in names[i + 1:])


def diagnose(pool, case):
    ada = {"name": "adafactor"}
    free = train(pool, case, STEPS, ada)
    steps = [worst_pair({b: o["prompts"][k] for b, o in free.items()}) for k in range(STEPS)]
    first = next(iter(free))
    prompt, state, lock = case["prompt"], None, 0.0
    for _ in range(STEPS):
        out = train(pool, dict(case, prompt=prompt), 1, ada, state, return_state=True)
        lock = max(lock, worst_pair({b: o["prompts"][0] for b, o in out.items()}))
        prompt, state = out[first]["prompts"][0], out[first]["optimizer_state"]
    step2 = {b: o["prompts"][1] for b, o in free.items()}
    grads = {b: gradient(pool, case, p) for b, p in step2.items()}
    same_point = max(worst_pair(g, rel_to_max) for g in grads.values())
    cross_point = max(worst_pair({b: grads[b][k] for b in grads}, rel_to_max)
                      for k in grads[first])
    rng = np.random.default_rng(case["values_seed"])
    sign = rng.choice(np.asarray([-1.0, 1.0], np.float32), case["prompt"].shape)
    perturbed = dict(case, prompt=(case["prompt"] * (1 + sign * 2.0**-20)).astype(np.float32))
    again = train(pool, perturbed, STEPS, ada)
    self_sens = max(max_abs(free[b]["prompts"][-1], again[b]["prompts"][-1]) for b in free)
    return steps, lock, same_point, cross_point, self_sens


def main(num_cases=40):
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        pool = Pool(log_dir=log_dir)
        try:
            @settings(max_examples=num_cases, derandomize=True, deadline=None, database=None)
            @given(case=strategies.cases(prompt_kinds=strategies.TRAIN_PROMPT_KINDS))
            def run(case):
                s = case["model"]
                key = f"{s['size']}/{s['style']}"
                rows.append((key, case["prompt_kind"]) + diagnose(pool, case))
                r = rows[-1]
                print(f"{key:14s} {r[1]:8s} steps " + " ".join(f"{x:.0e}" for x in r[2])
                      + f"  lockstep {r[3]:.1e}  same-point grad {r[4]:.1e}"
                      + f"  cross-point grad {r[5]:.1e}  self {r[6]:.1e}", flush=True)

            run()
        finally:
            pool.close()
    print("\nby model: cases, free-running > 1e-3, self-sensitivity > 1e-3, max free, max lockstep")
    for key in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == key]
        print(f"{key:14s} {len(sel):3d} {sum(r[2][-1] > 1e-3 for r in sel):3d} "
              f"{sum(r[6] > 1e-3 for r in sel):3d} {max(r[2][-1] for r in sel):.1e} "
              f"{max(r[3] for r in sel):.1e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
