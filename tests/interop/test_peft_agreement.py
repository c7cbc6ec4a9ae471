"""Our prompt tuning against PEFT's, on identical T5 weights and an identical prompt.

The HF model is the reference; our model is the same checkpoint through our
converter, and the prompt goes from us to PEFT through `export_peft`. PEFT's
loss (mean cross-entropy over labels that are not -100) must equal ours
(masked mean cross-entropy, z-loss off) to 1e-5 relative; the prompt gradient
to 1e-4 of its largest entry. Our gradient is read off one plain SGD step,
``(before - after) / lr``, so the test asks no backend for autodiff itself.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import ops

from softprompt.core.interop.peft import export_peft, import_peft
from softprompt.core.io.prompt_files import load_prompt

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

P = 4
# Large enough that lr * grad dominates the prompt's own values in the float32 update,
# so (before - after) / lr recovers the gradient to ~1e-7 relative.
SGD_LR = 1e4
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4
LOGITS_ATOL = 1e-4


def peft_model_from(hf_dir, adapter):
    from peft import PeftModel
    from transformers import T5ForConditionalGeneration

    base = T5ForConditionalGeneration.from_pretrained(hf_dir).eval()
    # PEFT refuses is_trainable=True for loaded prompt adapters; the gradient is all we need.
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    model.prompt_encoder["default"].embedding.weight.requires_grad_(True)
    return model


@pytest.mark.parametrize("style", ["relu-tied", "gated-untied"])
def test_loss_gradient_and_logits_equal_peft(hf, hf_dirs, converted, spiece_size, tmp_path, style):
    import torch

    from softprompt import PromptedT5

    model = PromptedT5.from_preset(str(converted[style]), prompt_length=P, init="uniform", seed=3)
    prompt_path = model.save_prompt(tmp_path / "prompt.npy")
    adapter = export_peft(prompt_path, tmp_path / "adapter")
    peft_model = peft_model_from(hf_dirs[style], adapter)
    prompt = ops.convert_to_numpy(model.prompt.embeddings)[0]
    peft_prompt = peft_model.prompt_encoder["default"].embedding.weight
    assert peft_prompt.shape == (P, model.backbone.hidden_dim)
    assert peft_prompt.detach().numpy().tobytes() == prompt.tobytes()  # PEFT loaded ours exactly

    enc, enc_mask, labels, label_mask = hf.batch(spiece_size, seed=2)
    # PEFT: labels with -100 where padded; T5 shifts them right into the decoder input itself.
    out = peft_model(
        input_ids=torch.tensor(enc, dtype=torch.long),
        attention_mask=torch.tensor(enc_mask, dtype=torch.long),
        labels=torch.tensor(np.where(label_mask == 1, labels, -100), dtype=torch.long),
    )
    out.loss.backward()
    peft_loss = float(out.loss)
    peft_grad = peft_prompt.grad.numpy()
    peft_logits = out.logits.detach().numpy()

    x = {
        "encoder_token_ids": enc,
        "encoder_padding_mask": enc_mask,
        "decoder_token_ids": hf.shift_right(labels),
        "decoder_padding_mask": label_mask,
    }
    logits = ops.convert_to_numpy(model(x))
    # Only real target positions: ours masks padded decoder inputs, PEFT's call here does not.
    real = label_mask == 1
    np.testing.assert_allclose(logits[real], peft_logits[real], rtol=0, atol=LOGITS_ATOL)

    model.compile(optimizer=keras.optimizers.SGD(learning_rate=SGD_LR), z_loss=0.0)
    loss = model.train_on_batch(x, labels, sample_weight=label_mask.astype("float32"))
    grad = (prompt.astype(np.float64) - ops.convert_to_numpy(model.prompt.embeddings)[0]) / SGD_LR

    assert abs(float(loss) - peft_loss) <= LOSS_RTOL * abs(peft_loss)
    scale = np.abs(peft_grad).max()
    assert scale > 0
    np.testing.assert_allclose(grad, peft_grad, rtol=0, atol=GRAD_RTOL * scale)


def test_round_trip_ours_peft_ours_is_bit_identical(converted, tmp_path):
    from softprompt import PromptedT5

    model = PromptedT5.from_preset(str(converted["gated-untied"]), prompt_length=P,
                                   init="sampled-vocab", seed=1)
    path = model.save_prompt(tmp_path / "prompt.npy", task="demo")
    adapter = export_peft(path, tmp_path / "adapter")
    back, _ = import_peft(adapter, tmp_path / "back.npy")
    array, meta = load_prompt(back)
    assert array.tobytes() == load_prompt(path)[0].tobytes()
    assert meta["backbone"] == model.identity() and meta["task"] == "demo"
    # The adapter names the Hugging Face checkpoint the preset was converted from.
    config = json.loads((adapter / "adapter_config.json").read_text())
    source = json.loads((converted["gated-untied"] / "conversion.json").read_text())["source"]
    assert config["base_model_name_or_path"] == source
    model.load_prompt(back)  # the sidecar's fingerprint matches: no warning, no error


def test_import_of_an_adapter_peft_trained(hf_dirs, tmp_path):
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import T5ForConditionalGeneration

    base = T5ForConditionalGeneration.from_pretrained(hf_dirs["relu-tied"])
    peft_model = get_peft_model(
        base, PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=P)
    )
    peft_model.save_pretrained(tmp_path / "default")
    weight = peft_model.prompt_encoder["default"].embedding.weight.detach().numpy()
    assert weight.shape[0] == 2 * P  # PEFT's default seq2seq layout
    path, info = import_peft(tmp_path / "default", tmp_path / "p.npy")
    assert info["dropped_rows"] == P
    assert load_prompt(path)[0].tobytes() == weight[:P].tobytes()

    lora = get_peft_model(
        T5ForConditionalGeneration.from_pretrained(hf_dirs["relu-tied"]),
        LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, target_modules=["q", "v"], r=2),
    )
    lora.save_pretrained(tmp_path / "lora")
    with pytest.raises(ValueError, match="is a LORA adapter; only PROMPT_TUNING"):
        import_peft(tmp_path / "lora", tmp_path / "x.npy")
