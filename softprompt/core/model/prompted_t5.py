"""`PromptedT5`: a frozen keras-hub T5 with a trainable soft prompt in front of the encoder.

This module is the network: loading, the prompt in front of the encoder, the
encoder and decoder stacks, the LM head, its config. The class's other parts
live beside it, one job each: the loss and `compile` (`objective`), prompt
identity and prompt files (`identity`), copies over the same backbone
(`copies`), dropout (`dropout`). Generation and scoring are the inference
room's (`softprompt.core.inference.batched`), over the pieces this class
exposes (`call_encoder`, `call_decoder`, `call_decoder_step`,
`cross_attention_caches`, `logits`), as keras-hub keeps ``generate`` on the
task, over the backbone.
"""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
from keras import ops

from softprompt import backends
from softprompt.core.interop.presets import resolve_preset
from softprompt.core.model.copies import PromptCopies
from softprompt.core.model.dropout import set_dropout
from softprompt.core.model.identity import PromptIdentity
from softprompt.core.model.init import INITS, initial_prompt
from softprompt.core.model.objective import Seq2SeqObjective
from softprompt.core.model.prompt import SoftPrompt
from softprompt.core.model.t5_blocks import (
    layer_norm,
    lm_head,
    output_kernel,
    project,
    transformer_layer,
)


@keras.saving.register_keras_serializable(package="softprompt")
class PromptedT5(PromptIdentity, PromptCopies, Seq2SeqObjective, keras.Model):
    """Prompt tuning (Lester et al., 2021) over a frozen keras-hub `T5Backbone`.

    The encoder sees ``[prompt ; token embeddings]`` with its padding mask
    extended by ones; the decoder and the LM head are T5's (tied embeddings:
    hidden states scaled by ``hidden_dim**-0.5``; untied: the separate output
    matrix). Only ``model.prompt.embeddings``, shape
    ``(num_prompts, prompt_length, hidden_dim)``, is trainable (model tuning makes the
    backbone trainable instead, on a copy with no prompt:
    `softprompt.core.training.task_job.whole_model`). Each example
    chooses its prompt with ``prompt_ids`` (default 0), so one model serves
    single tasks, mixed-task batches and ensembles alike.

    Prompts of different lengths can share the variable (`prompt_lengths`): a
    prompt shorter than the variable is stored right-aligned and its leading
    positions are masked out. T5 has only relative position biases, so this
    gives exactly the result of the shorter prompt alone (see `with_prompts`);
    a length of 0 is no prompt at all (see `without_prompt`).

    Args:
        backbone: a keras-hub `T5Backbone`; it is frozen (``trainable=False``).
        prompt_length: int. P, the number of virtual tokens (paper: 100).
        num_prompts: int. How many prompts the variable holds.
        init: one of ``uniform``, ``sampled-vocab``, ``class-labels``,
            ``text``, ``file`` (see `softprompt.core.model.init`).
        init_labels: label strings for ``class-labels``.
        init_text: text for ``text``.
        init_file: a prompt file (or array) for ``file``.
        init_range: half-width of the ``uniform`` range (paper: 0.5).
        seed: seeds the initializer; the same seed gives the same prompt on
            every backend.
        tokenizer: the backbone's `T5Tokenizer` (needed by the vocabulary
            based initializers and by generation and scoring).
        z_loss: coefficient of T5X's z-loss in the default loss.
        prompt_lengths: the length of each prompt, 0..`prompt_length`
            (default: all `prompt_length`).
        skip_init: leave the prompt variable at zeros (weights follow).

    Example:
        >>> model = PromptedT5.from_preset("softprompt_tiny", prompt_length=20,
        ...                                init="class-labels", init_labels=["yes", "no"])
        >>> model.compile(optimizer=softprompt.Adafactor(learning_rate=0.3))   # + z-loss
        >>> model.fit(x, y, sample_weight=target_mask, batch_size=32)
        >>> softprompt.generate(model, ["review: a fine film"], max_length=4)
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
        self.prompt = SoftPrompt(
            self.prompt_length, backbone.hidden_dim, self.num_prompts, name="prompt"
        )
        self._set_prompt_lengths(prompt_lengths)
        if init != "zeros" and not skip_init:
            self.prompt.embeddings.assign(
                initial_prompt(
                    init,
                    self.backbone.token_embedding.embeddings,
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
    def from_preset(cls, preset, *, init=None, dtype=None, load_weights=True, dropout=None,
                    **kwargs):
        """Load a frozen T5 backbone and its tokenizer from a preset, add a prompt.

        `preset` is anything keras-hub accepts (a built-in name, a
        ``kaggle://`` or ``hf://`` handle, a local preset directory) or the
        name of a preset shipped with softprompt. `kwargs` are the
        constructor's (``prompt_length``, ``num_prompts``, ``init_labels``,
        ``init_text``, ``init_file``, ``seed``, ...). With ``init=None`` the
        initializer is ``class-labels`` when `init_labels` is given, ``text``
        when `init_text` is, ``file`` when `init_file` is, else
        ``sampled-vocab``. `dropout` overrides the backbone's dropout rate
        (used only when ``training=True``; the official runs used 0.1).
        ``dtype="bfloat16"`` (or ``"mixed_bfloat16"``) runs the frozen backbone in
        bfloat16 with float32 layer norms, softmax and logits (`softprompt.core.model.t5_blocks`);
        the prompt stays float32.

        Example:
            >>> model = PromptedT5.from_preset("./my-t5-base-lm-adapt", prompt_length=100,
            ...                                init_labels=["True", "False"], seed=0)
        """
        if init is None:
            init = (
                "class-labels" if kwargs.get("init_labels") else
                "text" if kwargs.get("init_text") else
                "file" if kwargs.get("init_file") is not None else
                "sampled-vocab"
            )
        handle = resolve_preset(preset)
        overrides = {} if dropout is None else {"dropout": float(dropout)}
        backbone = keras_hub.models.T5Backbone.from_preset(
            handle, load_weights=load_weights, dtype=dtype, **overrides
        )
        tokenizer = keras_hub.models.T5Tokenizer.from_preset(handle)
        model = cls(backbone, init=init, tokenizer=tokenizer, **kwargs)
        model.preset = str(preset)
        backends.current().release_freed_memory()  # loading's temporaries: see `compile`
        return model

    @property
    def tokenizer(self):
        return self._tokenizer[0]

    @tokenizer.setter
    def tokenizer(self, value):
        self._tokenizer = [value]

    # ------------------------------------------------------------------ network
    def _set_prompt_lengths(self, lengths):
        if lengths is None:
            lengths = [self.prompt_length] * self.num_prompts
        lengths = [int(n) for n in lengths]
        if len(lengths) != self.num_prompts or not all(0 <= n <= self.prompt_length for n in lengths):
            raise ValueError(
                f"prompt_lengths {lengths} must give one length in 0..{self.prompt_length} "
                f"for each of the {self.num_prompts} prompts"
            )
        self.prompt_lengths = lengths
        positions = np.arange(self.prompt_length)[None, :]
        starts = self.prompt_length - np.asarray(lengths)[:, None]
        self._prompt_mask = (positions >= starts).astype("int32")  # (N, P)
        self._full_prompts = all(n == self.prompt_length for n in lengths)

    @property
    def prompt_mask(self) -> np.ndarray:
        """Which positions of each prompt the encoder sees: int32 ``(num_prompts, prompt_length)``.

        Compiled inference functions read it as a constant, so it is part of their cache key.
        """
        return self._prompt_mask

    @property
    def full_prompts(self) -> bool:
        """Whether every prompt fills the variable (no position is masked out)."""
        return self._full_prompts

    def call_encoder(self, token_ids, padding_mask, prompt_ids=None, training=False):
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
        x = _run_stack(bb.encoder_transformer_layers, x, mask[:, None, :], causal=False,
                       training=training)
        x = layer_norm(bb.encoder_layer_norm, x)
        x = bb.encoder_dropout(x, training=training)
        return x, mask

    def call_decoder(self, encoder_output, encoder_mask, decoder_token_ids,
                     decoder_padding_mask=None, training=False, cross_attention_caches=None):
        """Run T5's decoder over the encoder output; returns the final hidden states.

        `cross_attention_caches` (optional, from `cross_attention_caches`) gives each
        layer's keys/values of the encoder output, used instead of projecting
        `encoder_output` again: rank classification computes them once per input and
        shares them between its candidates.
        """
        bb = self.backbone
        x = bb.token_embedding(decoder_token_ids)
        x = bb.decoder_embedding_dropout(x, training=training)
        if decoder_padding_mask is None:
            decoder_padding_mask = ops.ones_like(decoder_token_ids)
        self_mask = ops.cast(decoder_padding_mask, "int32")[:, None, :]
        cross_mask = ops.cast(encoder_mask, "int32")[:, None, :]
        x = _run_stack(bb.decoder_transformer_layers, x, self_mask, causal=True,
                       training=training, encoder_output=encoder_output, cross_mask=cross_mask,
                       cross_attention_caches=cross_attention_caches)
        x = layer_norm(bb.decoder_layer_norm, x)
        return bb.decoder_dropout(x, training=training)

    def decoder_cache_shapes(self, batch: int, source_length: int, target_length: int):
        """Shapes of one decoder layer's self- and cross-attention caches (keras-hub's layout:
        ``(batch, 2, length, heads, head_dim)``, keys then values)."""
        bb = self.backbone
        head_dim = bb.key_value_dim or bb.hidden_dim // bb.num_heads
        self_shape = (batch, 2, target_length, bb.num_heads, head_dim)
        cross_shape = (batch, 2, source_length, bb.num_heads, head_dim)
        return self_shape, cross_shape

    def call_decoder_step(self, encoder_output, cross_mask, step_ids, self_caches, index,
                          cross_caches, build_cross_cache, output_kernel=None):
        """One cached decoder step: ``(logits, self_caches, cross_caches)`` for `step_ids`.

        `step_ids` ``(batch, 1)`` is the token at position `index`; the caches are
        tuples with one tensor per layer (`decoder_cache_shapes`), which spares a
        copy of every cache at every step. On the first step (`build_cross_cache`)
        the encoder's keys and values are projected into `cross_caches`; later steps
        read them. `output_kernel` is the LM head's matrix (`output_kernel`), which a
        decoding loop computes once. The arithmetic is keras-hub's.
        """
        bb = self.backbone
        x = bb.token_embedding(step_ids)
        new_self, new_cross = [], []
        position_bias = None
        for i, layer in enumerate(bb.decoder_transformer_layers):
            x, position_bias, layer_self, layer_cross = transformer_layer(
                layer,
                x,
                position_bias=position_bias,
                encoder_hidden_states=encoder_output,
                encoder_attention_mask=cross_mask,
                use_causal_mask=True,
                self_attention_cache=self_caches[i],
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_caches[i],
                cross_attention_cache_update_index=0 if build_cross_cache else None,
            )
            new_self.append(layer_self)
            new_cross.append(layer_cross)
        x = layer_norm(bb.decoder_layer_norm, x)
        return self.logits(x, output_kernel), tuple(new_self), tuple(new_cross)

    def cross_attention_caches(self, encoder_output):
        """Each decoder layer's cross-attention keys and values of `encoder_output`.

        A tuple with one ``(batch, 2, source_length, heads, head_dim)`` tensor per
        layer (keras-hub's T5 cache layout: keys, then values), for `call_decoder`.
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

    def logits(self, hidden_states, output_kernel=None):
        """T5's LM head in float32 (`t5_blocks.lm_head`): tied embeddings scale by
        ``hidden_dim**-0.5`` first. `output_kernel`: the head's matrix, if computed
        already (`output_kernel`)."""
        return lm_head(self.backbone, hidden_states, output_kernel)

    def output_kernel(self):
        """The LM head's float32 ``(hidden_dim, vocab)`` matrix (`t5_blocks.output_kernel`)."""
        return output_kernel(self.backbone)

    def call(self, inputs, training=False):
        encoder_output, encoder_mask = self.call_encoder(
            inputs["encoder_token_ids"],
            inputs["encoder_padding_mask"],
            inputs.get("prompt_ids"),
            training=training,
        )
        hidden = self.call_decoder(
            encoder_output,
            encoder_mask,
            inputs["decoder_token_ids"],
            inputs.get("decoder_padding_mask"),
            training=training,
        )
        return self.logits(hidden)

    def set_dropout(self, rate: float, seed: int | None = None) -> None:
        """Set the backbone's dropout rate (`softprompt.core.model.dropout.set_dropout`)."""
        set_dropout(self.backbone, rate, seed)

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


def _run_stack(layers, x, attention_mask, *, causal: bool, training: bool,
               encoder_output=None, cross_mask=None, cross_attention_caches=None):
    """Run T5 layers in order; the first computes the relative position bias, the rest reuse it.

    With `encoder_output` the layers also attend to it (the decoder), through
    `cross_attention_caches` (one per layer) when given.
    """
    position_bias = None
    for i, layer in enumerate(layers):
        cross = {}
        if encoder_output is not None:
            cross = {"encoder_hidden_states": encoder_output, "encoder_attention_mask": cross_mask}
            if cross_attention_caches is not None:
                cross["cross_attention_cache"] = cross_attention_caches[i]
        x, position_bias = transformer_layer(
            layer, x, attention_mask=attention_mask, position_bias=position_bias,
            use_causal_mask=causal, training=training, **cross,
        )
    return x
