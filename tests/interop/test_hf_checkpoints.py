"""Hugging Face T5 checkpoints as ``--preset``: a transformers folder or ``hf://ORG/NAME``,
converted once into softprompt's cache and reused.

The checkpoints are tiny ``T5ForConditionalGeneration`` saved with ``save_pretrained``
(``hf_dirs``); ``hf://`` repositories are those folders laid out in ``huggingface_hub``'s cache
(`hub_helpers.publish_model`) and resolved by the real ``snapshot_download`` with
``HF_HUB_OFFLINE=1``. Only the Hub's HTTP API is replaced, where a test needs an online answer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hub_helpers import go_offline, publish_model

from softprompt.core.interop import hf_hub as hf_checkpoints
from softprompt.core.interop.hf_hub import resolve_hf_t5
from softprompt.core.interop.presets import resolve_preset

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # fmt: skip


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return go_offline(monkeypatch, tmp_path / "caches")


class Said(list):
    """The lines `resolve_hf_t5` says (its ``echo``)."""

    def echo(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def said():
    return Said()


@pytest.fixture
def one_line():
    def message(exc_info) -> str:
        text = str(exc_info.value)
        assert "\n" not in text, text
        return text

    return message


def embeddings(preset) -> np.ndarray:
    import keras_hub

    backbone = keras_hub.models.T5Backbone.from_preset(str(preset))
    return np.asarray(backbone.token_embedding.embeddings)


def forbid_conversion(monkeypatch):
    def convert(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(hf_checkpoints, "convert_hf_t5", convert)


def test_local_folder_is_converted_once_into_the_cache(hub, hf_dirs, converted, said,
                                                        monkeypatch):
    src = hf_dirs["gated-untied"]
    path = resolve_hf_t5(src, echo=said.echo)
    assert path.parent == hub / "softprompt" / "presets"  # $SOFTPROMPT_CACHE
    assert path.name.startswith(f"{src.name}--")
    assert said == [f"{src}: converting into {path} (once; later runs reuse it)"]
    np.testing.assert_array_equal(embeddings(path), embeddings(converted["gated-untied"]))
    forbid_conversion(monkeypatch)
    assert resolve_hf_t5(src, echo=said.echo) == path
    assert said[1] == f"{src}: using the converted preset cached in {path}"


def test_changed_weights_convert_again(hub, hf_dirs, tmp_path, said):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    src = shutil.copytree(hf_dirs["relu-tied"], tmp_path / "t5")
    first = resolve_hf_t5(src, echo=said.echo)
    model = transformers.T5ForConditionalGeneration.from_pretrained(src)
    with torch.no_grad():
        model.shared.weight.add_(1.0)
    model.save_pretrained(src)  # the same folder, new weights
    second = resolve_hf_t5(src, echo=said.echo)
    assert second != first and [line.split(":")[1].split()[0] for line in said] == [
        "converting", "converting"]  # fmt: skip
    assert not np.array_equal(embeddings(first), embeddings(second))


def test_the_content_hash_is_remembered(hub, hf_dirs, monkeypatch):
    src = hf_dirs["relu-tied"]
    key = hf_checkpoints.content_key(src)
    monkeypatch.setattr(hf_checkpoints.hashlib, "sha256", None)  # a second hash would fail
    assert hf_checkpoints.content_key(src) == key


def test_hf_uri_resolves_offline_from_the_hub_cache(hub, hf_dirs, said, monkeypatch):
    snapshot = publish_model(hf_dirs["gated-untied"], "tiny-org/tiny-t5")
    path = resolve_preset("hf://tiny-org/tiny-t5")  # through the preset resolver, as commands do
    assert path == str(hub / "softprompt" / "presets" / f"tiny-org--tiny-t5--{snapshot.name}")
    forbid_conversion(monkeypatch)
    again = resolve_hf_t5(f"hf://tiny-org/tiny-t5@{snapshot.name}", echo=said.echo)
    assert str(again) == path
    assert said == [f"hf://tiny-org/tiny-t5@{snapshot.name}: using the converted preset cached "
                    f"in {path}"]  # fmt: skip
    record = json.loads((again / "conversion.json").read_text())
    assert record["source"] == str(snapshot.resolve())


def test_keras_hub_presets_are_left_to_keras_hub(hub, preset_v11, tmp_path):
    assert resolve_hf_t5(preset_v11) is None
    assert resolve_hf_t5("t5_base_multi") is None
    assert resolve_preset(preset_v11) == preset_v11
    keras_repo = tmp_path / "keras-repo"  # a keras-hub preset on the hub: keras-hub loads hf://
    shutil.copytree(preset_v11, keras_repo)
    publish_model(keras_repo, "keras-org/t5")
    assert resolve_hf_t5("hf://keras-org/t5") is None


def not_t5(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 16}))
    return folder


def test_not_a_t5(hub, tmp_path, one_line):
    folder = not_t5(tmp_path / "bert")
    with pytest.raises(ValueError) as e:
        resolve_preset(str(folder))
    assert one_line(e) == (
        f"preset {folder}: a BertModel checkpoint (model_type 'bert'), not a T5 "
        f"(model_type must be t5 or mt5)"
    )
    publish_model(folder, "someone/bert")
    with pytest.raises(ValueError) as e:
        resolve_preset("hf://someone/bert")
    assert one_line(e).startswith("preset hf://someone/bert: a BertModel checkpoint")


def test_offline_with_nothing_cached(hub, one_line):
    with pytest.raises(ValueError) as e:
        resolve_preset("hf://google/t5-base-lm-adapt")
    assert one_line(e) == (
        "preset hf://google/t5-base-lm-adapt: not in the Hugging Face cache, and HF_HUB_OFFLINE "
        "is set (download it once online, or unset HF_HUB_OFFLINE)"
    )


def test_a_checkpoint_without_its_tokenizer(hub, hf_dirs, tmp_path, one_line):
    src = shutil.copytree(hf_dirs["relu-tied"], tmp_path / "no-spiece")
    (src / "spiece.model").unlink()
    with pytest.raises(ValueError) as e:
        resolve_preset(str(src))
    assert one_line(e).startswith(f"preset {src}: {src} has no spiece.model")


def _hub_answers(monkeypatch, error_class, status):
    """The Hub's HTTP API answering ``status`` (the network boundary of snapshot_download)."""
    import httpx2
    import huggingface_hub

    def repo_info(self, repo_id, **kwargs):
        request = httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
        raise error_class(f"{status} for {repo_id}", response=httpx2.Response(status,
                                                                              request=request))

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)


@pytest.mark.parametrize("kind, reason", [
    ("RepositoryNotFoundError", "no such model repository on the Hugging Face Hub (a private "
                                "one needs a login or HF_TOKEN)"),
    ("GatedRepoError", "a gated repository: accept its terms on huggingface.co, then log in "
                       "(`hf auth login`) or set HF_TOKEN"),
    ("RevisionNotFoundError", "the repository has no revision 'v9'"),
])  # fmt: skip
def test_hub_refusals(hub, monkeypatch, one_line, kind, reason):
    from huggingface_hub import errors

    pytest.importorskip("httpx2")
    _hub_answers(monkeypatch, getattr(errors, kind), 404)
    uri = "hf://nobody/nothing" + ("@v9" if kind == "RevisionNotFoundError" else "")
    with pytest.raises(ValueError) as e:
        resolve_preset(uri)
    assert one_line(e) == f"preset {uri}: {reason}"


def test_bad_hf_uris(one_line):
    for uri in ("hf://datasets/aps/super_glue", "hf://a/b/c"):
        with pytest.raises(ValueError) as e:
            resolve_preset(uri)
        assert one_line(e) == f"preset {uri}: expected hf://ORG/NAME[@REVISION] (a model repository)"


def test_default_cache_folder(monkeypatch):
    import platformdirs

    monkeypatch.delenv("SOFTPROMPT_CACHE", raising=False)
    assert hf_checkpoints.cache_dir() == Path(platformdirs.user_cache_dir("softprompt"))


def test_peft_export_names_the_hub_repository():
    from softprompt.core.interop.peft import _base_model_name

    meta = {"backbone": {"preset": "hf://google/t5-base-lm-adapt@main"}}
    assert _base_model_name(meta) == "google/t5-base-lm-adapt"
