"""What `PromptedT5` is trained on: masked token cross-entropy plus T5X's z-loss.

`Seq2SeqObjective` is the compile/loss part of `PromptedT5` (a mixin): the
model's `compute_loss` is `softprompt.core.model.loss.seq2seq_loss` unless a
loss is given to `compile`, and `jit_compile` defaults to the backend
adapter's choice. The optimizer is the caller's: the paper's is
``softprompt.Adafactor(learning_rate=0.3)`` (`softprompt.core.training.adafactor`),
which the training loop passes.

Example:
    >>> model.compile(optimizer=softprompt.Adafactor(learning_rate=0.3))   # + z-loss 1e-4
    >>> model.fit(x, y, sample_weight=target_mask, batch_size=32)
"""

from __future__ import annotations

from keras import ops

from softprompt import backends
from softprompt.core.model.loss import seq2seq_loss


class Seq2SeqObjective:
    """`compile` and `compute_loss` of a model whose ``call`` returns target logits.

    Expects the model to have a ``z_loss`` attribute (the z-loss coefficient).
    After `compile`, ``uses_token_loss`` tells whether the loss is ours (a
    token mean that distributed training rescales to the global batch).
    """

    uses_token_loss = True

    def compile(self, optimizer=None, loss=None, z_loss=None, **kwargs):
        """Compile with our loss: masked token cross-entropy plus z-loss.

        Args:
            optimizer: a keras optimizer (required; the paper's is
                ``softprompt.Adafactor(learning_rate=0.3)``).
            loss: `None` for our loss; any keras loss replaces it.
            z_loss: the z-loss coefficient (default: the model's, 1e-4; 0 turns it off).
            **kwargs: other keras `compile` arguments; `jit_compile` defaults to
                the backend adapter's choice.
        """
        if optimizer is None:
            raise ValueError("compile needs an optimizer: the paper's is "
                             "softprompt.Adafactor(learning_rate=0.3)")
        if z_loss is not None:
            self.z_loss = float(z_loss)
        self.uses_token_loss = loss is None
        adapter = backends.current()
        kwargs.setdefault("jit_compile", adapter.default_jit_compile)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        # the model is built: what building it freed goes back to the system before the
        # steps allocate theirs (`softprompt.backends.base.release_freed_memory`)
        adapter.release_freed_memory()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self.uses_token_loss:
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        loss = seq2seq_loss(y, y_pred, sample_weight, self.z_loss)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss
