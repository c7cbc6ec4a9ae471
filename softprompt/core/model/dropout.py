"""Setting a built keras-hub backbone's dropout rate after it was loaded.

T5 checkpoints record their training dropout (0.1) and presets may record 0;
prompt tuning chooses its own rate (``softprompt train --dropout``). keras'
`Dropout` creates its seed generator only when its rate is non-zero at
construction, so a layer built with rate 0 gets one here. Each layer's
generator is seeded with ``seed + i`` (``i``: the layer's position in the
backbone), so a run's dropout masks repeat with its seed, and the generators
are tracked state of the model, saved and restored with a checkpoint.

Example:
    >>> set_dropout(model.backbone, 0.1, seed=0)
"""

from __future__ import annotations

import keras


def set_dropout(backbone, rate: float, seed: int | None = None) -> None:
    """Set every `keras.layers.Dropout` of `backbone` to `rate` (used only when ``training=True``).

    Call it before `compile`/`fit`. The official prompt-tuning runs used 0.1.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    for i, layer in enumerate(backbone._flatten_layers(include_self=False)):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = float(rate)
            if rate > 0 and getattr(layer, "seed_generator", None) is None:
                _add_seed_generator(layer, None if seed is None else seed + i)


def _add_seed_generator(layer, seed: int | None) -> None:
    """Give a built `Dropout` layer the seed generator it would have had with a non-zero rate.

    keras locks a built layer's state; it has no public way to add state
    afterwards, so this unlocks it as keras itself does when it quantizes a
    built layer (``Layer.quantize``), adds the generator and locks it again.
    """
    layer._tracker.unlock()
    try:
        layer.seed_generator = keras.random.SeedGenerator(seed)
    finally:
        layer._tracker.lock()
