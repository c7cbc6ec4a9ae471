"""One backend's worker: a long-lived process that runs agreement cases.

Started by the harness with ``KERAS_BACKEND`` set (keras fixes its backend
at import, so each backend needs its own process) and kept for the whole
pytest session. It reads pickled requests from stdin and writes pickled
replies to a private copy of its original stdout; anything libraries print
goes to stderr (the harness's log file), so the protocol stream stays clean.

A request is ``{"op": name, ...}``; the reply is ``{"ok": result}`` or
``{"error": traceback}``. Results hold NumPy arrays only. Models are built
from `modelspec` dicts and cached, so a case costs its computation, not a
model build.

Run by hand to debug one backend::

    KERAS_BACKEND=torch python tests/agreement/worker.py < requests.pkl
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import time
import traceback

# One thread per torch / TensorFlow worker: the models are tiny and the three
# workers share the machine. XLA's flags below do not keep the JAX worker on one
# core (a large matmul still uses two), but they do change XLA's CPU code paths:
# the README's agreement table was measured with them, so they stay.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import warnings  # noqa: E402

warnings.filterwarnings("ignore")

import modelspec  # noqa: E402  (this script's directory is sys.path[0])
import numpy as np  # noqa: E402


class Worker:
    def __init__(self):
        import keras

        self.keras = keras
        self.backend = keras.backend.backend()
        if self.backend == "jax" and os.environ.get("SOFTPROMPT_AGREEMENT_LOG_COMPILES"):
            import jax

            jax.config.update("jax_log_compiles", True)
        if self.backend == "torch":
            import torch

            torch.set_num_threads(1)
        self.backbones = {}
        self.models = {}
        self.trainers = {}
        self.presets = {}

    # ------------------------------------------------------------------ models
    # One backbone object per architecture (size, style, vocab); a backbone
    # seed only changes the values assigned into it. One `PromptedT5` per
    # (architecture, P, N, purpose). Compiled train functions therefore
    # depend on shapes only, and a new seed or new prompt values cost an
    # assignment, not a compilation.
    def backbone(self, spec):
        key = modelspec.arch_key(spec)
        if key not in self.backbones:
            from softprompt.core.pretraining.scratch import build_backbone

            arch = modelspec.SIZES[spec["size"]]
            self.backbones[key] = [build_backbone(spec["vocab"], arch, spec["style"], dropout=0.0),
                                   None]
        entry = self.backbones[key]
        if entry[1] != spec["seed"]:
            bb = entry[0]
            hidden = modelspec.SIZES[spec["size"]]["hidden_dim"]
            for i, w in enumerate(bb.weights):
                w.assign(modelspec.weight_array(i, w.path, w.shape, spec["seed"], hidden))
            entry[1] = spec["seed"]
        return entry[0]

    def model(self, spec, prompt=None, purpose="forward"):
        from softprompt.core.model.prompted_t5 import PromptedT5

        key = modelspec.model_key(spec) + (purpose,)
        backbone = self.backbone(spec)
        if key not in self.models:
            self.models[key] = PromptedT5(
                backbone, prompt_length=spec["prompt_length"],
                num_prompts=spec["num_prompts"], init="zeros",
            )
        model = self.models[key]
        if prompt is not None:
            model.prompt.embeddings.assign(np.asarray(prompt, np.float32))
        return model

    @staticmethod
    def inputs(case):
        x = {k: np.asarray(case[k], np.int32) for k in (
            "encoder_token_ids", "encoder_padding_mask", "decoder_token_ids",
            "decoder_padding_mask", "prompt_ids")}
        return x

    def numpy(self, x):
        return np.asarray(self.keras.ops.convert_to_numpy(x))

    # ------------------------------------------------------------------ ops
    def op_hello(self, req):
        import keras_hub

        import softprompt

        return {"backend": self.backend, "keras": self.keras.__version__,
                "keras_hub": keras_hub.__version__, "softprompt": softprompt.__version__,
                "framework": _framework_version(self.backend), "pid": os.getpid()}

    def op_weights(self, req):
        """Fingerprint of the backbone weights and of the prompt, read back from the backend."""
        model = self.fresh_model(req["model"]) if req.get("fresh") else self.model(req["model"])
        if req.get("prompt") is not None:
            model.prompt.embeddings.assign(np.asarray(req["prompt"], np.float32))
        arrays = [self.numpy(w) for w in model.backbone.weights]
        return {"backbone": modelspec.fingerprint(arrays),
                "embedding": modelspec.fingerprint(
                    [self.numpy(model.backbone.token_embedding.embeddings)]),
                "prompt": modelspec.fingerprint([self.numpy(model.prompt.embeddings)])}

    def fresh_model(self, spec):
        """A new backbone and model for `spec`, built from scratch and not cached."""
        from softprompt.core.model.prompted_t5 import PromptedT5
        from softprompt.core.pretraining.scratch import build_backbone

        arch = modelspec.SIZES[spec["size"]]
        bb = build_backbone(spec["vocab"], arch, spec["style"], dropout=0.0, seed=spec["seed"])
        for i, w in enumerate(bb.weights):
            w.assign(modelspec.weight_array(i, w.path, w.shape, spec["seed"], arch["hidden_dim"]))
        return PromptedT5(bb, prompt_length=spec["prompt_length"],
                          num_prompts=spec["num_prompts"], init="zeros")

    def op_forward(self, req):
        """Logits and the loss (token cross-entropy + z-loss, weights = target mask).

        With ``fresh=True`` the model is built from scratch first, and the
        fingerprint of its backbone weights is returned too (determinism).
        """
        from softprompt.core.model.loss import seq2seq_loss

        case = req["case"]
        if req.get("fresh"):
            model = self.fresh_model(case["model"])
            model.prompt.embeddings.assign(np.asarray(case["prompt"], np.float32))
        else:
            model = self.model(case["model"], case["prompt"])
        with self.leaking_mask(req.get("mask_floor")):
            logits = model(self.inputs(case), training=False)
        extra = {}
        if req.get("fresh"):
            extra["backbone"] = modelspec.fingerprint([self.numpy(w) for w in model.backbone.weights])
        loss = seq2seq_loss(np.asarray(case["labels"], np.int32), logits,
                            np.asarray(case["decoder_padding_mask"], np.float32),
                            z_loss=req.get("z_loss", 1e-4))
        return {"logits": self.numpy(logits).astype(np.float32), "loss": float(self.numpy(loss)),
                **extra}

    @contextlib.contextmanager
    def leaking_mask(self, floor):
        """An injected bug, to show that a test catches it: attention masks that leak.

        With `floor` set, every additive attention bias is clipped from below at `floor`
        (e.g. -12) instead of reaching -1e9, as a mask built with too small a constant
        would be: each masked key keeps ``exp(floor)`` of its weight. The forward pass
        runs eagerly, so the patched function is the one called. None: no bug.
        """
        if floor is None:
            yield
            return
        from softprompt.core.model import t5_blocks

        original = t5_blocks.attention_core
        maximum = self.keras.ops.maximum

        def leaky(query, key, value, position_bias, *args, **kwargs):
            return original(query, key, value, maximum(position_bias, float(floor)),
                            *args, **kwargs)

        t5_blocks.attention_core = leaky
        try:
            yield
        finally:
            t5_blocks.attention_core = original

    def op_train(self, req):
        """`steps` x `train_on_batch` on the case's batch; the prompt after each step.

        ``optimizer`` is ``{"name": "sgd", "learning_rate": ...}`` or
        ``{"name": "adafactor", ...Adafactor kwargs}`` (paper defaults); the
        learning rate is assigned per request (the same compiled step serves
        every rate). The
        model is compiled as a user gets it (`PromptedT5.compile`: the backend
        adapter's `jit_compile`), or eagerly with ``eager=True`` (TensorFlow:
        ``run_eagerly``). Each (model, optimizer) pair is compiled once; its
        optimizer state is reset to the freshly built values for every case,
        so the compiled train step is reused across cases of the same shape.
        ``optimizer_state`` (a list in ``optimizer.variables`` order) starts
        from a given state instead; ``return_state`` returns the state after.
        """
        case = req["case"]
        opt = dict(req["optimizer"])
        learning_rate = opt.pop("learning_rate", None)  # a variable: set per case, no recompile
        eager = bool(req.get("eager", False))
        purpose = ("train", repr(sorted(opt.items())), eager, req.get("z_loss", 1e-4))
        model = self.model(case["model"], case["prompt"], purpose=purpose)
        key = modelspec.model_key(case["model"]) + purpose
        if key not in self.trainers:
            optimizer = self.optimizer(opt)
            kwargs = {}
            if eager:
                kwargs["jit_compile"] = False
                kwargs["run_eagerly"] = self.backend == "tensorflow"
            model.compile(optimizer=optimizer, z_loss=req.get("z_loss", 1e-4), **kwargs)
            optimizer.build(model.trainable_variables)
            self.trainers[key] = [self.numpy(v).copy() for v in optimizer.variables]
        state = req.get("optimizer_state") or self.trainers[key]
        for v, value in zip(model.optimizer.variables, state, strict=True):
            v.assign(np.asarray(value).reshape(tuple(v.shape)))
        if learning_rate is not None:
            model.optimizer.learning_rate = float(learning_rate)
        x = self.inputs(case)
        y = np.asarray(case["labels"], np.int32)
        w = np.asarray(case["decoder_padding_mask"], np.float32)
        before = self.numpy(model.prompt.embeddings).copy()
        prompts, losses = [], []
        for _ in range(int(req["steps"])):
            logs = model.train_on_batch(x, y, sample_weight=w, return_dict=True)
            losses.append(float(logs["loss"]))
            prompts.append(self.numpy(model.prompt.embeddings).copy())
        out = {"before": before, "prompts": np.stack(prompts), "losses": np.asarray(losses)}
        if req.get("return_state"):
            out["optimizer_state"] = [self.numpy(v).copy() for v in model.optimizer.variables]
        return out

    def optimizer(self, opt):
        opt = dict(opt)
        name = opt.pop("name")
        if name == "sgd":
            return self.keras.optimizers.SGD(**opt)
        if name == "adafactor":
            from softprompt.core.training.adafactor import Adafactor

            return Adafactor(**opt)
        raise ValueError(f"unknown optimizer {name!r}")

    def op_greedy(self, req):
        from softprompt.core.inference.decoding import greedy_tokens

        case = req["case"]
        model = self.model(case["model"], case["prompt"])
        tokens, margins = greedy_tokens(
            model, case["encoder_token_ids"], case["encoder_padding_mask"], case["prompt_ids"],
            max_length=int(req["max_length"]), use_cache=req.get("use_cache", True),
            return_margins=True,
        )
        return {"tokens": np.asarray(tokens), "margins": np.asarray(margins)}

    def op_score(self, req):
        from softprompt.core.inference.decoding import score_tokens

        case = req["case"]
        model = self.model(case["model"], case["prompt"])
        scores = score_tokens(model, case["encoder_token_ids"], case["encoder_padding_mask"],
                              req["candidates"], case["prompt_ids"])
        return {"scores": np.asarray(scores)}

    def op_build_preset(self, req):
        """Build a tiny preset with a sentencepiece tokenizer (for the initializers)."""
        from softprompt.core.pretraining.scratch import build_preset

        path = build_preset(req["path"], req["texts"], config=req["config"], style=req["style"],
                            vocab_size=req["vocab_size"], seed=req["seed"])
        return {"path": str(path)}

    def op_init(self, req):
        """The initial prompt that `PromptedT5` computes for an init/seed on a preset."""
        import keras_hub

        from softprompt.core.model.prompted_t5 import PromptedT5

        path = req["preset"]
        if path not in self.presets:
            self.presets[path] = (keras_hub.models.T5Backbone.from_preset(path),
                                  keras_hub.models.T5Tokenizer.from_preset(path))
        backbone, tokenizer = self.presets[path]
        model = PromptedT5(backbone, tokenizer=tokenizer, **req["kwargs"])
        return {"prompt": self.numpy(model.prompt.embeddings)}

    def op_batch(self, req):
        """Several requests in one round trip (results in order)."""
        return [self.handle(r) for r in req["requests"]]

    def handle(self, req):
        return getattr(self, "op_" + req["op"])(req)


def _framework_version(backend):
    if backend == "jax":
        import jax

        return jax.__version__
    if backend == "torch":
        import torch

        return torch.__version__
    import tensorflow as tf

    return tf.__version__


def main():
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from libraries go to the log, not the protocol
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    started = time.perf_counter()
    try:
        worker = Worker()
        reply = {"ok": {"ready": worker.backend, "import_s": time.perf_counter() - started},
             "cpu_s": time.process_time()}
    except BaseException:  # report why the backend could not start, then exit
        pickle.dump({"error": traceback.format_exc()}, proto_out, protocol=pickle.HIGHEST_PROTOCOL)
        proto_out.flush()
        return 1
    pickle.dump(reply, proto_out, protocol=pickle.HIGHEST_PROTOCOL)
    proto_out.flush()
    while True:
        try:
            req = pickle.load(proto_in)
        except EOFError:
            return 0
        if req.get("op") == "exit":
            return 0
        started, cpu = time.perf_counter(), time.process_time()
        try:
            reply = {"ok": worker.handle(req)}
        except Exception:
            reply = {"error": traceback.format_exc()}
        reply["seconds"] = time.perf_counter() - started
        reply["cpu_s"] = time.process_time() - cpu
        pickle.dump(reply, proto_out, protocol=pickle.HIGHEST_PROTOCOL)
        proto_out.flush()


if __name__ == "__main__":
    sys.exit(main())
