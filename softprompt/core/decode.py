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

from softprompt.core import tokens as tok


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
    bb = model.backbone
    head_dim = bb.key_value_dim or bb.hidden_dim // bb.num_heads
    self_shape = (batch, bb.num_layers, 2, target_length, bb.num_heads, head_dim)
    cross_shape = (batch, bb.num_layers, 2, source_length, bb.num_heads, head_dim)
    return self_shape, cross_shape


def decoder_step(model, encoder_output, encoder_mask, step_ids, self_cache, index,
                 cross_cache, build_cross_cache):
    """One cached decoder step: logits for `step_ids` ``(batch, 1)`` at position `index`.

    Returns ``(logits, self_cache, cross_cache)``. On the first step
    (`build_cross_cache`) the encoder's key/value projections are computed and
    cached; afterwards they are reused as they are.
    """
    bb = model.backbone
    x = bb.token_embedding(step_ids)
    cross_mask = ops.cast(encoder_mask, "int32")[:, None, :]
    new_self, new_cross = [], []
    position_bias = None
    for i, layer in enumerate(bb.decoder_transformer_layers):
        x, position_bias, layer_self, layer_cross = layer(
            x,
            position_bias=position_bias,
            encoder_hidden_states=encoder_output,
            encoder_attention_mask=cross_mask,
            use_causal_mask=True,
            self_attention_cache=self_cache[:, i, ...],
            self_attention_cache_update_index=index,
            cross_attention_cache=cross_cache[:, i, ...],
            cross_attention_cache_update_index=0 if build_cross_cache else None,
        )
        new_self.append(layer_self)
        new_cross.append(layer_cross)
    self_cache = ops.stack(new_self, axis=1)
    if build_cross_cache:
        cross_cache = ops.stack(new_cross, axis=1)
    x = bb.decoder_layer_norm(x)
    return model.logits(x), self_cache, cross_cache


def greedy_tokens(model, encoder_token_ids, encoder_padding_mask, prompt_ids=None,
                  max_length=32, use_cache=True, return_margins=False):
    """Greedy decoding; returns int32 ``(batch, max_length)`` (0 after ``</s>``).

    With ``use_cache=True`` each step runs the decoder on one new token,
    reading past keys/values from keras-hub's T5 cache; ``use_cache=False``
    reruns the decoder over the whole prefix (the reference). With
    `return_margins`, also returns the top-1 minus top-2 logit at each step
    ``(batch, max_length)`` (NaN after the sequence ended).
    """
    enc_ids = ops.convert_to_tensor(np.asarray(encoder_token_ids, np.int32))
    enc_mask = ops.convert_to_tensor(np.asarray(encoder_padding_mask, np.int32))
    batch = int(enc_ids.shape[0])
    if prompt_ids is not None:
        prompt_ids = ops.convert_to_tensor(np.asarray(prompt_ids, np.int32))
    encoder_output, full_mask = model.encode(enc_ids, enc_mask, prompt_ids)
    eos = tok.end_token_id(model.tokenizer) if model.tokenizer is not None else tok.EOS_ID
    out = np.zeros((batch, max_length + 1), np.int32)  # column 0: the start token (pad)
    margins = np.full((batch, max_length), np.nan, np.float32)
    done = np.zeros((batch,), bool)
    if use_cache:
        self_shape, cross_shape = _cache_shapes(
            model, batch, int(encoder_output.shape[1]), max_length
        )
        dtype = encoder_output.dtype
        self_cache = ops.zeros(self_shape, dtype)
        cross_cache = ops.zeros(cross_shape, dtype)
    for t in range(max_length):
        if use_cache:
            logits, self_cache, cross_cache = decoder_step(
                model, encoder_output, full_mask, ops.convert_to_tensor(out[:, t : t + 1]),
                self_cache, t, cross_cache, build_cross_cache=(t == 0),
            )
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


def score_tokens(model, encoder_token_ids, encoder_padding_mask, candidates, prompt_ids=None):
    """Total log-likelihood of each candidate target per input: ``(batch, num_candidates)``.

    `candidates` is ``[batch][num_candidates]`` lists of target ids (each
    ending in ``</s>``). The encoder runs once per input; all candidates of
    the batch go through the decoder in one pass.
    """
    enc_ids = ops.convert_to_tensor(np.asarray(encoder_token_ids, np.int32))
    enc_mask = ops.convert_to_tensor(np.asarray(encoder_padding_mask, np.int32))
    batch = int(enc_ids.shape[0])
    num = len(candidates[0])
    if any(len(c) != num for c in candidates):
        raise ValueError("every input must have the same number of candidates")
    if prompt_ids is not None:
        prompt_ids = ops.convert_to_tensor(np.asarray(prompt_ids, np.int32))
    encoder_output, full_mask = model.encode(enc_ids, enc_mask, prompt_ids)
    encoder_output = ops.repeat(encoder_output, num, axis=0)
    full_mask = ops.repeat(full_mask, num, axis=0)
    flat = [list(c) for row in candidates for c in row]
    labels, mask = pad_batch(flat)
    dec_in = np.zeros_like(labels)
    dec_in[:, 1:] = labels[:, :-1]
    # Causal masking already hides the padding after each candidate from its
    # real positions, so the decoder needs no padding mask here.
    hidden = model.decode(encoder_output, full_mask, ops.convert_to_tensor(dec_in))
    logits = ops.cast(model.logits(hidden), "float32")
    logp = logits - ops.logsumexp(logits, axis=-1, keepdims=True)
    picked = ops.take_along_axis(logp, ops.expand_dims(ops.convert_to_tensor(labels), -1), axis=-1)
    total = ops.sum(ops.squeeze(picked, -1) * ops.convert_to_tensor(mask.astype(np.float32)), axis=-1)
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
