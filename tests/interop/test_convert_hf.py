"""The Hugging Face T5 converter against transformers itself, and its refusals.

Logits of the converted keras-hub backbone must equal `T5ForConditionalGeneration`'s
(≤1e-4) for T5 1.0 (relu, tied, scaled head), T5 1.1 (gated GELU, separate head)
and transformers 5's default save of a T5 1.1 config (gated GELU, unscaled head
that is the embedding). Runs under whichever backend ``KERAS_BACKEND`` names.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from keras import ops

from softprompt.core.interop.hf_checkpoint import check_checkpoint, open_checkpoint
from softprompt.core.interop.hf_t5 import convert_hf_t5, load_hf_t5, read_hf_config

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

LOGITS_ATOL = 1e-4
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "passage: red apple question: true or false?",
    "Hello, WORLD!  two  spaces and ünïcode 123",
]


def keras_logits(backbone, enc, enc_mask, dec, dec_mask):
    """LM logits of a plain keras-hub backbone (T5's head: tied ones scale by d**-0.5)."""
    h = backbone(
        {
            "encoder_token_ids": enc,
            "encoder_padding_mask": enc_mask,
            "decoder_token_ids": dec,
            "decoder_padding_mask": dec_mask,
        }
    )["decoder_sequence_output"]
    if backbone.tie_embedding_weights:
        h = h * backbone.hidden_dim**-0.5
    return ops.convert_to_numpy(backbone.token_embedding(h, reverse=True))


def hf_logits(hf_dir, enc, enc_mask, dec):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(enc, dtype=torch.long),
            attention_mask=torch.tensor(enc_mask, dtype=torch.long),
            decoder_input_ids=torch.tensor(dec, dtype=torch.long),
        )
    return out.logits.numpy()


def assert_logits_match(hf, hf_dir, preset_or_backbone, spiece_size):
    import keras_hub

    enc, enc_mask, labels, label_mask = hf.batch(spiece_size, seed=1)
    dec = hf.shift_right(labels)
    backbone = preset_or_backbone
    if not isinstance(backbone, keras_hub.models.T5Backbone):
        backbone = keras_hub.models.T5Backbone.from_preset(str(preset_or_backbone))
    ours = keras_logits(backbone, enc, enc_mask, dec, np.ones_like(dec))
    theirs = hf_logits(hf_dir, enc, enc_mask, dec)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=LOGITS_ATOL)
    return backbone


@pytest.mark.parametrize("style", ["relu-tied", "gated-untied", "gated-unscaled-shared"])
def test_logits_equal_transformers(hf, hf_dirs, converted, spiece_size, style):
    backbone = assert_logits_match(hf, hf_dirs[style], converted[style], spiece_size)
    assert backbone.tie_embedding_weights == (style == "relu-tied")
    assert backbone.use_gated_activation == style.startswith("gated")
    assert backbone.dropout == 0.0  # the source config's dropout_rate


def test_tokenizer_ids_equal_transformers(hf_dirs, converted):
    pytest.importorskip("transformers")
    import keras_hub
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(hf_dirs["relu-tied"])
    ours = keras_hub.models.T5Tokenizer.from_preset(str(converted["relu-tied"]))
    for text in TEXTS:
        expected = theirs(text).input_ids
        assert expected[-1] == theirs.eos_token_id  # HF appends </s>; keras-hub's tokenizer does not
        assert ops.convert_to_numpy(ours(text)).tolist() == expected[:-1], text


def test_sharded_safetensors_and_pytorch_bin_read_the_same_tensors(hf_dirs, tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import T5ForConditionalGeneration

    src = hf_dirs["gated-untied"]
    model = T5ForConditionalGeneration.from_pretrained(src)
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="8KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    pickled = tmp_path / "bin"
    pickled.mkdir()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # shared/lm_head stay distinct
    torch.save(state, pickled / "pytorch_model.bin")

    reference = open_checkpoint(src)
    for source, kind in ((sharded, "safetensors"), (pickled, "bin")):
        checkpoint = open_checkpoint(source)
        assert checkpoint.kind == kind
        check_checkpoint(checkpoint, read_hf_config(src))
        for key in reference.keys():
            np.testing.assert_array_equal(checkpoint.get(key), reference.get(key), err_msg=key)


def test_bfloat16_safetensors(hf_dirs, tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    src = tmp_path / "bf16"
    shutil.copytree(hf_dirs["relu-tied"], src)
    tensors = load_file(src / "model.safetensors")
    save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, src / "model.safetensors",
              metadata={"format": "pt"})
    checkpoint = open_checkpoint(src)
    for key, value in tensors.items():
        got = checkpoint.get(key)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, value.to(torch.bfloat16).float().numpy(), err_msg=key)


def test_mt5_is_the_t5_1_1_architecture(hf, tmp_path, spiece_proto, spiece_size):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    torch.manual_seed(5)
    config = transformers.MT5Config(
        vocab_size=spiece_size + 104, dropout_rate=0.0, decoder_start_token_id=0,
        d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
    )
    src = tmp_path / "mt5"
    transformers.MT5ForConditionalGeneration(config).save_pretrained(src)
    (src / "spiece.model").write_bytes(spiece_proto)
    backbone, info = load_hf_t5(src)
    assert not info["tied"] and not info["scale_decoder_outputs"]
    assert_logits_match(hf, src, backbone, spiece_size)


def test_conversion_record_and_refusal_to_overwrite(hf_dirs, converted):
    record = json.loads((converted["gated-untied"] / "conversion.json").read_text())
    assert record["model_type"] == "t5" and record["tie_embedding_weights"] is False
    assert record["feed_forward_proj"] == "gated-gelu"
    with pytest.raises(ValueError, match="not empty"):
        convert_hf_t5(hf_dirs["gated-untied"], converted["gated-untied"])


# ---------------------------------------------------------------------------- bad input


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))


def _edit_tensors(path, drop=(), add=None, reshape=None):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(path / "model.safetensors")
    for key in drop:
        del tensors[key]
    tensors.update(add or {})
    for key in reshape or ():
        tensors[key] = np.ascontiguousarray(tensors[key].T)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})


WO = "decoder.block.1.layer.2.DenseReluDense.wo.weight"
WI0 = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
CONFIG_ERRORS = {
    "other model type": (dict(model_type="bert"), "model_type 'bert' is not a T5 model"),
    "umt5": (dict(model_type="umt5"), "umt5 is not supported"),
    "buckets": (dict(relative_attention_num_buckets=64), "relative_attention_num_buckets=64"),
    "max distance": (dict(relative_attention_max_distance=256), "relative_attention_max_distance=256"),
    "decoder depth": (dict(num_decoder_layers=3), "num_decoder_layers=3 differs"),
    "is_gated_act": (dict(is_gated_act=False), "is_gated_act=False contradicts"),
    "activation": (dict(feed_forward_proj="gated-mish", dense_act_fn=None), "activation 'mish'"),
    "gating vs tensors": (
        dict(feed_forward_proj="relu", is_gated_act=None, dense_act_fn=None),
        "says the feed-forward block is ungated",
    ),
    "missing key": (dict(d_model=None), "missing 'd_model'"),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_refuses_unsupported_configs(hf_dirs, tmp_path, case):
    changes, message = CONFIG_ERRORS[case]
    src = tmp_path / "src"
    shutil.copytree(hf_dirs["gated-untied"], src)
    _edit_config(src, **changes)
    with pytest.raises(ValueError, match=message) as err:
        convert_hf_t5(src, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


TENSOR_ERRORS = {
    "missing": (dict(drop=[WO]), f"lacks 1 tensor\\(s\\) T5 needs: {WO}"),
    "misshapen": (dict(reshape=[WI0]), f"{WI0} has shape \\(16, 32\\), expected \\(32, 16\\)"),
    "unexpected": (
        dict(add={"encoder.block.0.layer.0.SelfAttention.extra.weight": np.zeros(2, np.float32)}),
        "does not have: encoder.block.0.layer.0.SelfAttention.extra.weight",
    ),
}


@pytest.mark.parametrize("case", list(TENSOR_ERRORS))
def test_refuses_bad_tensors(hf_dirs, tmp_path, case):
    edits, message = TENSOR_ERRORS[case]
    src = tmp_path / "src"
    shutil.copytree(hf_dirs["gated-untied"], src)
    _edit_tensors(src, **edits)
    with pytest.raises(ValueError, match=message):
        convert_hf_t5(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_files(hf_dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_hf_config(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        read_hf_config(tmp_path)
    src = tmp_path / "src"
    shutil.copytree(hf_dirs["relu-tied"], src)
    (src / "model.safetensors").rename(src / "tf_model.h5")
    with pytest.raises(FileNotFoundError, match="no model.safetensors.*found tf_model.h5"):
        convert_hf_t5(src, tmp_path / "out")
    (src / "tf_model.h5").rename(src / "model.safetensors")
    (src / "spiece.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable sentencepiece model"):
        convert_hf_t5(src, tmp_path / "out")
    (src / "spiece.model").unlink()
    with pytest.raises(FileNotFoundError, match="no spiece.model"):
        convert_hf_t5(src, tmp_path / "out")


class _Payload:
    """Would create `marker` if unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pytorch_pickle_is_never_unpickled_freely(hf_dirs, tmp_path):
    torch = pytest.importorskip("torch")

    src = tmp_path / "src"
    shutil.copytree(hf_dirs["relu-tied"], src)
    (src / "model.safetensors").unlink()
    marker = tmp_path / "executed"
    torch.save({"shared.weight": torch.zeros(2), "x": _Payload(marker)}, src / "pytorch_model.bin")
    with pytest.raises(ValueError, match="weights_only=True"):
        convert_hf_t5(src, tmp_path / "out")
    assert not marker.exists()


def test_preset_is_plain_keras_hub(converted):
    names = {p.name for p in converted["relu-tied"].iterdir()}
    assert {"config.json", "model.weights.h5", "tokenizer.json", "metadata.json"} <= names
    assert (converted["relu-tied"] / "assets" / "tokenizer" / "vocabulary.spm").is_file()
