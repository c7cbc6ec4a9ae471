"""The frozen model a set of prompt files was trained on, holding those prompts.

Prompt files name their model in the sidecar (`softprompt.core.io.prompt_files`);
`model_for_prompts` reads them, checks that they agree, loads that model once
and puts every prompt into it (``prompt_ids`` select them), which is what
``softprompt eval``, ``ensemble``, ``predict`` and ``neighbors`` start from.

Example:
    >>> model, arrays, metas = model_for_prompts(["boolq.npy", "rte.npy"])
    >>> generate(model, texts, prompt_ids=[0, 1, 1])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from softprompt.core.io.prompt_files import load_prompt


def model_for_prompts(prompts: Sequence, preset: str | None = None,
                      allow_mismatch: bool = False):
    """The frozen model the prompt files were trained on, holding those prompts.

    Args:
        prompts: prompt file paths (their sidecars name the model).
        preset: use this model instead of the one the sidecars name (needed
            for files without a sidecar, e.g. the official implementation's).
        allow_mismatch: accept a model whose embedding fingerprint differs
            from the one a sidecar records (a warning instead of an error).

    Returns:
        ``(model, arrays, metadata)``: a `PromptedT5` whose prompt ``i`` is
        file ``i`` (``prompt_ids`` select them), the ``(P, d)`` arrays and
        the sidecars.

    Raises:
        ValueError: no model can be determined, the sidecars name different
            models, or a prompt does not fit the model.
    """
    if not prompts:
        raise ValueError("no prompt files given")
    arrays, metas = [], []
    for path in prompts:
        array, meta = load_prompt(path)
        if array.ndim == 3:
            if array.shape[0] != 1:
                raise ValueError(
                    f"prompt file {path} holds {array.shape[0]} prompts; give one prompt per file"
                )
            array = array[0]
        arrays.append(array)
        metas.append(meta)
    named = {str(m.get("backbone", {}).get("preset")) for m in metas
             if m.get("backbone", {}).get("preset")}
    if preset is None:
        missing = [str(p) for p, m in zip(prompts, metas) if not m.get("backbone", {}).get("preset")]
        if missing:
            raise ValueError(
                f"prompt file {missing[0]} has no sidecar naming its model: pass --preset"
            )
        if len(named) > 1:
            raise ValueError(
                f"the prompts were trained on different models ({', '.join(sorted(named))}): "
                "pass --preset to choose one"
            )
        preset = named.pop()
    # keras loads only here, after the checks of the files: a CLI mistake is reported at once.
    from softprompt.core.model.prompted_t5 import PromptedT5

    model = PromptedT5.from_preset(preset, prompt_length=arrays[0].shape[0], init="uniform",
                                   seed=0)
    ours = model.identity()["embedding_fingerprint"]
    for path, array, meta in zip(prompts, arrays, metas):
        model.check_compatible(array, {}, f"prompt file {path}")
        backbone = meta.get("backbone", {})
        theirs = backbone.get("embedding_fingerprint")
        if theirs and theirs != ours:
            message = (
                f"prompt file {path} was trained on model {backbone.get('preset')!r} "
                f"(fingerprint {theirs}), but {preset!r} is another model (fingerprint {ours})"
            )
            if not allow_mismatch:
                raise ValueError(message + "; pass --allow-mismatch to use it anyway")
            warnings.warn(message, stacklevel=2)
    if len(arrays) == 1:
        model.prompt.embeddings.assign(arrays[0][None].astype(np.float32))
        return model, arrays, metas
    return model.with_prompts(arrays), arrays, metas
