"""`softprompt adapt`: prefix-LM batches, a short run that writes a preset, exact resume, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from softprompt.cli.main import cli


def _config(tmp_path, corpus, steps, **kw):
    from softprompt.core.pretraining.adapt import AdaptConfig

    values = dict(out=str(tmp_path / "preset"), corpus=corpus, from_config="test",
                  vocab_size=150, vocab_model="bpe", steps=steps, batch_size=4,
                  eval_every=2, max_input_length=8, max_target_length=4, seed=0)
    values.update(kw)
    return AdaptConfig(**values)


def test_prefix_lm_batches_are_a_function_of_the_step(tmp_path, small_corpus):
    import keras_hub

    from softprompt.core.pretraining import corpus as ad
    from softprompt.core.pretraining.scratch import train_sentencepiece

    texts, pairs, counts = ad.read_corpus_files(small_corpus)
    assert counts == {small_corpus[0]: 120, small_corpus[1]: 120}
    proto = train_sentencepiece(texts + [p[0] for p in pairs], 150, model_type="bpe")
    corpus = ad.tokenize_corpus(keras_hub.models.T5Tokenizer(proto=proto), texts, pairs, counts)
    stream = ad.AdaptBatches(corpus, 8, 32, 16, seed=0)
    a, b = stream.batch(5), ad.AdaptBatches(corpus, 8, 32, 16, seed=0).batch(5)
    for x, y in zip(a, b):
        if isinstance(x, dict):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            np.testing.assert_array_equal(x, y)
    x, y, w = a
    assert x["encoder_token_ids"].shape[1] in stream.input_buckets
    # every real row: a non-empty prefix ending in </s>, a non-empty target ending in </s>
    for ids, mask, tgt, tmask in zip(x["encoder_token_ids"], x["encoder_padding_mask"], y, w):
        n, m = int(mask.sum()), int(tmask.sum())
        assert n >= 2 and ids[n - 1] == 1
        assert m >= 2 and tgt[m - 1] == 1
    # decoder input = targets shifted right behind the start id 0
    np.testing.assert_array_equal(x["decoder_token_ids"][:, 1:], y[:, :-1])


def test_short_run_writes_a_loadable_preset_and_resume_is_exact(tmp_path, small_corpus):
    from keras import ops

    from softprompt.core.inference.batched import generate
    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.core.pretraining.adapt import adapt

    full = adapt(_config(tmp_path / "a", small_corpus, 4), progress=False, echo=lambda s: None)
    assert (full.out / "config.json").is_file() and (full.out / "adapt.json").is_file()
    info = json.loads((full.out / "adapt.json").read_text())
    assert info["steps"] == 4 and info["corpus"]["pairs"] == 120
    # the preset records no absolute path of the machine that built it
    assert info["options"]["out"] == "preset" and info["options"]["corpus"] == ["lm.txt",
                                                                                "tasks.jsonl"]
    assert not [s for s in _strings(info) if s.startswith("/")]
    run = tmp_path / "a" / "preset.adapt"
    for name in ("config.json", "train.csv", "metrics.jsonl", "curve.png"):
        assert (run / name).is_file(), name
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4]

    adapt(_config(tmp_path / "b", small_corpus, 2), progress=False, echo=lambda s: None)
    resumed = adapt(_config(tmp_path / "b", small_corpus, 4), resume=True, progress=False,
                    echo=lambda s: None)
    assert resumed.step == 4
    one = PromptedT5.from_preset(str(full.out), prompt_length=2, init="zeros")
    two = PromptedT5.from_preset(str(resumed.out), prompt_length=2, init="zeros")
    # Same batches, same restored state: bit-equal on every backend. (On torch this
    # needs `TorchAdapter.prepare_full_training`: keras' zero_grad missed one of T5's
    # two relative-attention biases, whose gradient then summed over the steps.)
    for u, v in zip(one.backbone.weights, two.backbone.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(u), ops.convert_to_numpy(v),
                                      err_msg=u.path)
    assert len(generate(one, ["the red fox"], max_length=3)) == 1


def _strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _invoke(args):
    result = CliRunner().invoke(cli, ["adapt", *args])
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize("args, expected", [
    (["--from-config", "tiny", "--corpus", "missing.txt"], "missing.txt does not exist"),
    (["--corpus", "{lm}"], "exactly one of a preset"),
    (["--from-config", "tiny", "--preset", "x", "--corpus", "{lm}"], "exactly one of a preset"),
    (["--from-config", "huge", "--corpus", "{lm}"], "unknown config 'huge'"),
    (["--from-config", "{bad json", "--corpus", "{lm}"], "not valid JSON"),
    (["--from-config", "tiny", "--corpus", "{lm}", "--steps", "0"], "steps must be a positive"),
    (["--from-config", "tiny", "--corpus", "{bad}"], "malformed JSON"),
    (["--preset", "no/such/preset", "--corpus", "{lm}"], "no/such/preset"),
    (["--from-config", "tiny", "--corpus", "{lm}", "--resume"], "holds no adaptation run"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, small_corpus, args, expected):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    args = [a.replace("{lm}", small_corpus[0]).replace("{bad}", str(bad)) for a in args]
    code, output = _invoke([*args, "--out", str(tmp_path / "out")])
    assert code == 2, output
    assert len(output.splitlines()) == 1 and output.startswith("Error:"), output
    assert expected in output, output


def test_adapting_an_existing_preset_changes_its_weights(tmp_path, small_corpus, preset_v10):
    from keras import ops

    from softprompt.core.model.prompted_t5 import PromptedT5
    from softprompt.core.pretraining.adapt import adapt

    config = _config(tmp_path, small_corpus, 2, from_config=None, preset=preset_v10,
                     eval_every=2)
    result = adapt(config, progress=False, echo=lambda s: None)
    before = PromptedT5.from_preset(preset_v10, prompt_length=1, init="zeros")
    after = PromptedT5.from_preset(str(result.out), prompt_length=1, init="zeros")
    assert after.tokenizer.vocabulary_size() == before.tokenizer.vocabulary_size()
    moved = [not np.allclose(ops.convert_to_numpy(u), ops.convert_to_numpy(v))
             for u, v in zip(before.backbone.weights, after.backbone.weights)]
    assert sum(moved) > len(moved) // 2


def test_full_disk_and_unreadable_checkpoints(tmp_path, small_corpus, monkeypatch):
    """The loop's reliability holds for LM adaptation: a full disk at step 4's checkpoint keeps
    step 2's; a damaged state-4.npz, then a damaged step-4 preset, offer step 2."""
    import contextlib
    import errno
    import os

    from softprompt.core.io.disk_space import DiskFull
    from softprompt.core.pretraining import adapt as ad
    from softprompt.core.training import state as train_state

    real = train_state.atomic_write

    @contextlib.contextmanager
    def full_at_step_4(path, mode="wb"):
        if os.path.basename(path) == "state-4.npz":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        with real(path, mode) as f:
            yield f

    quiet = {"progress": False, "echo": lambda s: None}
    monkeypatch.setattr(train_state, "atomic_write", full_at_step_4)
    with pytest.raises(DiskFull, match=r"preset\.adapt/checkpoints .*it needs about .* "
                                       r"the checkpoint of step 2 is intact.*softprompt adapt"):
        ad.adapt(_config(tmp_path, small_corpus, 4), **quiet)
    monkeypatch.undo()
    run = tmp_path / "preset.adapt"
    assert train_state.latest(run)["step"] == 2
    assert not (run / ".softprompt.lock").exists()
    assert ad.adapt(_config(tmp_path, small_corpus, 4), resume=True, **quiet).step == 4

    checkpoints = run / "checkpoints"
    assert (checkpoints / "state-2.npz").is_file() and (checkpoints / "step-2").is_dir()
    (checkpoints / "state-4.npz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match=r"state-4\.npz is not a \.npz archive.* previous "
                                         r"complete checkpoint is step 2: .*--resume-from-last-good"):
        ad.adapt(_config(tmp_path, small_corpus, 6), resume=True, **quiet)
    notes = []
    done = ad.adapt(_config(tmp_path, small_corpus, 6), resume=True, from_last_good=True,
                    progress=False, echo=notes.append)
    assert done.step == 6 and any("resuming from step 2" in n for n in notes), notes
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]

    weights = checkpoints / "step-6" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated
    with pytest.raises(ValueError, match=r"step-6/model\.weights\.h5 is not a readable weights "
                                         r"file.* previous complete checkpoint is step 4"):
        ad.adapt(_config(tmp_path, small_corpus, 8), resume=True, **quiet)

