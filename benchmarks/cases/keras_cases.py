"""Cases that run softprompt itself, on whichever keras backend the worker runs.

Every case goes through the library's public paths: `PromptedT5.compile` /
`train_on_batch` with the adapter's compile defaults, the bucketed `TrainBatches` stream
that ``softprompt train`` uses, `softprompt.core.inference.evaluate.predict_inputs` for rank
classification, generation and ensembles, and `softprompt.core.inference.decoding.greedy_tokens`.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.cases import MEMORY_STEPS, Case, memory, reset_peak_rss, rss_mb
from benchmarks.harness import workload


def _adafactor():
    """The paper's optimizer: Adafactor at constant lr 0.3."""
    from softprompt.core.training.adafactor import Adafactor

    return Adafactor(learning_rate=0.3)


_BACKBONES: dict = {}


def _backbone_key(model: dict | None, hf_dir: str | None):
    return hf_dir or tuple(sorted(model.items()))


def backbone_for(model: dict | None = None, hf_dir: str | None = None):
    """A random keras-hub T5 of `model` (a `ModelSpec` dict), or the HF checkpoint `hf_dir`.

    Built once per worker and shared by its cases (the backbone is frozen).
    """
    key = _backbone_key(model, hf_dir)
    if key not in _BACKBONES:
        if hf_dir:
            from softprompt.core.interop.hf_t5 import load_hf_t5

            _BACKBONES[key] = load_hf_t5(hf_dir)[0]
        else:
            from softprompt.core.pretraining.scratch import build_backbone

            _BACKBONES[key] = build_backbone(
                model["vocabulary_size"], model["config"], model["style"], seed=0
            )
    return _BACKBONES[key]


def backbone_in(dtype: str, model: dict | None = None, hf_dir: str | None = None):
    """`backbone_for`'s backbone (the same weights) under the keras dtype policy `dtype`."""
    backbone = backbone_for(model, hf_dir)
    if dtype == "float32":
        return backbone
    key = (_backbone_key(model, hf_dir), dtype)
    if key not in _BACKBONES:
        import keras_hub

        config = {**backbone.get_config(), "dtype": dtype}
        cast = keras_hub.models.T5Backbone.from_config(config)
        cast.set_weights(backbone.get_weights())
        _BACKBONES[key] = cast
    return _BACKBONES[key]


def prompted(model, prompt_length, num_prompts=1, seed=0, tokenizer=None, hf_dir=None,
             dtype="float32"):
    from softprompt import PromptedT5

    backbone = backbone_in(dtype, model, hf_dir)
    return PromptedT5(backbone, prompt_length=prompt_length, num_prompts=num_prompts,
                      init="uniform", seed=seed, tokenizer=tokenizer)


def device_memory() -> dict:
    """Peak accelerator memory where the backend reports it (nothing on CPU)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                return {"device_peak_mb": stats["peak_bytes_in_use"] / 2**20}
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return {"device_peak_mb": torch.cuda.max_memory_allocated() / 2**20}
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                return {"device_peak_mb": tf.config.experimental.get_memory_info("GPU:0")["peak"]
                        / 2**20}
    except Exception:  # noqa: BLE001 - memory stats are optional
        pass
    return {}


def train_batch(batch, input_length, target_length, vocabulary_size, seed=0):
    """A full, unpadded training batch ``(x, y, sample_weight)`` of random ids."""
    from softprompt.core.text.batching import seq2seq_batch

    inputs = workload.token_rows([input_length] * batch, vocabulary_size, seed)
    targets = workload.token_rows([target_length] * batch, vocabulary_size, seed + 1)
    return seq2seq_batch(inputs, targets, input_length, target_length)


def first_step(model, x, y, w) -> tuple[float | None, float]:
    """``(resident MiB before, seconds)`` of the first `train_on_batch` (compiles happen
    there), with the resident-memory high-water mark restarted before it; then the rest of
    `MEMORY_STEPS` steps, so that the case's peak is that of settled steps."""
    before = rss_mb()
    reset_peak_rss()
    started = time.perf_counter()
    model.train_on_batch(x, y, sample_weight=w)
    seconds = time.perf_counter() - started
    for _ in range(MEMORY_STEPS - 1):
        model.train_on_batch(x, y, sample_weight=w)
    return before, seconds


class TrainStep(Case):
    """Suite 1: one `train_on_batch` (the paper's Adafactor + loss) and one `test_on_batch`."""

    def __init__(self, model, batch, input_length, prompt_length, target_length,
                 jit_compile=None, seed=0, dtype="float32"):
        self.spec, self.dtype = model, dtype
        self.batch, self.input_length = batch, input_length
        self.prompt_length, self.target_length = prompt_length, target_length
        self.jit_compile = jit_compile
        self.seed = seed

    def setup(self):
        import keras

        started = time.perf_counter()
        self.model = prompted(self.spec, self.prompt_length, seed=self.seed, dtype=self.dtype)
        kwargs = {} if self.jit_compile is None else {"jit_compile": self.jit_compile}
        self.model.compile(optimizer=_adafactor(), **kwargs)
        self.x, self.y, self.w = train_batch(self.batch, self.input_length, self.target_length,
                                             self.spec["vocabulary_size"], self.seed)
        build_s = time.perf_counter() - started
        before, first_step_s = first_step(self.model, self.x, self.y, self.w)
        started = time.perf_counter()
        self.model.test_on_batch(self.x, self.y, sample_weight=self.w)
        first_forward_s = time.perf_counter() - started
        bb = self.model.backbone
        return {
            "build_s": build_s, "first_step_s": first_step_s, "first_forward_s": first_forward_s,
            "jit_compile": bool(self.model.jit_compile), "rss_before_steps_mb": before,
            "backend": keras.backend.backend(), "dtype": bb.compute_dtype,
            "shape": {"hidden_dim": bb.hidden_dim, "num_layers": bb.num_layers,
                      "num_heads": bb.num_heads,
                      "key_value_dim": bb.key_value_dim or bb.hidden_dim // bb.num_heads,
                      "intermediate_dim": bb.intermediate_dim,
                      "vocabulary_size": bb.vocabulary_size, "gated": bb.use_gated_activation},
        }

    def time_step(self):
        return {"loss": float(self.model.train_on_batch(self.x, self.y, sample_weight=self.w))}

    def time_forward(self):
        return {"loss": float(self.model.test_on_batch(self.x, self.y, sample_weight=self.w))}

    def info(self):
        return {**memory(), **device_memory()}


def fine_buckets(max_length: int, smallest: int = 16) -> tuple[int, ...]:
    """Bucket lengths in steps of sqrt(2), rounded up to multiples of 8, then `max_length`.

    ``(16, 24, 32, 48, 64, 96, 128, 184, 256, 368, 512)`` for 512: half the padding of
    powers of two for twice the compiled shapes.
    """
    out, k = [], 0
    while True:
        width = -(-int(np.ceil(smallest * 2 ** (k / 2))) // 8) * 8
        if width >= max_length:
            break
        if not out or width > out[-1]:
            out.append(width)
        k += 1
    return (*out, int(max_length))


class BucketSteps(Case):
    """Suite 2: training steps at each bucket width of an epoch's plan (`TrainBatches`).

    An epoch of a real dataset (thousands of examples) is far too long to time
    repeatedly, and a few dozen examples misrepresent bucketing (leftovers carried up
    to longer buckets dominate). Since a compiled step's cost depends only on its shape,
    the case builds the epoch plans of all `lengths` and times one step per distinct
    width (variant ``width:W``); the suite weighs them by how many batches of each width
    the plan has. Plans: ``library`` (the library's powers of two, what ``softprompt
    train`` uses), ``fine`` (`fine_buckets`) and ``max`` (every batch padded to the
    maximum: what bucketing alone gains, same model and pipeline).
    """

    def __init__(self, model, lengths, batch, prompt_length, target_length, max_length=512,
                 seed=0):
        self.spec, self.lengths, self.batch = model, list(lengths), batch
        self.prompt_length, self.target_length = prompt_length, target_length
        self.max_length, self.seed = max_length, seed

    def setup(self):
        from softprompt.core.text import batching

        vocab = self.spec["vocabulary_size"]
        encoded = batching.Encoded(
            workload.token_rows(self.lengths, vocab, self.seed),
            workload.token_rows([self.target_length] * len(self.lengths), vocab, self.seed + 1),
        )
        schemes = {"library": batching.bucket_lengths(self.max_length),
                   "fine": fine_buckets(self.max_length), "max": (self.max_length,)}
        plans, tokens = {}, {}
        for name, buckets in schemes.items():
            stream = batching.TrainBatches(encoded, self.batch, seed=self.seed,
                                           target_length=self.target_length, buckets=buckets)
            widths = [w for w, _ in stream.plan(0)]
            plans[name] = {int(w): widths.count(w) for w in sorted(set(widths))}
            tokens[name] = sum(w * self.batch for w in widths)
        self.model = prompted(self.spec, self.prompt_length, seed=self.seed)
        self.model.compile(optimizer=_adafactor())
        self.batches = {}
        started = time.perf_counter()
        for width in sorted({w for plan in plans.values() for w in plan}):
            self.batches[width] = train_batch(self.batch, width, self.target_length, vocab,
                                              self.seed + width)
            self.time_width(width)  # compile each shape once, outside the timing
        return {"plans": plans, "padded_input_tokens": tokens,
                "real_input_tokens": sum(self.lengths), "first_steps_s": time.perf_counter()
                - started}

    def time_width(self, width):
        x, y, w = self.batches[int(width)]
        self.model.train_on_batch(x, y, sample_weight=w)


def _label_ids(tokenizer, labels):
    from softprompt.core.text import tokens as tok

    return tok.tokenize(tokenizer, list(labels), add_eos=True)


class LabelEval(Case):
    """Suite 3: rank classification vs generate-then-parse over a label task."""

    def __init__(self, model, lengths, labels, batch, prompt_length, seed=0):
        self.spec, self.lengths, self.labels = model, list(lengths), list(labels)
        self.batch, self.prompt_length, self.seed = batch, prompt_length, seed

    def setup(self):
        tokenizer = workload.WordTokenizer(self.spec["vocabulary_size"])
        self.model = prompted(self.spec, self.prompt_length, seed=self.seed, tokenizer=tokenizer)
        self.texts = workload.random_texts(self.lengths, self.seed)
        # what `evaluate.target_length` decodes for a label task: the longest label + </s>
        self.max_target = max(len(r) for r in _label_ids(tokenizer, self.labels))
        return {"decode_length": self.max_target,
                "label_tokens": [len(r) for r in _label_ids(tokenizer, self.labels)]}

    def time_rank(self):
        from softprompt.core.inference import evaluate as ev

        preds = ev.predict_inputs(self.model, self.texts, "rank",
                                  candidates=[self.labels] * len(self.texts),
                                  batch_size=self.batch)
        return {"predictions": [self.labels.index(p) for p in preds.replica(0)]}

    def time_encode(self):
        """The floor both methods share: the encoder over the same length-bucketed batches."""
        from keras import ops

        from softprompt.core.inference.batched import tokenize_inputs
        from softprompt.core.inference.decoding import compiled_encoder
        from softprompt.core.text.batching import bucket_lengths, inference_plan, pad

        inputs = tokenize_inputs(self.model, self.texts, 512)
        encode = compiled_encoder(self.model)
        # the batches `evaluate` makes (same buckets, same order)
        buckets = bucket_lengths(max(512, max(len(r) for r in inputs)))
        for width, idx in inference_plan([len(r) for r in inputs], self.batch, buckets):
            ids, mask = pad([inputs[i] for i in idx], width)
            out, _ = encode(ids, mask, np.zeros((len(idx),), np.int32))
            ops.convert_to_numpy(out[:, :1, :1])  # wait for the result

    def time_generate(self):
        from softprompt.core.inference import evaluate as ev

        preds = ev.predict_inputs(self.model, self.texts, "decode", batch_size=self.batch,
                                  max_target_length=self.max_target)
        parsed = [t.strip() for t in preds.replica(0)]
        return {"predictions": [self.labels.index(t) if t in self.labels else -1 for t in parsed]}


class Serving(Case):
    """Suite 4: a batch mixing prompts vs one prompt; an N-prompt ensemble in one pass vs N."""

    def __init__(self, model, batch, input_length, prompt_length, target_length, labels,
                 mixed_prompts=4, ensemble_prompts=5, seed=0):
        self.spec, self.batch, self.input_length = model, batch, input_length
        self.prompt_length, self.target_length = prompt_length, target_length
        self.labels, self.seed = list(labels), seed
        self.mixed_prompts, self.ensemble_prompts = mixed_prompts, ensemble_prompts

    def setup(self):
        tokenizer = workload.WordTokenizer(self.spec["vocabulary_size"])
        self.mixed = prompted(self.spec, self.prompt_length, self.mixed_prompts, self.seed)
        self.mixed.compile(optimizer=_adafactor())
        x, _, _ = train_batch(self.batch, self.input_length, self.target_length,
                              self.spec["vocabulary_size"], self.seed)
        self.x_single = dict(x, prompt_ids=np.zeros((self.batch,), np.int32))
        self.x_mixed = dict(x, prompt_ids=(np.arange(self.batch) % self.mixed_prompts)
                            .astype(np.int32))
        self.joint = prompted(self.spec, self.prompt_length, self.ensemble_prompts,
                              self.seed + 1, tokenizer=tokenizer)
        self.texts = workload.random_texts([self.input_length] * self.batch, self.seed)
        return {}

    def time_single(self):
        self.mixed.predict_on_batch(self.x_single)

    def time_mixed(self):
        self.mixed.predict_on_batch(self.x_mixed)

    def _rank(self, inputs, **kwargs):
        from softprompt.core.inference import evaluate as ev

        texts = self.texts[: int(inputs)]
        return ev.predict_inputs(self.joint, texts, "rank", candidates=[self.labels] * len(texts),
                                 batch_size=len(texts), **kwargs)

    def time_ensemble_one_pass(self, inputs):
        """`inputs` texts x N prompts as one batch of ``inputs * N`` rows."""
        preds = self._rank(inputs, replicas=self.ensemble_prompts)
        return {"scores": np.stack(preds.scores).round(3).tolist()}

    def time_ensemble_passes(self, inputs):
        """The same as N batches of `inputs` rows, one prompt each."""
        scores = [np.stack(self._rank(inputs, prompt_ids=[r] * int(inputs)).scores)[:, 0]
                  for r in range(self.ensemble_prompts)]
        return {"scores": np.stack(scores, axis=1).round(3).tolist()}


def decoded_steps(tokens) -> int:
    """How many steps a greedy decode of `tokens` ran: up to the last row's ``</s>``, or all."""
    from softprompt.core.text.tokens import EOS_ID as eos

    tokens = np.asarray(tokens)
    ends = [int(np.argmax(row == eos)) + 1 if (row == eos).any() else len(row) for row in tokens]
    return max(ends, default=0)


class Decode(Case):
    """Suite 5: greedy decoding with the key/value cache and without it."""

    def __init__(self, batch, input_length, prompt, model=None, hf_dir=None, seed=0):
        self.spec, self.hf_dir = model, hf_dir
        self.batch, self.input_length, self.prompt_path, self.seed = (
            batch, input_length, prompt, seed)

    def setup(self):
        from softprompt.core.text.batching import pad

        array = np.load(self.prompt_path)
        self.model = prompted(self.spec, array.shape[0], hf_dir=self.hf_dir)
        self.model.load_prompt(array)
        vocab = self.model.backbone.vocabulary_size
        rows = workload.token_rows([self.input_length] * self.batch, vocab, self.seed)
        self.ids, self.mask = pad(rows)
        return {}

    def _decode(self, length, use_cache):
        from softprompt.core.inference.decoding import greedy_tokens

        out = greedy_tokens(self.model, self.ids, self.mask, max_length=int(length),
                            use_cache=use_cache)
        return {"tokens": np.asarray(out).tolist(), "steps": decoded_steps(out)}

    def time_cached(self, length):
        return self._decode(length, True)

    def time_uncached(self, length):
        return self._decode(length, False)


class BuiltinLabelEval(Case):
    """Suite 3 on a trained model: the embedded ``softprompt_tiny`` with the built-in task.

    Random weights never generate a label, so agreement between rank classification
    and generate-then-parse is checked here: the embedded model with the demo's text
    instruction as its prompt (prompt design) answers the 6-food ``animal_food``
    task, so most generations parse to a label.
    """

    def __init__(self, examples, batch, seed=0):
        self.count, self.batch, self.seed = examples, batch, seed

    def setup(self):
        from softprompt import PromptedT5
        from softprompt.core import demo
        from softprompt.core.inference import evaluate as ev

        self.task = demo.task()
        examples = list(self.task.read(str(demo.DATA), "validation"))
        self.examples = examples[: self.count]
        model = PromptedT5.from_preset(demo.PRESET, prompt_length=1, seed=self.seed)
        self.model = demo.with_instruction(model)
        self.labels = list(self.task.labels)
        return {"decode_length": ev.target_length(self.model.tokenizer, self.task),
                "labels": len(self.labels)}

    def _predict(self, method):
        from softprompt.core.inference import evaluate as ev

        preds = ev.predict_examples(self.model, self.task, self.examples, method,
                                    batch_size=self.batch, max_input_length=64)
        parsed = [self.task.postprocess(t, ex) for t, ex in zip(preds.replica(0), self.examples)]
        return {"predictions": [self.labels.index(p) if p in self.labels else -1
                                for p in parsed]}

    def time_rank(self):
        return self._predict("rank")

    def time_generate(self):
        return self._predict("decode")

    def time_encode(self):
        from keras import ops

        from softprompt.core.inference.batched import tokenize_inputs
        from softprompt.core.inference.decoding import compiled_encoder
        from softprompt.core.text.batching import bucket_lengths, inference_plan, pad

        inputs = tokenize_inputs(self.model, [self.task.format(ex)[0] for ex in self.examples],
                                 64)
        encode = compiled_encoder(self.model)
        buckets = bucket_lengths(max(64, max(len(r) for r in inputs)))
        for width, idx in inference_plan([len(r) for r in inputs], self.batch, buckets):
            ids, mask = pad([inputs[i] for i in idx], width)
            out, _ = encode(ids, mask, np.zeros((len(idx),), np.int32))
            ops.convert_to_numpy(out[:, :1, :1])


class ModelTuningStep(Case):
    """Model tuning's train step: every weight of a T5 trains (`softprompt train --method
    model-tuning`): `whole_model` (no prompt, the backbone trainable), Adafactor as T5X
    fine-tunes (`softprompt.core.training.methods`), `train_on_batch` as the loop calls it.

    The backbone is its own (the shared `backbone_for` ones stay frozen for the other cases).
    """

    def __init__(self, model, batch, input_length, target_length, seed=0):
        self.spec, self.batch = model, batch
        self.input_length, self.target_length, self.seed = input_length, target_length, seed

    def setup(self):
        import keras

        from softprompt import backends
        from softprompt.core.pretraining.scratch import build_backbone
        from softprompt.core.training.adafactor import Adafactor
        from softprompt.core.training.methods import METHODS
        from softprompt.core.training.task_job import whole_model

        started = time.perf_counter()
        backbone = build_backbone(self.spec["vocabulary_size"], self.spec["config"],
                                  self.spec["style"], seed=self.seed)
        self.model = whole_model(backbone, tokenizer=None)
        method = METHODS["model-tuning"]
        self.model.compile(optimizer=Adafactor(learning_rate=method.lr, **method.adafactor))
        self.model.optimizer.build(self.model.trainable_variables)
        backends.current().prepare_full_training(self.model)
        self.x, self.y, self.w = train_batch(self.batch, self.input_length, self.target_length,
                                             self.spec["vocabulary_size"], self.seed)
        build_s = time.perf_counter() - started
        before, first_step_s = first_step(self.model, self.x, self.y, self.w)
        return {"build_s": build_s, "first_step_s": first_step_s,
                "rss_before_steps_mb": before, "backend": keras.backend.backend(),
                "jit_compile": bool(self.model.jit_compile),
                "trainable_parameters": int(sum(int(np.prod(v.shape))
                                                for v in self.model.trainable_variables))}

    def time_step(self):
        return {"loss": float(self.model.train_on_batch(self.x, self.y, sample_weight=self.w))}

    def info(self):
        return {**memory(), **device_memory()}
