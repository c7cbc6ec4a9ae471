"""Ensembles: one batched pass over N prompts, majority vote with a log-likelihood tie-break."""

from __future__ import annotations

import numpy as np
import pytest

from softprompt import tasks
from softprompt.core.inference import ensemble as ens
from softprompt.core.inference import evaluate as ev
from softprompt.core.inference.batched import score
from softprompt.core.model.prompted_t5 import PromptedT5

LABELS = ["negative", "positive"]
WORDS = "good great bad terrible movie film story plot actor scene the cat".split()


def test_majority_and_mean_scores():
    assert ens.majority(["a", "b", "a"]) == ["a"]
    assert ens.majority(["b", "a"]) == ["b", "a"]  # tied, in order of appearance
    scores = [np.array([[-1.0, -3.0], [-4.0, -1.5]])]  # prompt 0 says 0, prompt 1 says 1
    assert ens.combine_scores(scores, [["x", "y"]]) == ["y"]  # means -2.5 vs -2.25


@pytest.fixture(scope="module")
def setup(preset_v11):
    model = PromptedT5.from_preset(preset_v11, prompt_length=3, init="uniform", seed=0)
    rng = np.random.default_rng(1)
    prompts = [rng.uniform(-0.5, 0.5, (3, 16)).astype(np.float32) for _ in range(3)]
    task = tasks.get("jsonl", template="review: {text}", target_field="label", labels=LABELS)
    examples = [{"text": " ".join(rng.choice(WORDS, 2)), "label": LABELS[i % 2]}
                for i in range(6)]
    return model, prompts, task, examples


def test_each_member_scores_as_it_does_alone(setup):
    model, prompts, task, examples = setup
    result = ens.ensemble(model, prompts, task, examples, "rank", batch_size=2)
    for p, metrics in zip(prompts, result.prompt_metrics):
        alone, _ = ev.evaluate(model.with_prompts([p]), task, examples, "rank", batch_size=6)
        assert metrics == alone
    table = result.table()
    assert list(table)[-3:] == ["average", "best", "ensemble"]
    assert table["average"] == pytest.approx(np.mean(result.scores))
    assert table["best"] == max(result.scores)


def test_rank_mode_averages_log_likelihoods(setup):
    model, prompts, task, examples = setup
    result = ens.ensemble(model, prompts, task, examples, "rank", batch_size=2)
    texts = [task.format(ex)[0] for ex in examples]
    per_prompt = [score(model.with_prompts([p]), texts, LABELS) for p in prompts]
    for i, predicted in enumerate(result.ensemble_predictions):
        mean = np.mean([per_prompt[p][i] for p in range(3)], axis=0)
        assert predicted == LABELS[int(mean.argmax())]


def test_decode_vote_breaks_ties_by_summed_log_likelihood(setup):
    model, prompts, task, examples = setup
    pair = prompts[:2]
    result = ens.ensemble(model, pair, task, examples, "decode", batch_size=3,
                          max_target_length=2)
    texts = [task.format(ex)[0] for ex in examples]
    # every example's two answers, scored under each prompt alone
    alone = [score(model.with_prompts([p]), texts, result.predictions, batch_size=6)
             for p in pair]
    for i, row in enumerate(result.predictions):
        keys = [task.postprocess(t, examples[i]) for t in row]
        if keys[0] == keys[1]:
            assert result.ensemble_predictions[i] == row[0]
        else:  # two prompts, two answers: the one both prompts find likelier wins
            total = alone[0][i] + alone[1][i]
            assert result.ensemble_predictions[i] == row[int(np.argmax(total))]


def test_identical_prompts_equal_the_single_prompt(setup):
    model, prompts, task, examples = setup
    single = ev.evaluate(model.with_prompts([prompts[0]]), task, examples, "decode",
                         batch_size=6, max_target_length=2)
    result = ens.ensemble(model, [prompts[0]] * 3, task, examples, "decode", batch_size=2,
                          max_target_length=2)
    assert result.ensemble_metrics == single[0]
    assert result.ensemble_predictions == single[1]
