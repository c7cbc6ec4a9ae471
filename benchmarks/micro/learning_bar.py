"""How prompt tuning learns the built-in demo task, measured in one run (docs/embedded-model.md).

On the built-in task ``animal_food`` over the embedded model ``softprompt_tiny``
(dev accuracy, exact match of the greedy output, 200 examples):

1. baselines: no prompt (greedy decoding, and rank classification over the 6
   labels, whose chance level is 16.7 %) and the text instruction;
2. prompt tuning vs the instruction: the demo's setting (class-label init,
   P=20, ``--steps``) for ``--tune-seeds`` seeds, as a ratio to the
   instruction's score;
3. initializers (P=20, ``--init-steps`` steps, dev evaluated at step 0 and
   every ``--eval-every`` steps, ``--seeds`` seeds each): the mean curve,
   the steps until the dev accuracy first reaches each of ``--thresholds``
   (default: 50, 90 and the instruction's score), the area under the curve
   (the mean accuracy over the evaluations), the prompt's RMS before training
   and how far training moved it relative to that. ``--inits`` adds two
   diagnostic initializations that are not the paper's, to separate the
   *scale* of a prompt from its *content*: ``class-labels/rms-uniform``
   (the class-label prompt rescaled to the RMS of a U[-0.5, 0.5] prompt) and
   ``uniform/rms-vocab`` (a uniform prompt rescaled to the RMS of the
   vocabulary embeddings);
4. prompt length 1, 5, 20, 100 (``--length-init``, by default class labels as in
   the paper's ablations: a prompt shorter than the 6 labels starts from the
   first P of them; ``--steps`` steps, ``--length-seeds`` seeds): the best dev
   accuracy of each, and its mean curve.

With ``--answers`` the initializer runs also record *what* the model answers
at each evaluation up to step ``--answers-until`` (`answer_kinds`: the right
food, another food of the menu, or no food of the menu), decoding the dev split once more per saved
checkpoint.

    KERAS_BACKEND=tensorflow python -m benchmarks.micro.learning_bar    # ~13 min on 1 core
    python -m benchmarks.micro.learning_bar --tune-seeds 0 --lengths "" \
        --init-steps 30 --seeds 3 --inits class-labels,sampled-vocab,uniform --answers
    python -m benchmarks.micro.learning_bar --seeds 2 --lengths 1,20 --tune-seeds 1  # quicker

Prints tables and writes ``benchmarks/results/learning_bar.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The paper's initializers, then the two scale diagnostics (see the module docs).
PAPER_INITS = ("class-labels", "uniform", "sampled-vocab")
DIAGNOSTIC_INITS = ("class-labels/rms-uniform", "uniform/rms-vocab")


def _options(out: Path, **overrides) -> dict:
    from softprompt.core import demo

    return demo.configure({"out": str(out), **overrides}, {"out", *overrides})


def initial_prompt(init: str, seed: int, prompt_length: int):
    """The starting prompt ``(P, d)`` of `init` (paper inits and the diagnostics) and its RMS."""
    import numpy as np

    from softprompt.core import demo
    from softprompt.core.model.init import initial_prompt as paper_init
    from softprompt.core.model.prompted_t5 import PromptedT5

    model = PromptedT5.from_preset(demo.PRESET, prompt_length=1, init="zeros")
    emb = model.embedding_matrix()
    base, _, scale = init.partition("/")
    prompt = paper_init(base, emb, model.tokenizer, length=prompt_length, seed=seed,
                        labels=demo.TASK_ARGS["labels"])[0]
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))  # noqa: E731
    if scale == "rms-uniform":
        prompt = prompt * (0.5 / np.sqrt(3.0)) / rms(prompt)   # RMS of U[-0.5, 0.5]
    elif scale == "rms-vocab":
        prompt = prompt * rms(emb) / rms(prompt)
    elif scale:
        raise ValueError(f"unknown diagnostic scale {scale!r}")
    return prompt.astype("float32"), rms(prompt)


ANSWER_KINDS = ("target", "other_label", "not_label")


def answer_kinds(targets, outputs, labels) -> dict:
    """What the greedy `outputs` are, in % of the examples (the demo's dev split).

    ``target``: the right food; ``other_label``: another of the task's labels (a
    food on the menu the animal does not eat); ``not_label``: anything else (the
    frozen model continuing the sentence, or a food off the menu).
    """
    labels = set(labels)
    counts = dict.fromkeys(ANSWER_KINDS, 0)
    for target, out in zip(targets, outputs):
        out = out.strip()
        kind = "target" if out == target else "other_label" if out in labels else "not_label"
        counts[kind] += 1
    return {k: round(100 * v / max(len(outputs), 1), 1) for k, v in counts.items()}


def _decode_dev(model, prompt, dev, answers: bool):
    """Dev accuracy of `prompt` (greedy decoding) and, with `answers`, its `answer_kinds`."""
    from softprompt.core import demo
    from softprompt.core.inference.evaluate import evaluate

    model.load_prompt(prompt)
    task = demo.task()
    metrics, texts = evaluate(model, task, dev, "decode", batch_size=100, max_input_length=64)
    kinds = None
    if answers:
        kinds = answer_kinds([task.format(ex)[1] for ex in dev], texts, task.labels)
    return float(metrics[demo.METRIC]), kinds


def _run(out: Path, init: str, seed: int, prompt_length: int, steps: int, eval_every: int,
         step0: bool = False, answers_until: int | None = None) -> dict:
    """One prompt-tuning run of the demo; returns its dev curve, best score and movement.

    With `answers_until`, also the `answer_kinds` of the start prompt and of every
    checkpoint up to that step (``"answers"``: ``[(step, kinds), ...]``).
    """
    import numpy as np

    from softprompt.core import demo
    from softprompt.core.io.prompt_files import load_prompt, save_prompt
    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.core.training.train import TrainConfig, train

    out.mkdir(parents=True, exist_ok=True)
    start, rms = initial_prompt(init, seed, prompt_length)
    init_file = out.parent / f"{out.name}-init.npy"
    save_prompt(init_file, start)
    curve, answers = [], []
    if step0 or answers_until is not None:
        model = PromptedT5.from_preset(demo.PRESET, prompt_length=prompt_length, init="zeros")
        dev = demo.task().read(demo.DATA, "validation")
        score, kinds = _decode_dev(model, start, dev, answers_until is not None)
        if step0:
            curve.append((0, score))
        if kinds is not None:
            answers.append((0, kinds))
    options = _options(out, init="file", init_file=str(init_file), prompt_length=prompt_length,
                       steps=steps, eval_every=eval_every, seed=seed)
    t0 = time.perf_counter()
    result = train(TrainConfig.from_dict(options), progress=False, echo=lambda s: None)
    seconds = time.perf_counter() - t0
    curve += [(r["step"], r[demo.METRIC]) for r in map(json.loads, (out / "metrics.jsonl")
                                                        .read_text().splitlines()) if r]
    saved = sorted((out / "checkpoints").glob("step-*.npy"),
                   key=lambda p: int(p.stem.split("-")[1]))
    for path in saved:
        step = int(path.stem.split("-")[1])
        if answers_until is not None and step <= answers_until:
            answers.append((step, _decode_dev(model, load_prompt(path)[0], dev, True)[1]))
    final, _ = load_prompt(saved[-1])
    moved = float(np.sqrt(np.mean(np.square(final - start))))
    return {"init": init, "seed": seed, "prompt_length": prompt_length, "best": result.best_score,
            "best_step": result.best_step, "curve": curve, "seconds": round(seconds, 1),
            "rms_start": round(rms, 4), "rms_moved": round(moved, 4),
            "moved_over_start": round(moved / rms, 3), "answers": answers}


def steps_to(curve, target: float):
    """The first evaluated step whose score reaches `target` (None: never)."""
    for step, score in curve:
        if score >= target:
            return step
    return None


def area(curve) -> float:
    """The mean dev accuracy over the evaluations (the area under the curve, normalized)."""
    return sum(score for _, score in curve) / max(len(curve), 1)


def _mean(values) -> float:
    return sum(values) / max(len(values), 1)


def summarize(runs: list[dict], thresholds, never: int, key: str = "init") -> dict:
    """Per `key` (initializer, or prompt length): mean curve, steps to each threshold
    (never = `never`), area, movement."""
    out = {}
    for init in dict.fromkeys(r[key] for r in runs):
        mine = [r for r in runs if r[key] == init]
        steps = [s for s, _ in mine[0]["curve"]]
        curve = [(s, round(_mean([dict(r["curve"])[s] for r in mine]), 2)) for s in steps]
        reach = {}
        for t in thresholds:
            per_seed = [steps_to(r["curve"], t) for r in mine]
            reach[str(t)] = {"per_seed": per_seed,
                             "mean": _mean([never if s is None else s for s in per_seed]),
                             "never": sum(s is None for s in per_seed)}
        answers = {}
        for step in [st for st, _ in mine[0].get("answers", [])]:
            per_seed = [dict(r["answers"])[step] for r in mine]
            answers[step] = {k: round(_mean([a[k] for a in per_seed]), 1) for k in ANSWER_KINDS}
        out[str(init)] = {"seeds": len(mine), "mean_curve": curve, "mean_answers": answers,
                     "area": round(_mean([area(r["curve"]) for r in mine]), 2),
                     "area_per_seed": [round(area(r["curve"]), 2) for r in mine],
                     "best": [r["best"] for r in mine],
                     "steps_to": reach,
                     "rms_start": round(_mean([r["rms_start"] for r in mine]), 3),
                     "moved_over_start": round(_mean([r["moved_over_start"] for r in mine]), 3)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200,
                        help="Steps of the tuning-vs-instruction and prompt-length runs.")
    parser.add_argument("--tune-seeds", type=int, default=3)
    parser.add_argument("--init-steps", type=int, default=40,
                        help="Steps of each initializer run.")
    parser.add_argument("--eval-every", type=int, default=2,
                        help="Evaluation interval of the initializer runs.")
    parser.add_argument("--seeds", type=int, default=5, help="Seeds per initializer.")
    parser.add_argument("--inits", default=",".join(PAPER_INITS + DIAGNOSTIC_INITS))
    parser.add_argument("--thresholds", default=None,
                        help="Comma-separated dev accuracies (default: 50,90,<instruction>).")
    parser.add_argument("--answers", action="store_true",
                        help="Also record what the model answers (see `answer_kinds`).")
    parser.add_argument("--answers-until", type=int, default=30,
                        help="With --answers: the last step whose answers are recorded.")
    parser.add_argument("--lengths", default="1,5,20,100")
    parser.add_argument("--length-seeds", type=int, default=3)
    parser.add_argument("--length-eval-every", type=int, default=5,
                        help="Evaluation interval of the prompt-length runs.")
    parser.add_argument("--length-init", default="class-labels",
                        help="Initializer of the prompt-length runs (the paper's default).")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/learning_bar.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from softprompt import backends
    from softprompt.core import demo
    from softprompt.core.io.atomic import atomic_write
    from softprompt.core.model.prompted_t5 import PromptedT5

    t_all = time.perf_counter()
    model = PromptedT5.from_preset(demo.PRESET, prompt_length=1, init="zeros")
    dev = demo.task().read(demo.DATA, "validation")
    base = demo.baselines(model, dev)
    thresholds = ([float(x) for x in args.thresholds.split(",")] if args.thresholds
                  else [50.0, 90.0, base["instruction"]])
    report: dict = {"backend": backends.name(), "baselines": base,
                    "chance": 100 / len(demo.TASK_ARGS["labels"]),
                    "args": {k: v for k, v in vars(args).items() if k != "output"}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tune = [_run(tmp / f"tune{s}", "class-labels", s, 20, args.steps, 50)
                for s in range(args.tune_seeds)]
        inits = [_run(tmp / f"{init.replace('/', '_')}-{s}", init, s, 20, args.init_steps,
                      args.eval_every, step0=True,
                      answers_until=args.answers_until if args.answers else None)
                 for init in args.inits.split(",") if init for s in range(args.seeds)]
        lengths = [_run(tmp / f"len{n}-{s}", args.length_init, s, n, args.steps,
                        args.length_eval_every, step0=True)
                   for n in [int(x) for x in args.lengths.split(",") if x]
                   for s in range(args.length_seeds)]
    best = [r["best"] for r in tune]
    report["tuning"] = {"runs": tune, "best": best, "mean_best": _mean(best),
                        "over_instruction": round(_mean(best) / max(base["instruction"], 1e-9), 3)}
    report["init"] = {"runs": inits, "thresholds": thresholds,
                      "summary": summarize(inits, thresholds, args.init_steps)}
    report["lengths"] = {"runs": lengths, "thresholds": thresholds,
                         "summary": summarize(lengths, thresholds, args.steps,
                                              key="prompt_length")}
    report["seconds"] = round(time.perf_counter() - t_all, 1)

    print(f"backend {report['backend']}, dev accuracy % (chance {report['chance']:.1f})")
    print(f"  no prompt, greedy decoding     {base['no_prompt']:6.1f}")
    print(f"  no prompt, rank over labels    {base['no_prompt_rank']:6.1f}")
    print(f"  instruction                    {base['instruction']:6.1f}   "
          f"\"{demo.INSTRUCTION}\"")
    t = report["tuning"]
    print(f"prompt tuning (class-labels, P=20, {args.steps} steps), best per seed {best}: mean "
          f"{t['mean_best']:.1f} = {t['over_instruction']:.3f} x instruction")
    print(f"initializers (P=20, {args.init_steps} steps, eval every {args.eval_every}, "
          f"{args.seeds} seeds; steps to reach a dev accuracy, mean, never = "
          f"{args.init_steps}):")
    header = "  ".join(f">={x:<5g}" for x in thresholds)
    print(f"  {'init':26s} {header}  area  rms   moved/rms")
    for init, s in report["init"]["summary"].items():
        cells = "  ".join(f"{s['steps_to'][str(x)]['mean']:6.1f}" for x in thresholds)
        print(f"  {init:26s} {cells}  {s['area']:5.1f} {s['rms_start']:5.2f} "
              f"{s['moved_over_start']:6.2f}")
    if args.answers:
        print(f"what the model answers (% of dev, greedy, mean over seeds), at steps "
              f"0-{args.answers_until}:")
        for init, s in report["init"]["summary"].items():
            steps = sorted(s["mean_answers"])
            print(f"  {init:26s} step       " + " ".join(f"{st:5d}" for st in steps))
            for kind in ANSWER_KINDS:
                print(f"  {'':26s} {kind:10s} " + " ".join(
                    f"{s['mean_answers'][st][kind]:5.1f}" for st in steps))
    print(f"prompt length ({args.length_init}, {args.steps} steps, eval every "
          f"{args.length_eval_every}, {args.length_seeds} seeds; steps to reach, mean, never = "
          f"{args.steps}):")
    print(f"  {'P':6s} {header}  area  best per seed")
    for n, s in report["lengths"]["summary"].items():
        cells = "  ".join(f"{s['steps_to'][str(x)]['mean']:6.1f}" for x in thresholds)
        print(f"  {n:6s} {cells}  {s['area']:5.1f} {s['best']}")
    print(f"total {report['seconds']:.0f} s")
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
