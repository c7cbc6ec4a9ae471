"""The baselines: PEFT prompt tuning on transformers' T5 (torch), as their examples run it.

`PeftTrain` is `PromptTuningConfig(num_transformer_submodules=1)` (the prompt in front of
the encoder only, as in the paper and in softprompt) on a `T5ForConditionalGeneration` of
the same shape and dropout as our model, stepping torch's `Adafactor` (the optimizer's
cost is negligible at these sizes). `PeftPaddedEpoch` is the pad-to-max recipe of PEFT's
seq2seq examples (``padding="max_length"``, a shuffled `DataLoader`).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from benchmarks.cases import MEMORY_STEPS, Case, memory, reset_peak_rss, rss_mb
from benchmarks.harness import workload


def hf_config(model: dict):
    """transformers' `T5Config` for a benchmark `ModelSpec` dict (dropout 0, like ours)."""
    from transformers import T5Config

    from softprompt.core.pretraining.scratch import CONFIGS

    arch = CONFIGS[model["config"]]
    gated = model["style"] == "t5.1.1"
    return T5Config(
        vocab_size=model["vocabulary_size"], d_model=arch["hidden_dim"],
        d_kv=arch["key_value_dim"], d_ff=arch["intermediate_dim"],
        num_layers=arch["num_layers"], num_decoder_layers=arch["num_layers"],
        num_heads=arch["num_heads"], dropout_rate=0.0,
        feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings=not gated,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextlib.contextmanager
def torch_threads(n: int | None):
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def peft_prompt_model(base, prompt_length):
    from peft import PromptTuningConfig, TaskType, get_peft_model

    config = PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=prompt_length,
                                num_transformer_submodules=1)
    return get_peft_model(base, config)


class HfTrain(Case):
    """One training step (forward, backward, optimizer) of a transformers T5 on a fixed batch.

    Subclasses build the model and its optimizer (`build`) and may add set-up facts (`facts`).
    """

    def __init__(self, model, batch, input_length, target_length, seed=0, dtype="float32"):
        self.spec, self.batch, self.input_length = model, batch, input_length
        self.target_length, self.seed, self.dtype = target_length, seed, dtype

    def build(self):
        """``(model, optimizer, trained parameters)``."""
        raise NotImplementedError

    def facts(self, params) -> dict:
        return {}

    def setup(self):
        import torch
        import transformers

        started = time.perf_counter()
        torch.manual_seed(self.seed)
        self.model, self.optimizer, params = self.build()
        self.model.train()
        vocab = self.spec["vocabulary_size"]
        ids = workload.token_rows([self.input_length] * self.batch, vocab, self.seed)
        labels = workload.token_rows([self.target_length] * self.batch, vocab, self.seed + 1)
        self.inputs = {
            "input_ids": torch.tensor(ids, device=device()),
            "attention_mask": torch.ones((self.batch, self.input_length), dtype=torch.long,
                                         device=device()),
            "labels": torch.tensor(labels, device=device()),
        }
        build_s = time.perf_counter() - started
        before = rss_mb()
        reset_peak_rss()
        started = time.perf_counter()
        self.time_step()
        first_step_s = time.perf_counter() - started
        for _ in range(MEMORY_STEPS - 1):  # the peak of settled steps, as keras_cases does
            self.time_step()
        return {"build_s": build_s, "first_step_s": first_step_s, "rss_before_steps_mb": before,
                "trainable_parameters": sum(p.numel() for p in params),
                "threads": torch.get_num_threads(), "transformers": transformers.__version__,
                **self.facts(params)}

    def time_step(self, threads=None):
        with torch_threads(threads):
            out = self.model(**self.inputs)
            out.loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            sync()
        return {"loss": float(out.loss)}


class PeftTrain(HfTrain):
    """Suite 1 baseline: one PEFT training step (forward, backward, optimizer) and one forward."""

    def __init__(self, model, batch, input_length, prompt_length, target_length, seed=0,
                 dtype="float32"):
        super().__init__(model, batch, input_length, target_length, seed, dtype)
        self.prompt_length = prompt_length

    def build(self):
        import torch
        from transformers import T5ForConditionalGeneration

        # bfloat16: the model as `from_pretrained(..., torch_dtype=torch.bfloat16)` gives it;
        # PEFT keeps the prompt in float32 (its `autocast_adapter_dtype` default)
        base = T5ForConditionalGeneration(hf_config(self.spec)).to(device(),
                                                                    getattr(torch, self.dtype))
        model = peft_prompt_model(base, self.prompt_length)
        params = [p for p in model.parameters() if p.requires_grad]
        return model, torch.optim.Adafactor(params, lr=0.3), params

    def facts(self, params) -> dict:
        return {"dtype": self.dtype, "prompt_dtype": str(params[0].dtype).replace("torch.", ""),
                "attention": getattr(self.model.config, "_attn_implementation", None)}

    def time_forward(self, threads=None):
        import torch

        with torch_threads(threads), torch.no_grad():
            out = self.model(**self.inputs)
            sync()
        return {"loss": float(out.loss)}

    def info(self):
        import torch

        extra = {}
        if torch.cuda.is_available():
            extra["device_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return {**memory(), **extra}


class PeftPaddedStep(Case):
    """Suite 2 baseline: PEFT's pad-to-max recipe, one step of `batch` inputs padded to the maximum.

    Every batch of the recipe (``padding="max_length"``, a shuffled `DataLoader`) has
    this shape, so the suite multiplies the step by the number of batches.
    """

    def __init__(self, model, batch, prompt_length, target_length, max_length=512, seed=0):
        self.spec, self.batch = model, batch
        self.prompt_length, self.target_length = prompt_length, target_length
        self.max_length, self.seed = max_length, seed

    def setup(self):
        import torch
        from transformers import T5ForConditionalGeneration

        torch.manual_seed(self.seed)
        base = T5ForConditionalGeneration(hf_config(self.spec)).to(device())
        self.model = peft_prompt_model(base, self.prompt_length)
        self.model.train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adafactor(params, lr=0.3)
        vocab = self.spec["vocabulary_size"]
        ids = workload.token_rows([self.max_length] * self.batch, vocab, self.seed)
        labels = workload.token_rows([self.target_length] * self.batch, vocab, self.seed + 1)
        self.inputs = {"input_ids": torch.tensor(ids, device=device()),
                       "attention_mask": torch.ones((self.batch, self.max_length),
                                                    dtype=torch.long, device=device()),
                       "labels": torch.tensor(labels, device=device())}
        self.time_step()
        return {}

    def time_step(self):
        out = self.model(**self.inputs)
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        sync()


class Checkpoint(Case):
    """Writes a random T5 with `save_pretrained` (the weights both sides of the decoding comparison load)."""

    def __init__(self, model, out, seed=0):
        self.spec, self.out, self.seed = model, out, seed

    def setup(self):
        import torch
        from transformers import T5ForConditionalGeneration

        torch.manual_seed(self.seed)
        T5ForConditionalGeneration(hf_config(self.spec)).save_pretrained(self.out)
        return {"path": self.out}


class Generate(Case):
    """Suite 5 reference: PEFT's ``generate`` (greedy) with our prompt, on the same weights."""

    def __init__(self, hf_dir, prompt, batch, input_length, seed=0):
        self.hf_dir, self.prompt_path = hf_dir, prompt
        self.batch, self.input_length, self.seed = batch, input_length, seed

    def setup(self):
        import torch
        from transformers import T5ForConditionalGeneration

        prompt = np.load(self.prompt_path)
        base = T5ForConditionalGeneration.from_pretrained(self.hf_dir).to(device()).eval()
        self.model = peft_prompt_model(base, prompt.shape[0]).eval()
        with torch.no_grad():
            self.model.prompt_encoder["default"].embedding.weight.copy_(torch.tensor(prompt))
        vocab = base.config.vocab_size
        rows = workload.token_rows([self.input_length] * self.batch, vocab, self.seed)
        self.ids = torch.tensor(rows, device=device())
        self.mask = torch.ones_like(self.ids)
        return {}

    def time_generate(self, length):
        import torch

        with torch.no_grad():
            out = self.model.generate(input_ids=self.ids, attention_mask=self.mask,
                                      max_new_tokens=int(length), do_sample=False, num_beams=1)
            sync()
        tokens = out[:, 1:].cpu().numpy()  # drop the decoder start token
        padded = np.zeros((tokens.shape[0], int(length)), np.int64)
        padded[:, : tokens.shape[1]] = tokens
        # `generate` stops once every row has produced </s>: the steps it really ran
        return {"tokens": padded.tolist(), "steps": int(tokens.shape[1])}


class FullFineTune(HfTrain):
    """The baseline of model tuning: transformers' full fine-tuning of the same T5 (torch).

    Every parameter of a `T5ForConditionalGeneration` of the same shape trains, stepped by
    transformers' own `Adafactor` as T5 fine-tuning recipes configure it (constant lr 1e-3,
    ``scale_parameter=True``: updates scaled by the parameter RMS, as T5X does;
    ``relative_step=False``, ``warmup_init=False``).
    """

    def build(self):
        from transformers import T5ForConditionalGeneration
        from transformers.optimization import Adafactor

        model = T5ForConditionalGeneration(hf_config(self.spec)).to(device())
        params = list(model.parameters())
        optimizer = Adafactor(params, lr=1e-3, scale_parameter=True, relative_step=False,
                              warmup_init=False)
        return model, optimizer, params
