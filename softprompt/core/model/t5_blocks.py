"""T5's transformer layer and attention, run with the weights of keras-hub's layers.

`transformer_layer(layer, x, ...)` computes exactly what keras-hub's
``T5TransformerLayer.__call__`` computes (same arguments, same returns, same sublayers
and weights), with a faster attention core:

- the attention-weighted values are a heads-first batched matmul
  ``(b, n, q, k) @ (b, n, k, d)`` instead of keras-hub's
  ``einsum("bnqk,bknd->bqnd")``, which XLA on CPU runs several times slower;
- where no attention dropout is active, the backend adapter's own kernel when it has
  one for the dtype (`Adapter.attention_kernel`: torch's scaled-dot-product attention
  in float32; on a CPU, JAX's float32 core with a written-out backward pass);
- for a single query (a cached decoding step), the adapter's kernel for it
  (`Adapter.single_query_kernel`: torch's fused one) or else products summed over an
  axis in the cache's own layout (`single_query_attention`), which copies no keys or
  values.

The attention-core micro-benchmark in ``benchmarks/`` measures both against
keras-hub's layer on the machine at hand.

Reduced precision (``bfloat16`` or ``mixed_bfloat16`` dtype policies, the CLI's
``--dtype``): the residual stream and the matrix products run in bfloat16, as in T5X;
the RMS layer norms (as T5X and transformers do) and the attention softmax run in
float32 (`layer_norm`, `attention_core`) and the LM head returns float32 logits, as
T5X's does (`lm_head`). Every product goes through `Adapter.matmul`, which lets a backend pick
its fast bfloat16 kernel (JAX: float32 accumulation, see `JaxAdapter.matmul`). In
float32 all of this computes exactly what keras-hub's layers compute.

Example:
    >>> x, position_bias = transformer_layer(backbone.encoder_transformer_layers[0], x,
    ...                                      attention_mask=mask[:, None, :])
"""

from __future__ import annotations

from keras import ops

from softprompt import backends


def _adapter():
    return backends.current()


def matmul(a, b):
    """``a @ b`` through the backend adapter's `matmul` (its fast reduced-precision path)."""
    return _adapter().matmul(a, b)


def project(dense, x):
    """keras ``Dense.__call__`` of keras-hub's T5 projections: ``activation(x @ kernel + bias)``.

    The kernel and `x` are cast to the layer's compute dtype, as keras' autocasting does.

    Example:
        >>> query = project(layer.self_attention.query_projector, x)
    """
    dtype = dense.compute_dtype
    x = matmul(ops.cast(x, dtype), ops.cast(dense.kernel, dtype))
    if dense.use_bias:
        x = x + ops.cast(dense.bias, dtype)
    return dense.activation(x) if dense.activation is not None else x


def layer_norm(norm, x):
    """keras-hub's ``T5LayerNorm`` (RMS norm, no mean, no bias), computed in float32.

    Returns `x`'s dtype. In float32 it is the layer's own arithmetic.

    Example:
        >>> x = layer_norm(backbone.encoder_layer_norm, x)
    """
    h = ops.cast(x, "float32")
    variance = ops.mean(ops.square(h), axis=-1, keepdims=True)
    h = h * ops.rsqrt(variance + norm.epsilon)
    return ops.cast(ops.cast(norm.weight, "float32") * h, x.dtype)


def lm_head(backbone, hidden_states, kernel=None):
    """T5's output layer in float32: ``logits = hidden @ W`` (tied: ``W = E^T``, after ``d**-0.5``).

    T5X computes its logits in float32 under bfloat16 activations; in a float32
    model this is keras-hub's ``token_embedding(hidden, reverse=True)``. `kernel` is
    ``W`` as `output_kernel` gives it, for a caller that applies the head many times
    (a decoding loop computes it once).

    Example:
        >>> logits = lm_head(model.backbone, decoder_hidden)    # (batch, length, vocab)
    """
    embedding = backbone.token_embedding
    hidden = ops.cast(hidden_states, "float32")
    if backbone.tie_embedding_weights:
        hidden = hidden * ops.cast(backbone.hidden_dim**-0.5, "float32")
    if kernel is None:
        kernel = output_kernel(backbone)
    logits = matmul(hidden, kernel)
    if getattr(embedding, "logit_soft_cap", None) is not None:
        cap = embedding.logit_soft_cap
        logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
    return logits


def output_kernel(backbone):
    """The LM head's float32 ``(hidden_dim, vocab)`` matrix: the token embeddings transposed
    when they are tied, else the separate output matrix.

    Example:
        >>> kernel = output_kernel(model.backbone)       # once per decode
        >>> logits = lm_head(model.backbone, hidden, kernel)
    """
    embedding = backbone.token_embedding
    if backbone.tie_embedding_weights:
        return ops.transpose(ops.cast(embedding.embeddings, "float32"))
    return ops.cast(embedding.reverse_embeddings, "float32")


def relative_position_bias(layer, query_length, key_length, query_start_index=0):
    """keras-hub ``T5MultiHeadAttention.compute_bias``, gathered heads-first.

    The same values, ``(1, heads, query_length, key_length)``, from keras-hub's buckets; the
    layer gathers ``(query, key, heads)`` and transposes, which leaves a strided tensor
    that torch's attention kernel copies into a contiguous one in every layer, forward
    and backward. Gathering from the transposed ``(heads, buckets)`` table gives the
    contiguous layout directly.

    Example:
        >>> bias = relative_position_bias(encoder_layer.self_attention, 228, 228)
    """
    context = ops.arange(query_length)[:, None] + query_start_index
    memory = ops.arange(key_length)[None, :]
    buckets = layer._relative_position_bucket(
        memory - context, bidirectional=not layer.is_decoder,
        num_buckets=layer.relative_attention_buckets,
        max_distance=layer.relative_attention_max_distance)
    table = ops.transpose(ops.convert_to_tensor(layer.relative_attention_bias))  # (heads, buckets)
    return ops.expand_dims(ops.take(table, buckets, axis=1), axis=0)


def attention(layer, hidden_states, mask=None, key_value_states=None, position_bias=None,
              cache=None, cache_update_index=None, training=False):
    """keras-hub ``T5MultiHeadAttention.call`` with the faster attention core.

    Returns ``(output, position_bias, cache)`` like the layer: `position_bias`
    has the mask folded in, so later layers of the stack reuse it.
    """
    batch_size, seq_length = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
    heads, head_dim = layer.num_heads, layer.key_value_dim

    def split(states):  # (batch, length, inner) -> (batch, length, heads, head_dim)
        return ops.reshape(states, (batch_size, -1, heads, head_dim))

    query = split(project(layer.query_projector, hidden_states))
    kv_inputs = hidden_states if key_value_states is None else key_value_states
    if cache is not None:
        if cache_update_index is not None:
            # keys and values written into the stacked cache in one update (keras-hub
            # updates each half and stacks them again: one more copy of the cache per step)
            new = ops.stack((split(project(layer.key_projector, kv_inputs)),
                             split(project(layer.value_projector, kv_inputs))), axis=1)
            cache = ops.slice_update(cache, [0, 0, cache_update_index, 0, 0], new)
        key, value = cache[:, 0, ...], cache[:, 1, ...]
    else:
        if cache_update_index is not None:
            raise ValueError("`cache_update_index` needs a `cache`")
        key = split(project(layer.key_projector, kv_inputs))
        value = split(project(layer.value_projector, kv_inputs))
    key_length = ops.shape(key)[1]

    if position_bias is None:
        if not layer.use_relative_attention_bias:
            position_bias = ops.zeros((1, heads, seq_length, key_length), layer.compute_dtype)
        else:
            position_bias = relative_position_bias(
                layer, seq_length, key_length,
                query_start_index=0 if cache_update_index is None else cache_update_index)
        if mask is not None:
            additive = (1.0 - ops.cast(mask[:, None, :, :], position_bias.dtype)) * -1e9
            position_bias = position_bias + additive

    output = attention_core(query, key, value, position_bias, layer.dropout_layer, training)
    output = ops.reshape(output, (batch_size, -1, layer.inner_dim))
    return project(layer.output_projector, output), position_bias, cache


def attention_core(query, key, value, position_bias, dropout=None, training=False):
    """``softmax(Q K^T + bias) V`` of T5 (unscaled scores), ``(batch, length, heads, dim)`` in and out.

    With no dropout active, the adapter's kernel where it has one for the dtype
    (`Adapter.attention_kernel`). Otherwise written out, with the weighted values as a
    heads-first matmul, and in reduced precision with both products through `matmul`
    and the softmax in float32.

    Example:
        >>> out = attention_core(q, k, v, position_bias)   # position_bias: (1|b, heads, q, k)
    """
    dropping = dropout is not None and training and dropout.rate > 0
    if not dropping and query.shape[1] == 1:
        kernel = _adapter().single_query_kernel(query.dtype) or single_query_attention
        return kernel(query, key, value, position_bias)
    kernel = None if dropping else _adapter().attention_kernel(query.dtype)
    if kernel is not None:
        return kernel(query, key, value, position_bias)
    if query.dtype == "float32":
        scores = ops.einsum("bqnd,bknd->bnqk", query, key)
    else:  # reduced precision: the products through the adapter, softmax in float32
        scores = matmul(ops.transpose(query, (0, 2, 1, 3)), ops.transpose(key, (0, 2, 3, 1)))
    scores = ops.cast(scores, "float32") + ops.cast(position_bias, "float32")
    weights = ops.cast(ops.softmax(scores, axis=-1), value.dtype)
    if dropout is not None:
        weights = dropout(weights, training=training)
    heads_first = matmul(weights, ops.transpose(value, (0, 2, 1, 3)))
    return ops.transpose(heads_first, (0, 2, 1, 3))


def single_query_attention(query, key, value, position_bias):
    """`attention_core` for one query position (a cached decoding step), in float32.

    Both products are elementwise products summed over an axis, in the keys' and
    values' own ``(batch, length, heads, dim)`` layout: a matmul per head would first
    copy the keys and values heads-first, and at one query that copy costs more than
    the products (XLA on CPU does not hoist it out of a decoding loop, although the
    cross-attention keys and values never change there). Scores and softmax in float32;
    returns the values' dtype.

    Example:
        >>> out = single_query_attention(q, k, v, position_bias)   # q: (batch, 1, heads, dim)
    """
    q = ops.cast(query, "float32")
    scores = ops.sum(q * ops.cast(key, "float32"), axis=-1)                 # (b, k, n)
    scores = ops.transpose(scores, (0, 2, 1)) + ops.cast(position_bias[:, :, 0, :], "float32")
    weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    weights = weights / ops.sum(weights, axis=-1, keepdims=True)            # (b, n, k)
    weights = ops.expand_dims(ops.transpose(weights, (0, 2, 1)), -1)        # (b, k, n, 1)
    out = ops.sum(weights * ops.cast(value, "float32"), axis=1, keepdims=True)
    return ops.cast(out, value.dtype)                                       # (b, 1, n, d)


def _self_attention_mask(hidden_states, attention_mask, cache, cache_update_index):
    """The decoder's causal mask (rectangular when decoding with a cache)."""
    output_length = ops.shape(hidden_states)[1]
    input_length = output_length if cache is None else ops.shape(cache)[2]
    start = 0 if cache_update_index is None else cache_update_index
    rows = ops.arange(output_length, dtype="float32")[:, None] + ops.cast(start, "float32")
    columns = ops.arange(input_length, dtype="float32")[None, :]
    causal = ops.greater_equal(rows, columns)[None, :, :]
    causal = ops.broadcast_to(causal, (ops.shape(hidden_states)[0], output_length, input_length))
    if attention_mask is None:
        return causal
    return ops.logical_and(causal, ops.cast(attention_mask, "bool"))


def transformer_layer(layer, hidden_states, attention_mask=None, position_bias=None,
                      encoder_hidden_states=None, encoder_attention_mask=None,
                      use_causal_mask=False, self_attention_cache=None,
                      self_attention_cache_update_index=None, cross_attention_cache=None,
                      cross_attention_cache_update_index=None, training=False):
    """keras-hub ``T5TransformerLayer.call`` over `layer`'s weights (see the module doc).

    Returns ``(x, position_bias)``, or ``(x, position_bias, self_cache, cross_cache)``
    when a self-attention cache is given, as the layer does.
    """
    if use_causal_mask and position_bias is None:
        attention_mask = _self_attention_mask(hidden_states, attention_mask,
                                              self_attention_cache,
                                              self_attention_cache_update_index)
    residual = hidden_states
    x = layer_norm(layer.self_attention_layer_norm, hidden_states)
    x, position_bias, self_attention_cache = attention(
        layer.self_attention, x, mask=attention_mask, position_bias=position_bias,
        cache=self_attention_cache, cache_update_index=self_attention_cache_update_index,
        training=training)
    x = layer.self_attention_dropout(x, training=training) + residual

    if layer.is_decoder:
        residual = x
        x = layer_norm(layer.cross_attention_layer_norm, x)
        x, _, cross_attention_cache = attention(
            layer.cross_attention, x, key_value_states=encoder_hidden_states,
            mask=encoder_attention_mask, cache=cross_attention_cache,
            cache_update_index=cross_attention_cache_update_index, training=training)
        x = layer.cross_attention_dropout(x, training=training) + residual

    residual = x
    x = layer_norm(layer.layer_norm, x)
    if layer.use_gated_activation:
        x = project(layer.input_projector, x) * project(layer.gate_projector, x)
    else:
        x = project(layer.input_projector, x)
    x = layer.dropout_layer(x, training=training)
    x = layer.dropout_layer(project(layer.output_projector, x), training=training) + residual
    if self_attention_cache is not None:
        return x, position_bias, self_attention_cache, cross_attention_cache
    return x, position_bias
