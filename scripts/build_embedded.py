"""Build the embedded model family and the built-in tasks, from nothing.

``softprompt_tiny`` (shipped) was produced by, with seed 0 on the JAX backend
(bit for bit only with the code that built it, see ``docs/embedded-model.md``)::

    python scripts/build_embedded.py

and the larger members are built into softprompt's cache
(``~/.cache/softprompt/presets``, `softprompt.core.interop.cache.cache_dir`), where
``--preset softprompt_small`` / ``softprompt_base`` then find them::

    python scripts/build_embedded.py --size small
    python scripts/build_embedded.py --size base

Each run

1. writes the built-in tasks ``softprompt/data/animal_food/`` (the demo) and
   ``softprompt/data/color_food/`` (the comparison task) (`softprompt.data.synthetic`);
2. writes the pretraining mixture (``lm.txt``: prefix-LM text, ``tasks.jsonl``:
   instruction tasks) into ``--work`` (`softprompt.data.synthetic.pretraining_files`);
3. runs ``softprompt adapt --from-config <ARCH> ...`` (printed before it runs;
   the arguments are `softprompt.core.pretraining.family.adapt_arguments`) to
   pretrain a T5 of that size from random weights, with a vocabulary trained on
   that text, and writes the preset to ``--out``;
4. checks the result: accuracy of each pretraining skill on fresh sentences, and
   the demo task's dev accuracy with no prompt and with its instruction.

``--steps 20 --out /tmp/x`` is a quick smoke run (the tests do that).

The builds run on CPU; ``docs/embedded-model.md`` (tiny) and
``docs/comparison.md`` (the family) give the measured times and scores.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 0


def adapt_command(size: str, work: Path, out: Path, steps: int | None, seed: int) -> list[str]:
    from softprompt.core.pretraining.family import adapt_arguments

    return [sys.executable, "-m", "softprompt.cli.main", "adapt",
            *adapt_arguments(size, work, out, steps=steps, seed=seed)]


def default_out(size: str) -> Path:
    from softprompt.core.interop.cache import cache_dir
    from softprompt.core.pretraining.family import preset_name

    if size == "tiny":
        return ROOT / "softprompt/presets/softprompt_tiny"
    return cache_dir() / "presets" / preset_name(size)


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
    from softprompt.core.pretraining.family import SIZES
    from softprompt.data import synthetic

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="tiny",
                        help="Which member of the family (tiny is the shipped model).")
    parser.add_argument("--steps", type=int, default=None,
                        help="Pretraining steps (default: the size's recipe).")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default=None,
                        help="The preset to write (default: the package's softprompt_tiny, "
                             "or softprompt_<size> in the cache).")
    parser.add_argument("--work", default="build/embedded",
                        help="Scratch directory: pretraining text, adapt's run directory.")
    parser.add_argument("--lm-lines", type=int, default=synthetic.LM_LINES)
    parser.add_argument("--task-pairs", type=int, default=synthetic.TASK_PAIRS)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--no-demo-data", action="store_true",
                        help="Leave the built-in tasks' files as they are.")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--resume", action="store_true", help="Resume an interrupted adapt run.")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    from softprompt.data import DATA_DIR

    work = Path(args.work)
    out = Path(args.out) if args.out else default_out(args.size)
    if not args.no_demo_data:
        synthetic.write_demo(DATA_DIR / synthetic.DEMO["name"], seed=args.seed)
        synthetic.write_color_food(DATA_DIR / synthetic.COLOR_FOOD["name"], seed=args.seed)
    synthetic.pretraining_files(work, args.lm_lines, args.task_pairs, seed=args.seed)
    command = adapt_command(args.size, work, out, args.steps, args.seed)
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
        check(str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
