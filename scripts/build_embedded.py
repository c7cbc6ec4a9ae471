"""Rebuild the embedded model ``softprompt_tiny`` and the built-in task, from nothing.

What produced the shipped files (seed 0, the JAX backend; bit for bit only with the code
that built them, see ``docs/embedded-model.md``)::

    python scripts/build_embedded.py

1. writes the built-in task ``softprompt/data/animal_food/{train,validation}.jsonl``
   (`softprompt.data.synthetic.write_demo`);
2. writes the pretraining mixture (``lm.txt``: prefix-LM text, ``tasks.jsonl``:
   instruction tasks) into ``--work`` (`softprompt.data.synthetic.pretraining_files`);
3. runs ``softprompt adapt --from-config <ARCH> ...`` (printed before it runs) to
   pretrain a T5 from random weights with a vocabulary trained on that text, and
   writes the preset to ``--out`` (default ``softprompt/presets/softprompt_tiny``);
4. checks the result: accuracy of each pretraining skill on fresh sentences, and
   the built-in task's dev accuracy with no prompt and with its instruction.

``--steps 20 --out /tmp/x`` is a quick smoke run (the tests do that).

The whole build runs on CPU; see ``docs/embedded-model.md`` for the measured
time and scores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The embedded model's architecture (T5 1.1 style: gated GELU, untied embeddings).
ARCH = {"hidden_dim": 128, "num_layers": 2, "num_heads": 4, "intermediate_dim": 256,
        "key_value_dim": 32}
SEED = 0
STEPS = 3000
LM_LINES = 20000
TASK_PAIRS = 40000


def adapt_command(work: Path, out: Path, steps: int, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "softprompt.cli.main", "adapt",
        "--from-config", json.dumps(ARCH, separators=(",", ":")),
        "--style", "t5.1.1", "--vocab-model", "bpe", "--vocab-size", "256",
        "--corpus", str(work / "lm.txt"), "--corpus", str(work / "tasks.jsonl"),
        "--steps", str(steps), "--batch-size", "64", "--optimizer", "adam", "--lr", "2e-3",
        "--warmup-steps", str(min(150, max(steps // 10, 1))),
        "--max-input-length", "64", "--max-target-length", "64",
        "--eval-every", str(min(500, steps)), "--seed", str(seed),
        "--out", str(out), "--workdir", str(work / "run"),
    ]


def check(preset: str, n: int = 96, seed: int = 1, echo=print) -> dict:
    """Accuracy (%) of every pretraining skill on fresh sentences, and the demo baselines."""
    from softprompt.core import demo
    from softprompt.core.inference.batched import generate
    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.data import synthetic

    model = PromptedT5.from_preset(preset, prompt_length=1, init="zeros")
    bare = model.without_prompt()
    rng = random.Random(f"check-{seed}")
    results = {}
    for skill, questions in list(synthetic.SKILLS.items()) + [
            (f"{k} (held-out phrasing)", v) for k, v in synthetic.HELD_OUT.items()]:
        name = skill.split(" ")[0]
        scenes = [synthetic.Scene.sample(rng) for _ in range(n)]
        pairs = [synthetic.skill_pair(name, rng.choice(questions), s,
                                      s.render(rng.randrange(len(synthetic.TEMPLATES))), rng)
                 for s in scenes]
        preds = generate(bare, [p[0] for p in pairs], max_length=4, batch_size=n,
                         max_input_length=64)
        gold = [p[1] for p in pairs]
        results[skill] = 100.0 * sum(p.strip() == g for p, g in zip(preds, gold)) / n
    dev = demo.task().read(demo.DATA, "validation")
    results.update({f"demo {k}": v for k, v in demo.baselines(model, dev).items()})
    for k, v in results.items():
        echo(f"  {k:40s} {v:6.1f}")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=str(ROOT / "softprompt/presets/softprompt_tiny"))
    parser.add_argument("--work", default="build/embedded",
                        help="Scratch directory: pretraining text, adapt's run directory.")
    parser.add_argument("--lm-lines", type=int, default=LM_LINES)
    parser.add_argument("--task-pairs", type=int, default=TASK_PAIRS)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--no-demo-data", action="store_true",
                        help="Leave the built-in task's files as they are.")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--resume", action="store_true", help="Resume an interrupted adapt run.")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    from softprompt.data import DATA_DIR, synthetic

    work = Path(args.work)
    if not args.no_demo_data:
        synthetic.write_demo(DATA_DIR / synthetic.DEMO["name"], seed=args.seed)
    synthetic.pretraining_files(work, args.lm_lines, args.task_pairs, seed=args.seed)
    command = adapt_command(work, Path(args.out), args.steps, args.seed)
    if args.resume:
        command.append("--resume")
    shown = " ".join(f"'{c}'" if c.startswith("{") else c for c in command[3:])
    print(f"$ KERAS_BACKEND={args.backend} softprompt {shown}", flush=True)
    t0 = time.perf_counter()
    code = subprocess.call(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if code:
        return code
    print(f"pretraining took {time.perf_counter() - t0:.0f} s", flush=True)
    if not args.no_check:
        print("check (decode accuracy %, fresh sentences):", flush=True)
        check(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
