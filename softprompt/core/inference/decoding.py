"""Inference: greedy decoding with T5's key/value cache, and rank classification.

Example:
    >>> tokens = greedy_tokens(model, enc_ids, enc_mask, max_length=8)
    >>> generate(model, ["premise: ..."], max_length=8)
    ['entailment']
    >>> score(model, ["premise: ..."], ["entailment", "not_entailment"])   # (1, 2) log-likelihoods
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from softprompt.core.model.t5_blocks import layer_norm, transformer_layer
from softprompt.core.text import tokens as tok


def pad_batch(rows: Sequence[Sequence[int]], length: int | None = None,
              pad_id: int = tok.PAD_ID) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id rows into ``(ids, mask)`` int32 arrays of width `length` (default: longest)."""
    width = max([len(r) for r in rows] + [1]) if length is None else length
    ids = np.full((len(rows), width), pad_id, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        row = list(row)[:width]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def _cache_shapes(model, batch, source_length, target_length):
    """Shapes of one decoder layer's self- and cross-attention caches."""
    bb = model.backbone
    head_dim = bb.key_value_dim or bb.hidden_dim // bb.num_heads
    self_shape = (batch, 2, target_length, bb.num_heads, head_dim)
    cross_shape = (batch, 2, source_length, bb.num_heads, head_dim)
    return self_shape, cross_shape


def _layer_step(model, encoder_output, cross_mask, step_ids, self_caches, index, cross_caches,
                build_cross_cache):
    """One cached decoder step over per-layer caches (tuples, one tensor per layer).

    Keeping a tensor per layer (rather than one stacked tensor) spares a copy of every
    cache at every step (performance, issue 9); the arithmetic is keras-hub's.
    """
    bb = model.backbone
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
    return model.logits(x), tuple(new_self), tuple(new_cross)


def decoder_step(model, encoder_output, encoder_mask, step_ids, self_cache, index,
                 cross_cache, build_cross_cache):
    """One cached decoder step: logits for `step_ids` ``(batch, 1)`` at position `index`.

    `self_cache` / `cross_cache` stack the layers on axis 1:
    ``(batch, num_layers, 2, length, heads, head_dim)``. Returns ``(logits,
    self_cache, cross_cache)``. On the first step (`build_cross_cache`) the
    encoder's key/value projections are computed and cached; afterwards they are
    reused as they are. (`greedy_tokens` keeps per-layer caches instead.)
    """
    layers = range(model.backbone.num_layers)
    cross_mask = ops.cast(encoder_mask, "int32")[:, None, :]
    logits, new_self, new_cross = _layer_step(
        model, encoder_output, cross_mask, step_ids,
        tuple(self_cache[:, i, ...] for i in layers), index,
        tuple(cross_cache[:, i, ...] for i in layers), build_cross_cache,
    )
    self_cache = ops.stack(new_self, axis=1)
    if build_cross_cache:
        cross_cache = ops.stack(new_cross, axis=1)
    return logits, self_cache, cross_cache


def _compiled(model, name, fn):
    """`fn` compiled by the backend adapter, kept on `model` (performance, issue 9).

    JAX jits it, TensorFlow traces a graph, torch runs it eagerly; each keeps its own
    cache of compiled shapes, so repeated evaluations compile once per shape. The
    table lives in the model's ``__dict__`` outside keras' attribute tracking. What
    a trace reads as Python values (which prompt positions are masked) is part of
    the key, so changing it afterwards compiles anew instead of using a stale trace.
    """
    from softprompt import backends

    table = model.__dict__.get("_softprompt_compiled")
    if table is None:
        table = {}
        object.__setattr__(model, "_softprompt_compiled", table)
    key = (name, bool(model._full_prompts), np.asarray(model._prompt_mask).tobytes())
    if key not in table:
        table[key] = backends.current().compile_function(fn, model.variables)
    return table[key]


def _encoder(model):
    def encode(token_ids, padding_mask, prompt_ids):
        return model.encode(token_ids, padding_mask, prompt_ids)

    return _compiled(model, "encode", encode)


def _first_step(model):
    def first(encoder_output, cross_mask, step_ids, self_caches, index, cross_caches):
        return _layer_step(model, encoder_output, cross_mask, step_ids, self_caches, index,
                           cross_caches, build_cross_cache=True)

    return _compiled(model, "decode_first", first)


def _next_step(model):
    def step(encoder_output, cross_mask, step_ids, self_caches, index, cross_caches):
        logits, new_self, _ = _layer_step(model, encoder_output, cross_mask, step_ids,
                                          self_caches, index, cross_caches,
                                          build_cross_cache=False)
        return logits, new_self

    return _compiled(model, "decode_next", step)


def greedy_tokens(model, encoder_token_ids, encoder_padding_mask, prompt_ids=None,
                  max_length=32, use_cache=True, return_margins=False):
    """Greedy decoding; returns int32 ``(batch, max_length)`` (0 after ``</s>``).

    With ``use_cache=True`` each step runs the decoder on one new token,
    reading past keys/values from keras-hub's T5 cache, through functions the
    backend adapter compiles (`Adapter.compile_function`); ``use_cache=False``
    reruns the decoder over the whole prefix, eagerly (the reference). With
    `return_margins`, also returns the top-1 minus top-2 logit at each step
    ``(batch, max_length)`` (NaN after the sequence ended).
    """
    from softprompt import backends

    enc_ids = ops.convert_to_tensor(np.asarray(encoder_token_ids, np.int32))
    enc_mask = ops.convert_to_tensor(np.asarray(encoder_padding_mask, np.int32))
    batch = int(enc_ids.shape[0])
    if prompt_ids is None:
        prompt_ids = np.zeros((batch,), np.int32)
    prompt_ids = ops.convert_to_tensor(np.asarray(prompt_ids, np.int32))
    eos = tok.end_token_id(model.tokenizer) if model.tokenizer is not None else tok.EOS_ID
    out = np.zeros((batch, max_length + 1), np.int32)  # column 0: the start token (pad)
    margins = np.full((batch, max_length), np.nan, np.float32)
    done = np.zeros((batch,), bool)
    if use_cache:
        compiled = backends.current().compiles_functions
        encoder_output, full_mask = _encoder(model)(enc_ids, enc_mask, prompt_ids)
        cross_mask = ops.cast(full_mask, "int32")[:, None, :]
        self_shape, cross_shape = _cache_shapes(
            model, batch, int(encoder_output.shape[1]), max_length
        )
        dtype = encoder_output.dtype
        layers = range(model.backbone.num_layers)
        self_caches = tuple(ops.zeros(self_shape, dtype) for _ in layers)
        cross_caches = tuple(ops.zeros(cross_shape, dtype) for _ in layers)
    else:
        encoder_output, full_mask = model.encode(enc_ids, enc_mask, prompt_ids)
    for t in range(max_length):
        if use_cache:
            # a tensor index: one compiled step serves every position
            index = ops.convert_to_tensor(t, "int32") if compiled else t
            step_ids = ops.convert_to_tensor(out[:, t : t + 1])
            if t == 0:
                logits, self_caches, cross_caches = _first_step(model)(
                    encoder_output, cross_mask, step_ids, self_caches, index, cross_caches)
            else:
                logits, self_caches = _next_step(model)(
                    encoder_output, cross_mask, step_ids, self_caches, index, cross_caches)
            step_logits = logits[:, 0, :]
        else:
            prefix = ops.convert_to_tensor(out[:, : t + 1])
            hidden = model.decode(encoder_output, full_mask, prefix)
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


def encode_texts(model, texts, max_input_length=None):
    """Tokenize `texts` (``</s>``-terminated) and pad into ``(ids, mask)``."""
    rows = tok.encode(model.tokenizer, texts, add_eos=True, max_length=max_input_length)
    return pad_batch(rows)


def generate(model, texts, max_length=32, prompt_ids=None, batch_size=32, max_input_length=None):
    """Greedy-decode each text with the cache; returns the decoded strings."""
    texts = list(texts)
    ids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    results: list[str] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        enc_ids, enc_mask = encode_texts(model, chunk, max_input_length)
        pids = None if ids_all is None else ids_all[start : start + batch_size]
        out = greedy_tokens(model, enc_ids, enc_mask, pids, max_length=max_length)
        results.extend(tok.decode(model.tokenizer, out))
    return results


def _scorer(model):
    def scores(enc_ids, enc_mask, prompt_ids, dec_in, labels, mask):
        encoder_output, full_mask = model.encode(enc_ids, enc_mask, prompt_ids)
        num = ops.shape(dec_in)[0] // ops.shape(enc_ids)[0]
        # The keys/values of each input's encoder output, projected once and shared by
        # its candidates (rather than projecting `num` copies of the encoder output).
        caches = tuple(ops.repeat(c, num, axis=0)
                       for c in model.cross_attention_caches(encoder_output))
        # Causal masking already hides the padding after each candidate from its
        # real positions, so the decoder needs no padding mask here.
        hidden = model.decode(encoder_output, ops.repeat(full_mask, num, axis=0), dec_in,
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
    labels, mask = pad_batch(flat)
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


def score(model, texts, candidates, prompt_ids=None, batch_size=32, max_input_length=None):
    """Rank classification: log-likelihood of each candidate string for each text.

    `candidates` is one list of strings shared by all texts (e.g. the task's
    labels) or one list per text (all of the same size). Returns a float64
    array ``(len(texts), num_candidates)``; ``argmax`` picks the prediction.

    Example:
        >>> scores = score(model, ["hypothesis: ... premise: ..."],
        ...                ["entailment", "not_entailment"])
        >>> labels[scores.argmax(-1)[0]]
    """
    texts = list(texts)
    shared = bool(candidates) and isinstance(candidates[0], str)
    per_text = [list(candidates)] * len(texts) if shared else [list(c) for c in candidates]
    if len(per_text) != len(texts):
        raise ValueError(f"got {len(per_text)} candidate lists for {len(texts)} texts")
    ids_all = None if prompt_ids is None else np.asarray(prompt_ids, np.int32)
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        enc_ids, enc_mask = encode_texts(model, chunk, max_input_length)
        cands = [tok.encode(model.tokenizer, c, add_eos=True) for c in per_text[start : start + batch_size]]
        pids = None if ids_all is None else ids_all[start : start + batch_size]
        out.append(score_tokens(model, enc_ids, enc_mask, cands, pids))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 0))
