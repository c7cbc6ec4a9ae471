"""Inference over examples: mixed prompts in shared batches equal separate runs; metrics; models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softprompt import tasks
from softprompt.core.inference import batched
from softprompt.core.inference import evaluate as ev
from softprompt.core.inference.prompts import model_for_prompts
from softprompt.core.io.prompt_files import save_prompt
from softprompt.core.model.prompted_t5 import PromptedT5

# Short inputs (one length bucket) and batches of 6 rows throughout: the tests share shapes,
# so eager backends compile each operation once.
TEXTS = ["review: good film", "review: the cat sat", "review: bad", "review: great story",
         "review: terrible actor", "review: one two three"]
LABELS = ["negative", "positive"]
STEPS = 2  # decoding length, as for these labels in training


@pytest.fixture(scope="module")
def model(preset_v11):
    return PromptedT5.from_preset(preset_v11, prompt_length=3, init="uniform", seed=0)


@pytest.fixture(scope="module")
def prompts(model):
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, (3, model.backbone.hidden_dim)).astype(np.float32)
            for _ in range(2)]


def test_mixed_prompts_in_shared_batches_equal_separate_runs(model, prompts):
    both = model.with_prompts(prompts)
    ids = [0, 1, 0, 1, 1, 0]
    decoded = batched.generate(both, TEXTS, ids, max_length=STEPS, batch_size=6)
    ranked = batched.score(both, TEXTS, LABELS, ids, batch_size=6)
    for p in (0, 1):
        alone = model.with_prompts([prompts[p]])
        alone_decoded = batched.generate(alone, TEXTS, max_length=STEPS, batch_size=6)
        alone_ranked = batched.score(alone, TEXTS, LABELS, batch_size=6)
        for i in (i for i, x in enumerate(ids) if x == p):
            assert decoded[i] == alone_decoded[i]
            np.testing.assert_allclose(ranked[i], alone_ranked[i], rtol=1e-5, atol=1e-5)


def test_replicas_run_every_prompt_in_the_same_batch(model, prompts):
    both = model.with_prompts(prompts)
    inputs = batched.tokenize_inputs(both, TEXTS[:3], 16)
    rows = batched.generate_ids(both, inputs, max_length=STEPS, batch_size=3, replicas=2)
    for p in (0, 1):
        expected = batched.generate(both, TEXTS[:3] * 2, [p] * 6, max_length=STEPS,
                                   batch_size=6)[:3]
        assert [r[p] for r in rows] == expected
    scores = batched.score_ids(both, inputs, [LABELS] * 3, batch_size=3, replicas=2)
    assert all(s.shape == (2, 2) for s in scores)
    with pytest.raises(ValueError, match="cannot be combined"):
        batched.generate_ids(both, inputs, [0, 1, 0], max_length=STEPS, replicas=2)


def test_per_input_decode_lengths_match_separate_runs(model):
    inputs = batched.tokenize_inputs(model, TEXTS, 16)
    rows = batched.generate_ids(model, inputs, max_length=[1, 2] * 3, batch_size=6)
    short = batched.generate(model, TEXTS, max_length=1, batch_size=6)
    full = batched.generate(model, TEXTS, max_length=2, batch_size=6)
    assert [r[0] for r in rows] == [short[i] if i % 2 == 0 else full[i] for i in range(6)]


def test_inputs_with_different_candidate_counts_get_their_own_scores(model, monkeypatch):
    """Inputs are grouped by candidate count; each gets its own row back, in order."""
    from softprompt.core.inference import decoding as decode

    def fake_score_tokens(model, ids, mask, candidates, prompt_ids=None):
        # a score that identifies (input, candidate): sums of their ids
        return np.array([[int(row.sum()) * 1000 + sum(c) for c in cands]
                         for row, cands in zip(ids, candidates)], np.float64)

    monkeypatch.setattr(decode, "score_tokens", fake_score_tokens)
    texts = [TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[3]]
    candidates = [["a"], ["a", "b", "c"], ["b"], ["c", "a", "b"]]
    inputs = batched.tokenize_inputs(model, texts)
    scores = [r[0] for r in batched.score_ids(model, inputs, candidates, batch_size=6)]
    inputs = [sum(r) for r in batched.tokenize_inputs(model, texts, 16)]
    assert len(set(inputs)) == len(inputs)
    for i, (cands, got) in enumerate(zip(candidates, scores)):
        ids = [sum(r) for r in batched.tokenize_inputs(model, cands, 16)]
        np.testing.assert_array_equal(got, [inputs[i] * 1000 + c for c in ids])


def test_free_form_tasks_cannot_rank(model):
    free = tasks.get("jsonl", template="q: {text}", target_field="answer")
    with pytest.raises(ValueError, match="free-form"):
        ev.predict_examples(model, free, [{"text": "x", "answer": "y"}], "rank")
    with pytest.raises(ValueError, match="decode or rank"):
        ev.predict_examples(model, free, [{"text": "x", "answer": "y"}], "beam")


def test_evaluate_scores_with_the_task(model):
    task = tasks.get("jsonl", template="review: {text}", target_field="label", labels=LABELS)
    examples = [{"text": t.split(": ", 1)[1], "label": LABELS[i % 2]}
                for i, t in enumerate(TEXTS)]
    metrics, predictions = ev.evaluate(model, task, examples, "rank", batch_size=6)
    assert set(metrics) == {"accuracy", "f1_multiclass"}
    assert all(p in LABELS for p in predictions)
    expected = 100 * np.mean([p == e["label"] for p, e in zip(predictions, examples)])
    assert metrics["accuracy"] == pytest.approx(expected)
    assert ev.target_length(model.tokenizer, task) >= 2


def test_model_for_prompts(model, prompts, tmp_path, preset_v10):
    path = model.with_prompts([prompts[0]]).save_prompt(tmp_path / "a.npy", task="jsonl")
    loaded, arrays, metas = model_for_prompts([path])  # the sidecar names the model
    np.testing.assert_array_equal(arrays[0], prompts[0])
    assert metas[0]["task"] == "jsonl" and loaded.num_prompts == 1
    assert json.loads((tmp_path / "a.json").read_text())["backbone"]["preset"] == model.preset
    np.save(tmp_path / "bare.npy", prompts[1])  # no sidecar
    with pytest.raises(ValueError, match="--preset"):
        model_for_prompts([tmp_path / "bare.npy"])
    other = tmp_path / "other.npy"
    save_prompt(other, prompts[1], backbone={"preset": "/somewhere/else"})
    with pytest.raises(ValueError, match="different models"):
        model_for_prompts([path, other])
    with pytest.raises(ValueError, match="--allow-mismatch"):
        model_for_prompts([path], preset=preset_v10)
