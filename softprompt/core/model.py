"""`PromptedT5`: a frozen keras-hub T5 with a trainable soft prompt in front of the encoder."""

from __future__ import annotations

import warnings

import keras
import numpy as np
from keras import ops

from softprompt.core import files
from softprompt.core.init import INITS, initial_prompt
from softprompt.core.loss import seq2seq_loss
from softprompt.core.prompt import SoftPrompt
from softprompt.core.t5_blocks import layer_norm, lm_head, project, transformer_layer


@keras.saving.register_keras_serializable(package="softprompt")
class PromptedT5(keras.Model):
    """Prompt tuning (Lester et al., 2021) over a frozen keras-hub `T5Backbone`.

    The encoder sees ``[prompt ; token embeddings]`` with its padding mask
    extended by ones; the decoder and the LM head are T5's (tied embeddings:
    hidden states scaled by ``hidden_dim**-0.5``; untied: the separate output
    matrix). Only ``model.prompt.embeddings``, shape
    ``(num_prompts, prompt_length, hidden_dim)``, is trainable. Each example
    chooses its prompt with ``prompt_ids`` (default 0), so one model serves
    single tasks, mixed-task batches and ensembles alike.

    Prompts of different lengths can share the variable: a prompt shorter than
    the variable is stored right-aligned and its leading positions are masked
    out. T5 has only relative position biases, so this gives exactly the
    result of the shorter prompt alone (see `with_prompts`).

    Args:
        backbone: a keras-hub `T5Backbone`; it is frozen (``trainable=False``).
        prompt_length: int. P, the number of virtual tokens (paper: 100).
        num_prompts: int. How many prompts the variable holds.
        init: one of ``uniform``, ``sampled-vocab``, ``class-labels``,
            ``text``, ``file`` (see `softprompt.core.init`).
        init_labels: label strings for ``class-labels``.
        init_text: text for ``text``.
        init_file: a prompt file (or array) for ``file``.
        init_range: half-width of the ``uniform`` range (paper: 0.5).
        seed: seeds the initializer; the same seed gives the same prompt on
            every backend.
        tokenizer: the backbone's `T5Tokenizer` (needed by the vocabulary
            based initializers, `generate` and `score`).
        z_loss: coefficient of T5X's z-loss in the default loss.

    Example:
        >>> model = PromptedT5.from_preset("softprompt_tiny", prompt_length=20,
        ...                                init="class-labels", init_labels=["yes", "no"])
        >>> model.compile()                        # Adafactor, lr 0.3, + z-loss
        >>> model.fit(x, y, sample_weight=target_mask, batch_size=32)
        >>> model.generate(["review: a fine film"], max_length=4)
    """

    def __init__(
        self,
        backbone,
        prompt_length=100,
        num_prompts=1,
        init="uniform",
        init_labels=None,
        init_text=None,
        init_file=None,
        init_range=0.5,
        seed=None,
        tokenizer=None,
        z_loss=1e-4,
        prompt_lengths=None,
        skip_init=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if init not in INITS and init != "zeros":
            raise ValueError(f"unknown prompt init {init!r}: expected one of {', '.join(INITS)}")
        backbone.trainable = False
        self.backbone = backbone
        self._tokenizer = [tokenizer]  # kept out of keras' layer tracking
        self.prompt_length = int(prompt_length)
        self.num_prompts = int(num_prompts)
        self.init = init
        self.init_labels = list(init_labels) if init_labels is not None else None
        self.init_text = init_text
        self.init_range = float(init_range)
        self.seed = seed
        self.z_loss = float(z_loss)
        self.preset = None
        self._softprompt_loss = True
        self.prompt = SoftPrompt(
            self.prompt_length, backbone.hidden_dim, self.num_prompts, name="prompt"
        )
        self._set_prompt_lengths(prompt_lengths)
        if init != "zeros" and not skip_init:
            self.prompt.embeddings.assign(
                initial_prompt(
                    init,
                    self.embedding_matrix(),
                    tokenizer,
                    length=self.prompt_length,
                    num_prompts=self.num_prompts,
                    seed=seed,
                    labels=init_labels,
                    text=init_text,
                    file=init_file,
                    init_range=init_range,
                )
            )

    def build(self, input_shape=None):
        # The backbone comes built and the prompt variable is created eagerly.
        self.built = True

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_preset(
        cls,
        preset,
        prompt_length=100,
        num_prompts=1,
        init=None,
        init_labels=None,
        init_text=None,
        init_file=None,
        seed=None,
        dtype=None,
        load_weights=True,
        dropout=None,
        **kwargs,
    ):
        """Load a frozen T5 backbone and its tokenizer from a preset, add a prompt.

        `preset` is anything keras-hub accepts (a built-in name, a
        ``kaggle://`` or ``hf://`` handle, a local preset directory) or the
        name of a preset shipped with softprompt. With ``init=None`` the
        initializer is ``class-labels`` when `init_labels` is given, ``text``
        when `init_text` is, ``file`` when `init_file` is, else
        ``sampled-vocab``. `dropout` overrides the backbone's dropout rate
        (used only when ``training=True``; the official runs used 0.1).
        ``dtype="bfloat16"`` (or ``"mixed_bfloat16"``) runs the frozen backbone in
        bfloat16 with float32 layer norms, softmax and logits (`softprompt.core.t5_blocks`);
        the prompt stays float32.

        Example:
            >>> model = PromptedT5.from_preset("./t5_lm_adapt_base", prompt_length=100,
            ...                                init_labels=["True", "False"], seed=0)
        """
        import keras_hub

        from softprompt.core.presets import resolve_preset

        if init is None:
            init = (
                "class-labels" if init_labels else
                "text" if init_text else
                "file" if init_file is not None else
                "sampled-vocab"
            )
        handle = resolve_preset(preset)
        overrides = {} if dropout is None else {"dropout": float(dropout)}
        backbone = keras_hub.models.T5Backbone.from_preset(
            handle, load_weights=load_weights, dtype=dtype, **overrides
        )
        tokenizer = keras_hub.models.T5Tokenizer.from_preset(handle)
        model = cls(
            backbone,
            prompt_length=prompt_length,
            num_prompts=num_prompts,
            init=init,
            init_labels=init_labels,
            init_text=init_text,
            init_file=init_file,
            seed=seed,
            tokenizer=tokenizer,
            **kwargs,
        )
        model.preset = str(preset)
        return model

    @property
    def tokenizer(self):
        return self._tokenizer[0]

    @tokenizer.setter
    def tokenizer(self, value):
        self._tokenizer = [value]

    # ------------------------------------------------------------------ network
    def embedding_matrix(self) -> np.ndarray:
        """The backbone's input token embeddings as a float32 numpy array."""
        return np.asarray(
            ops.convert_to_numpy(self.backbone.token_embedding.embeddings), np.float32
        )

    def _set_prompt_lengths(self, lengths):
        if lengths is None:
            lengths = [self.prompt_length] * self.num_prompts
        lengths = [int(n) for n in lengths]
        if len(lengths) != self.num_prompts or not all(1 <= n <= self.prompt_length for n in lengths):
            raise ValueError(
                f"prompt_lengths {lengths} must give one length in 1..{self.prompt_length} "
                f"for each of the {self.num_prompts} prompts"
            )
        self.prompt_lengths = lengths
        positions = np.arange(self.prompt_length)[None, :]
        starts = self.prompt_length - np.asarray(lengths)[:, None]
        self._prompt_mask = (positions >= starts).astype("int32")  # (N, P)
        self._full_prompts = all(n == self.prompt_length for n in lengths)

    def encode(self, token_ids, padding_mask, prompt_ids=None, training=False):
        """Run the encoder on ``[prompt ; tokens]``.

        Returns ``(encoder_output, encoder_mask)``, both including the P
        prompt positions.
        """
        bb = self.backbone
        batch = ops.shape(token_ids)[0]
        if prompt_ids is None:
            prompt_ids = ops.zeros((batch,), "int32")
        prompt_ids = ops.cast(prompt_ids, "int32")
        x = bb.token_embedding(token_ids)
        prompt = ops.cast(self.prompt(prompt_ids), x.dtype)
        x = ops.concatenate([prompt, x], axis=1)
        padding_mask = ops.cast(padding_mask, "int32")
        if self._full_prompts:
            prompt_mask = ops.ones((batch, self.prompt_length), "int32")
        else:
            prompt_mask = ops.take(ops.convert_to_tensor(self._prompt_mask), prompt_ids, axis=0)
        mask = ops.concatenate([prompt_mask, padding_mask], axis=1)
        x = bb.encoder_embedding_dropout(x, training=training)
        attention_mask = mask[:, None, :]
        position_bias = None
        for layer in bb.encoder_transformer_layers:
            x, position_bias = transformer_layer(
                layer,
                x,
                attention_mask=attention_mask,
                position_bias=position_bias,
                use_causal_mask=False,
                training=training,
            )
        x = layer_norm(bb.encoder_layer_norm, x)
        x = bb.encoder_dropout(x, training=training)
        return x, mask

    def decode(self, encoder_output, encoder_mask, decoder_token_ids, decoder_padding_mask=None,
               training=False, cross_attention_caches=None):
        """Run T5's decoder over the encoder output; returns the final hidden states.

        `cross_attention_caches` (optional, from `cross_attention_caches`) gives each
        layer's keys/values of the encoder output, used instead of projecting
        `encoder_output` again: rank classification computes them once per input and
        shares them between its candidates (performance, issue 9).
        """
        bb = self.backbone
        x = bb.token_embedding(decoder_token_ids)
        x = bb.decoder_embedding_dropout(x, training=training)
        if decoder_padding_mask is None:
            decoder_padding_mask = ops.ones_like(decoder_token_ids)
        self_mask = ops.cast(decoder_padding_mask, "int32")[:, None, :]
        cross_mask = ops.cast(encoder_mask, "int32")[:, None, :]
        position_bias = None
        for i, layer in enumerate(bb.decoder_transformer_layers):
            cached = {} if cross_attention_caches is None else {
                "cross_attention_cache": cross_attention_caches[i]}
            x, position_bias = transformer_layer(
                layer,
                x,
                attention_mask=self_mask,
                position_bias=position_bias,
                encoder_hidden_states=encoder_output,
                encoder_attention_mask=cross_mask,
                use_causal_mask=True,
                training=training,
                **cached,
            )
        x = layer_norm(bb.decoder_layer_norm, x)
        return bb.decoder_dropout(x, training=training)

    def cross_attention_caches(self, encoder_output):
        """Each decoder layer's cross-attention keys and values of `encoder_output`.

        A tuple with one ``(batch, 2, source_length, heads, head_dim)`` tensor per
        layer (keras-hub's T5 cache layout: keys, then values), for `decode`.
        """
        batch = ops.shape(encoder_output)[0]
        caches = []
        for layer in self.backbone.decoder_transformer_layers:
            attention = layer.cross_attention
            heads = (batch, -1, attention.num_heads, attention.key_value_dim)
            keys = ops.reshape(project(attention.key_projector, encoder_output), heads)
            values = ops.reshape(project(attention.value_projector, encoder_output), heads)
            caches.append(ops.stack([keys, values], axis=1))
        return tuple(caches)

    def logits(self, hidden_states):
        """T5's LM head in float32 (`t5_blocks.lm_head`): tied embeddings scale by
        ``hidden_dim**-0.5`` first."""
        return lm_head(self.backbone, hidden_states)

    def call(self, inputs, training=False):
        encoder_output, encoder_mask = self.encode(
            inputs["encoder_token_ids"],
            inputs["encoder_padding_mask"],
            inputs.get("prompt_ids"),
            training=training,
        )
        hidden = self.decode(
            encoder_output,
            encoder_mask,
            inputs["decoder_token_ids"],
            inputs.get("decoder_padding_mask"),
            training=training,
        )
        return self.logits(hidden)

    # ------------------------------------------------------------------ training
    def compile(self, optimizer=None, loss=None, z_loss=None, **kwargs):
        """Compile with the paper's defaults.

        ``optimizer=None`` is `softprompt.Adafactor` at constant lr 0.3;
        ``loss=None`` is masked token cross-entropy plus z-loss (coefficient
        `z_loss`, default the model's, 1e-4; 0 turns it off). Other keras
        `compile` arguments pass through; `jit_compile` defaults to the
        backend adapter's choice.
        """
        from softprompt import backends

        if optimizer is None:
            from softprompt.core.adafactor import Adafactor

            optimizer = Adafactor(learning_rate=0.3)
        if z_loss is not None:
            self.z_loss = float(z_loss)
        self._softprompt_loss = loss is None
        kwargs.setdefault("jit_compile", backends.current().default_jit_compile)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self._softprompt_loss:
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        loss = seq2seq_loss(y, y_pred, sample_weight, self.z_loss)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def set_dropout(self, rate: float, seed: int | None = None) -> None:
        """Set the backbone's dropout rate (applied only when ``training=True``).

        Call it before `compile`/`fit`. The official prompt-tuning runs used 0.1.
        """
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        for i, layer in enumerate(self.backbone._flatten_layers(include_self=False)):
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = float(rate)
                if rate > 0 and getattr(layer, "seed_generator", None) is None:
                    # keras only creates the generator for a non-zero rate at
                    # construction; add it as tracked state of the built layer.
                    layer._tracker.unlock()
                    try:
                        layer.seed_generator = keras.random.SeedGenerator(
                            None if seed is None else seed + i
                        )
                    finally:
                        layer._tracker.lock()

    # ------------------------------------------------------------------ prompts
    def identity(self) -> dict:
        """What identifies the frozen model a prompt belongs to (for sidecars)."""
        emb = self.embedding_matrix()
        return {
            "preset": self.preset,
            "hidden_dim": int(self.backbone.hidden_dim),
            "vocabulary_size": int(self.backbone.vocabulary_size),
            "embedding_fingerprint": files.embedding_fingerprint(emb),
        }

    def save_prompt(self, path, **metadata):
        """Save the prompt variable (``(P, d)`` when it holds one prompt) with a sidecar."""
        array = ops.convert_to_numpy(self.prompt.embeddings)
        if self.num_prompts == 1:
            array = array[0]
        meta = {"backbone": self.identity(), "prompt_length": self.prompt_length,
                "init": self.init}
        meta.update(metadata)
        return files.save_prompt(path, array, **meta)

    def load_prompt(self, path_or_array, metadata=None) -> dict:
        """Load a prompt file (or array) into the variable; returns its metadata.

        A different hidden size or prompt shape is a `ValueError`; a sidecar
        naming another backbone (embedding fingerprint) warns with both.
        """
        if isinstance(path_or_array, np.ndarray):
            array, meta, where = path_or_array, metadata or {}, "prompt array"
            files.check_finite(array, where)
        else:
            array, meta = files.load_prompt(path_or_array)
            where = f"prompt file {path_or_array}"
        self.check_compatible(array, meta, where)
        if array.ndim == 2:
            array = array[None]
        expected = tuple(self.prompt.embeddings.shape)
        if tuple(array.shape) != expected:
            raise ValueError(f"{where} has shape {array.shape}, the model's prompt is {expected}")
        self.prompt.embeddings.assign(array.astype("float32"))
        return meta

    def check_compatible(self, array, meta, where="prompt"):
        """Raise if `array` cannot feed this backbone; warn if its sidecar names another."""
        dim = int(self.backbone.hidden_dim)
        if array.shape[-1] != dim:
            raise ValueError(
                f"{where} has hidden size {array.shape[-1]}, the model's is {dim} "
                f"(shape {tuple(array.shape)})"
            )
        theirs = (meta or {}).get("backbone", {}).get("embedding_fingerprint")
        if theirs:
            ours = self.identity()["embedding_fingerprint"]
            if theirs != ours:
                warnings.warn(
                    f"{where} was trained on backbone {meta['backbone'].get('preset')!r} "
                    f"(fingerprint {theirs}), this model is {self.preset!r} (fingerprint {ours})",
                    stacklevel=3,
                )

    def with_prompts(self, prompts) -> PromptedT5:
        """A model over the same frozen backbone holding `prompts` (for serving and ensembles).

        `prompts` is a list of ``(P_i, d)`` arrays (lengths may differ) or one
        ``(N, P, d)`` array. No backbone weights are copied.

        Example:
            >>> ensemble = model.with_prompts([load_prompt(f)[0] for f in files])
            >>> ensemble(inputs | {"prompt_ids": ids})
        """
        if isinstance(prompts, np.ndarray) and prompts.ndim == 3:
            prompts = list(prompts)
        prompts = [np.asarray(p, np.float32) for p in prompts]
        if not prompts:
            raise ValueError("with_prompts needs at least one prompt")
        for i, p in enumerate(prompts):
            self.check_compatible(p, {}, f"prompt {i}")
        lengths = [p.shape[0] for p in prompts]
        width = max(lengths)
        stacked = np.zeros((len(prompts), width, self.backbone.hidden_dim), np.float32)
        for i, p in enumerate(prompts):
            stacked[i, width - p.shape[0]:] = p
        model = PromptedT5(
            self.backbone, prompt_length=width, num_prompts=len(prompts), init="zeros",
            tokenizer=self.tokenizer, z_loss=self.z_loss, prompt_lengths=lengths,
        )
        model.preset = self.preset
        model.prompt.embeddings.assign(stacked)
        return model

    def without_prompt(self) -> PromptedT5:
        """A model over the same frozen backbone whose encoder sees no prompt at all.

        It holds one prompt (use the default ``prompt_ids``, 0) whose one position
        is masked out everywhere; T5 has only relative position biases, so it
        computes exactly what the bare backbone does (the "no prompt" baseline).
        No backbone weights are copied.

        Example:
            >>> model.without_prompt().generate(["the red fox ran."], max_length=4)
        """
        model = self.with_prompts([np.zeros((1, self.backbone.hidden_dim), np.float32)])
        model._prompt_mask = np.zeros_like(model._prompt_mask)
        model._full_prompts = False
        return model

    # ------------------------------------------------------------------ inference
    def generate(self, texts, max_length=32, prompt_ids=None, batch_size=32,
                 max_input_length=None):
        """Greedy decoding with the key/value cache; returns one string per text.

        Example:
            >>> model.generate(["passage: ... question: ..."], max_length=4)
            ['True']
        """
        from softprompt.core.decode import generate

        return generate(self, texts, max_length=max_length, prompt_ids=prompt_ids,
                        batch_size=batch_size, max_input_length=max_input_length)

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "prompt_length": self.prompt_length,
            "num_prompts": self.num_prompts,
            "init": self.init,
            "init_labels": self.init_labels,
            "init_text": self.init_text,
            "init_range": self.init_range,
            "seed": self.seed,
            "z_loss": self.z_loss,
            "prompt_lengths": self.prompt_lengths,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        # Weights follow (load_weights / load_prompt): skip the initializer,
        # which may need a tokenizer or a file that is not at hand.
        return cls(skip_init=True, **config)
