"""Models over the same frozen backbone with other prompts: ensembles, serving, baselines.

`PromptCopies` is that part of `PromptedT5` (a mixin). A copy shares the
backbone (no weights are copied) and holds its own prompt variable, so one
loaded T5 serves many prompts at once (``prompt_ids`` pick them per example)
or none at all (the "no prompt" baseline).

Example:
    >>> ensemble = model.with_prompts([load_prompt(f)[0] for f in files])
    >>> bare = model.without_prompt()
"""

from __future__ import annotations

import numpy as np


class PromptCopies:
    """`with_prompts` and `without_prompt` of a model with ``backbone``, ``tokenizer``,
    ``z_loss``, ``preset`` and `check_compatible`."""

    def with_prompts(self, prompts):
        """A model over the same frozen backbone holding `prompts` (for serving and ensembles).

        `prompts` is a list of ``(P_i, d)`` arrays (lengths may differ) or one
        ``(N, P, d)`` array. Prompts shorter than the longest are stored
        right-aligned with their leading positions masked out. No backbone
        weights are copied.

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
        return self._copy(width, lengths, stacked)

    def without_prompt(self):
        """A model over the same frozen backbone whose encoder sees no prompt at all.

        It holds one prompt of length 0 (a one-position variable, masked out
        everywhere; use the default ``prompt_ids``, 0). T5 has only relative
        position biases, so it computes exactly what the bare backbone does
        (the "no prompt" baseline). No backbone weights are copied.

        Example:
            >>> generate(model.without_prompt(), ["the red fox ran."], max_length=4)
        """
        return self._copy(1, [0], np.zeros((1, 1, self.backbone.hidden_dim), np.float32))

    def _copy(self, width: int, lengths: list[int], stacked: np.ndarray):
        model = type(self)(
            self.backbone, prompt_length=width, num_prompts=len(lengths), init="zeros",
            tokenizer=self.tokenizer, z_loss=self.z_loss, prompt_lengths=lengths,
        )
        model.preset = self.preset
        model.prompt.embeddings.assign(stacked)
        return model
