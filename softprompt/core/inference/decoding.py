"""Greedy decoding and candidate scoring on one padded batch of token ids.

These are the kernels under the one batched inference path
(`softprompt.core.inference.batched`, which tokenizes, buckets and batches):
`greedy_tokens` decodes with T5's key/value cache, `score_tokens` gives the
log-likelihood of candidate targets (rank classification). Both run through
functions the backend adapter compiles (`Adapter.compile_function`), kept on
the model, so repeated calls compile once per shape. A greedy decode is two
such functions, the encoder with the first step and the loop over the other
positions (`keras.ops.while_loop`): the tokens are picked on the device and come
back in one transfer. The model supplies the pieces: `PromptedT5.call_encoder`,
`call_decoder`, `call_decoder_step` (one cached step), `decoder_cache_shapes`,
`cross_attention_caches`, `output_kernel` and `logits`.

Example:
    >>> ids, mask = pad([[7, 8, 1], [9, 1]], 16)
    >>> greedy_tokens(model, ids, mask, max_length=8)            # (2, 8) int32
    >>> score_tokens(model, ids, mask, [[[5, 1], [6, 1]]] * 2)   # (2, 2) log-likelihoods
"""

from __future__ import annotations

import numpy as np
from keras import ops

from softprompt import backends
from softprompt.core.text import tokens as tok
from softprompt.core.text.batching import pad


def _compiled(model, name, fn, few_rows=False):
    """`fn` compiled by the backend adapter, kept on `model` under `name` (any hashable).

    `few_rows`: `fn`'s products have as many rows as the batch (`Adapter.compile_function`).

    JAX jits it, TensorFlow traces a graph, torch runs it eagerly without autograd; each
    keeps its own cache of compiled shapes, so repeated evaluations compile once per shape.
    The table lives in the model's ``__dict__`` outside keras' attribute tracking. What a
    trace reads as Python values (which prompt positions are masked) is part of the key,
    so changing it afterwards compiles anew instead of using a stale trace.
    """
    table = model.__dict__.get("_softprompt_compiled")
    if table is None:
        table = {}
        object.__setattr__(model, "_softprompt_compiled", table)
    key = (name, bool(model.full_prompts), np.asarray(model.prompt_mask).tobytes())
    if key not in table:
        table[key] = backends.current().compile_function(fn, model.variables,
                                                         few_rows=few_rows)
    return table[key]


def compiled_encoder(model):
    """`PromptedT5.call_encoder` of `model`, compiled by the backend adapter.

    Example:
        >>> encoder_output, mask = compiled_encoder(model)(ids, padding_mask, prompt_ids)
    """
    def encode(token_ids, padding_mask, prompt_ids):
        return model.call_encoder(token_ids, padding_mask, prompt_ids)

    return _compiled(model, "encode", encode)


def top_token(logits, with_margin: bool):
    """The greedy token of each row of float32 ``(batch, vocab)`` logits, and the top-1 minus
    top-2 logit (None without `with_margin`): int32 and float32 ``(batch,)`` tensors.

    The token is `numpy.argmax`'s (the first of equal maxima), found with two plain
    reductions (the maximum, then the first position holding it): XLA on CPU runs its
    one-pass argmax, a reduction over (value, index) pairs, several times slower than
    both together. The second logit is the maximum over the other positions, so equal
    maxima give a margin of 0, as sorting does.

    Example:
        >>> token, margin = top_token(ops.convert_to_tensor([[0.0, 2.0, 2.0, 1.0]]), True)
        >>> # token [1], margin [0.0]
    """
    vocab = ops.shape(logits)[-1]
    top = ops.max(logits, axis=-1, keepdims=True)
    positions = ops.arange(vocab, dtype="int32")[None, :]
    token = ops.min(ops.where(ops.equal(logits, top), positions, vocab), axis=-1)
    token = ops.minimum(token, vocab - 1)  # all-NaN logits match nowhere
    if not with_margin:
        return token, None
    second = ops.max(ops.where(ops.equal(positions, token[:, None]), float("-inf"), logits),
                     axis=-1)
    return token, top[:, 0] - second


def _greedy_loop(model, max_length: int, return_margins: bool, eos: int):
    """The cached greedy decode of `greedy_tokens` as two compiled functions.

    ``decode(enc_ids, enc_mask, prompt_ids) -> (tokens, margins)`` runs `first` (the
    encoder, then the first decoder step, which projects the encoder's keys and values
    into the cross-attention caches) and `rest` (a `keras.ops.while_loop` of cached steps
    that picks each token on the device: argmax and, with `return_margins`, the top-1
    minus top-2 logit; writes it, tracks which rows have ended with `eos` and stops when
    all have). Each is compiled by the backend adapter (JAX: `lax.while_loop`;
    TensorFlow: `tf.while_loop`; torch runs them eagerly) and the tensors between them stay
    on the device: one transfer of the result. They are two programs because their
    products differ: the encoder's have thousands of rows, a step's as many as the batch
    (`Adapter.compile_function`'s `few_rows`).
    """

    def pick(t, logits, tokens, margins, done):
        nxt, margin = top_token(ops.cast(logits[:, 0, :], "float32"), return_margins)
        if return_margins:
            margin = ops.where(done, float("nan"), margin)
            margins = ops.slice_update(margins, [0, t], margin[:, None])
        nxt = ops.where(done, tok.PAD_ID, nxt)
        tokens = ops.slice_update(tokens, [0, t], nxt[:, None])
        return nxt, tokens, margins, ops.logical_or(done, ops.equal(nxt, eos))

    def first(enc_ids, enc_mask, prompt_ids):
        encoder_output, full_mask = model.call_encoder(enc_ids, enc_mask, prompt_ids)
        cross_mask = ops.cast(full_mask, "int32")[:, None, :]
        batch = ops.shape(enc_ids)[0]
        self_shape, cross_shape = model.decoder_cache_shapes(
            batch, ops.shape(encoder_output)[1], max_length)
        layers = range(model.backbone.num_layers)
        dtype = encoder_output.dtype
        self_caches = tuple(ops.zeros(self_shape, dtype) for _ in layers)
        cross_caches = tuple(ops.zeros(cross_shape, dtype) for _ in layers)
        tokens = ops.zeros((batch, max_length), "int32")
        margins = ops.full((batch, max_length), float("nan"), "float32")
        done = ops.zeros((batch,), "bool")
        # The first step (position 0, the start token) fills the cross-attention caches.
        logits, self_caches, cross_caches = model.call_decoder_step(
            encoder_output, cross_mask, ops.zeros((batch, 1), "int32"), self_caches, 0,
            cross_caches, build_cross_cache=True)
        last, tokens, margins, done = pick(0, logits, tokens, margins, done)
        return encoder_output, cross_mask, last, tokens, margins, done, self_caches, cross_caches

    def rest(encoder_output, cross_mask, last, tokens, margins, done, self_caches,
             cross_caches):
        # The LM head's matrix, computed once outside the loop: inside it, XLA folds the
        # transpose of tied embeddings into every step's product, a slower layout for it.
        kernel = model.output_kernel()

        def unfinished(t, last, tokens, margins, done, self_caches):
            return ops.logical_and(ops.less(t, max_length), ops.logical_not(ops.all(done)))

        def step(t, last, tokens, margins, done, self_caches):
            logits, self_caches, _ = model.call_decoder_step(
                encoder_output, cross_mask, last[:, None], self_caches, t, cross_caches,
                build_cross_cache=False, output_kernel=kernel)
            last, tokens, margins, done = pick(t, logits, tokens, margins, done)
            return t + 1, last, tokens, margins, done, self_caches

        start = ops.convert_to_tensor(1, "int32")
        _, _, tokens, margins, _, _ = ops.while_loop(
            unfinished, step, (start, last, tokens, margins, done, self_caches))
        return tokens, margins

    key = ("greedy", max_length, return_margins, eos)
    first = _compiled(model, (*key, "first"), first)
    rest = _compiled(model, (*key, "rest"), rest, few_rows=True)

    def decode(enc_ids, enc_mask, prompt_ids):
        return rest(*first(enc_ids, enc_mask, prompt_ids))

    return decode


def greedy_tokens(model, encoder_token_ids, encoder_padding_mask, prompt_ids=None,
                  max_length=32, use_cache=True, return_margins=False):
    """Greedy decoding; returns int32 ``(batch, max_length)`` (0 after ``</s>``).

    With ``use_cache=True`` each step runs the decoder on one new token,
    reading past keys/values from keras-hub's T5 cache, and the whole decode
    (encoder, every step, the choice of each token, the stop once every row has
    produced ``</s>``) is compiled by the backend adapter (`Adapter.compile_function`;
    two functions per `max_length`, see `_greedy_loop`); ``use_cache=False``
    reruns the decoder over the whole prefix, eagerly (the reference). With
    `return_margins`, also returns the top-1 minus top-2 logit at each step
    ``(batch, max_length)`` (NaN after the sequence ended).
    """
    enc_ids = ops.convert_to_tensor(np.asarray(encoder_token_ids, np.int32))
    enc_mask = ops.convert_to_tensor(np.asarray(encoder_padding_mask, np.int32))
    batch = int(enc_ids.shape[0])
    if prompt_ids is None:
        prompt_ids = np.zeros((batch,), np.int32)
    prompt_ids = ops.convert_to_tensor(np.asarray(prompt_ids, np.int32))
    eos = tok.end_token_id(model.tokenizer) if model.tokenizer is not None else tok.EOS_ID
    if use_cache and max_length > 0:
        decode = _greedy_loop(model, int(max_length), bool(return_margins), int(eos))
        tokens, margins = decode(enc_ids, enc_mask, prompt_ids)
        result = np.asarray(ops.convert_to_numpy(tokens), np.int32)
        if return_margins:
            return result, np.asarray(ops.convert_to_numpy(margins), np.float32)
        return result
    return _uncached_greedy(model, enc_ids, enc_mask, prompt_ids, max_length, eos,
                            return_margins)


def _uncached_greedy(model, enc_ids, enc_mask, prompt_ids, max_length, eos, return_margins):
    """The reference: eagerly rerun the decoder over the whole prefix at every step."""
    batch = int(enc_ids.shape[0])
    out = np.zeros((batch, max_length + 1), np.int32)  # column 0: the start token (pad)
    margins = np.full((batch, max_length), np.nan, np.float32)
    done = np.zeros((batch,), bool)
    encoder_output, full_mask = model.call_encoder(enc_ids, enc_mask, prompt_ids)
    for t in range(max_length):
        prefix = ops.convert_to_tensor(out[:, : t + 1])
        hidden = model.call_decoder(encoder_output, full_mask, prefix)
        step_logits = model.logits(hidden[:, -1:, :])[:, 0, :]
        step = np.asarray(ops.convert_to_numpy(ops.cast(step_logits, "float32")))
        nxt = step.argmax(axis=-1).astype(np.int32)
        if return_margins:
            top2 = np.sort(step, axis=-1)[:, -2:]
            margins[:, t] = np.where(done, np.nan, top2[:, 1] - top2[:, 0])
        nxt = np.where(done, tok.PAD_ID, nxt)
        out[:, t + 1] = nxt
        done |= nxt == eos
        if done.all():
            break
    result = out[:, 1:]
    return (result, margins) if return_margins else result


def _scorer(model):
    def scores(enc_ids, enc_mask, prompt_ids, dec_in, labels, mask):
        encoder_output, full_mask = model.call_encoder(enc_ids, enc_mask, prompt_ids)
        num = ops.shape(dec_in)[0] // ops.shape(enc_ids)[0]
        # The keys/values of each input's encoder output, projected once and shared by
        # its candidates (rather than projecting `num` copies of the encoder output).
        caches = tuple(ops.repeat(c, num, axis=0)
                       for c in model.cross_attention_caches(encoder_output))
        # Causal masking already hides the padding after each candidate from its
        # real positions, so the decoder needs no padding mask here.
        hidden = model.call_decoder(encoder_output, ops.repeat(full_mask, num, axis=0), dec_in,
                                    cross_attention_caches=caches)
        logits = ops.cast(model.logits(hidden), "float32")
        picked = ops.squeeze(ops.take_along_axis(logits, ops.expand_dims(labels, -1), axis=-1), -1)
        # log p(label) = logit[label] - logsumexp(logits): no (rows, len, vocab) log-softmax
        return ops.sum((picked - ops.logsumexp(logits, axis=-1)) * mask, axis=-1)

    return _compiled(model, "score", scores)


def score_tokens(model, encoder_token_ids, encoder_padding_mask, candidates, prompt_ids=None):
    """Total log-likelihood of each candidate target per input: ``(batch, num_candidates)``.

    `candidates` is ``[batch][num_candidates]`` lists of target ids (each
    ending in ``</s>``). The encoder runs once per input; all candidates of
    the batch go through the decoder in one pass (a function the backend
    adapter compiles, `Adapter.compile_function`).
    """
    enc_ids = np.asarray(encoder_token_ids, np.int32)
    batch = int(enc_ids.shape[0])
    num = len(candidates[0])
    if any(len(c) != num for c in candidates):
        raise ValueError("every input must have the same number of candidates")
    if prompt_ids is None:
        prompt_ids = np.zeros((batch,), np.int32)
    flat = [list(c) for row in candidates for c in row]
    labels, mask = pad(flat)
    dec_in = np.zeros_like(labels)
    dec_in[:, 1:] = labels[:, :-1]
    total = _scorer(model)(
        ops.convert_to_tensor(enc_ids),
        ops.convert_to_tensor(np.asarray(encoder_padding_mask, np.int32)),
        ops.convert_to_tensor(np.asarray(prompt_ids, np.int32)),
        ops.convert_to_tensor(dec_in), ops.convert_to_tensor(labels),
        ops.convert_to_tensor(mask.astype(np.float32)),
    )
    return np.asarray(ops.convert_to_numpy(total), np.float64).reshape(batch, num)
