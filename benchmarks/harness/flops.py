"""FLOPs of a prompt-tuning step, counted honestly.

Only matrix products count (2 FLOPs per multiply-add; softmax, norms and activations are
left out, as is usual). A step is the forward pass plus the *input-gradient* backward pass
that the prompt's gradient needs, and nothing else:

- no weight gradients (the backbone is frozen);
- in the first encoder layer the query/key/value projections of the token rows are
  constants of the step, so only the prompt rows' input gradients count there;
- the first decoder layer's self-attention block and cross-attention query do not depend on
  the prompt at all, so they have no backward; its cross-attention scores need only the
  gradient with respect to the keys;
- every other product whose inputs depend on the prompt counts once more for each operand
  that depends on it (both for attention scores and attention-weighted values).

Example:
    >>> counts = step_flops(batch=8, prompt_length=100, input_length=128, target_length=8,
    ...                     hidden_dim=512, num_layers=6, num_heads=8, key_value_dim=64,
    ...                     intermediate_dim=2048, vocabulary_size=32128, gated=False)
    >>> round(counts["step"] / 1e9)       # GFLOP
    185
"""

from __future__ import annotations


def step_flops(*, batch, prompt_length, input_length, target_length, hidden_dim, num_layers,
               num_heads, key_value_dim, intermediate_dim, vocabulary_size, gated) -> dict:
    """``{"forward", "backward", "step"}`` FLOPs of one training step (see the module doc)."""
    b, p, t, d = batch, prompt_length, target_length, hidden_dim
    s = prompt_length + input_length
    inner = num_heads * key_value_dim
    ff_in = 2 if gated else 1  # input (and gate) projections d -> ff

    def dense(rows, n_in, n_out):
        return 2 * rows * n_in * n_out

    def attention(queries, keys):  # scores + weighted values, all heads
        return 2 * (2 * b * queries * keys * inner)

    def ff(rows):
        return ff_in * dense(rows, d, intermediate_dim) + dense(rows, intermediate_dim, d)

    enc_proj = 4 * dense(b * s, d, inner)
    enc_fwd = enc_proj + attention(s, s) + ff(b * s)
    enc_bwd = enc_proj + 2 * attention(s, s) + ff(b * s)
    enc_bwd_first = (3 * dense(b * p, d, inner) + dense(b * s, inner, d)
                     + 2 * attention(s, s) + ff(b * s))

    self_proj = 4 * dense(b * t, d, inner)
    cross_qo = 2 * dense(b * t, d, inner)
    cross_kv = 2 * dense(b * s, d, inner)
    dec_fwd = self_proj + attention(t, t) + cross_qo + cross_kv + attention(t, s) + ff(b * t)
    dec_bwd = self_proj + 2 * attention(t, t) + cross_qo + cross_kv + 2 * attention(t, s) + ff(b * t)
    # first decoder layer: no self-attention backward, no query gradient, keys only in scores
    dec_bwd_first = (dense(b * t, inner, d) + cross_kv + attention(t, s) // 2 * 3 + ff(b * t))

    head = dense(b * t, d, vocabulary_size)
    forward = num_layers * (enc_fwd + dec_fwd) + head
    backward = (enc_bwd_first + (num_layers - 1) * enc_bwd
                + dec_bwd_first + (num_layers - 1) * dec_bwd + head)
    return {"forward": forward, "backward": backward, "step": forward + backward}


def backbone_flops(backbone, **shape) -> dict:
    """`step_flops` for a keras-hub `T5Backbone`'s sizes."""
    return step_flops(
        hidden_dim=backbone.hidden_dim, num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        key_value_dim=backbone.key_value_dim or backbone.hidden_dim // backbone.num_heads,
        intermediate_dim=backbone.intermediate_dim, vocabulary_size=backbone.vocabulary_size,
        gated=backbone.use_gated_activation, **shape,
    )
