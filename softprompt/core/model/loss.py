"""The training loss: masked token cross-entropy plus T5X's z-loss."""

from __future__ import annotations

from keras import ops


def token_losses(labels, logits, z_loss: float = 1e-4):
    """Per-token loss ``logsumexp(z) - z[label] + z_loss * logsumexp(z)**2``.

    Computed in float32 from one `logsumexp`, so the softmax is never
    materialized twice. Returns ``(batch, target_len)``.
    """
    logits = ops.cast(logits, "float32")
    labels = ops.cast(labels, "int32")
    log_z = ops.logsumexp(logits, axis=-1)
    label_logit = ops.squeeze(
        ops.take_along_axis(logits, ops.expand_dims(labels, -1), axis=-1), axis=-1
    )
    loss = log_z - label_logit
    if z_loss:
        loss = loss + z_loss * ops.square(log_z)
    return loss


def seq2seq_loss(labels, logits, sample_weight=None, z_loss: float = 1e-4):
    """Mean over real target tokens of `token_losses` (weights = target padding mask).

    T5X sums token losses and normalizes by a constant; we divide by the
    number of real target tokens in the batch, which makes the loss value
    independent of batch size and padding (Adafactor's update is invariant to
    the scale of the loss, so the trajectory is the same up to epsilon terms).

    Example:
        >>> seq2seq_loss(y, model(x), sample_weight=mask)
    """
    per_token = token_losses(labels, logits, z_loss)
    if sample_weight is None:
        return ops.mean(per_token)
    weight = ops.cast(sample_weight, "float32")
    return ops.sum(per_token * weight) / ops.maximum(ops.sum(weight), 1.0)
