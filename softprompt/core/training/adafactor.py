"""The paper's optimizer: Adafactor with T5X semantics, as a keras optimizer.

keras' own `keras.optimizers.Adafactor` cannot express the prompt-tuning setting
(it caps the learning rate at ``1/sqrt(step)``, always multiplies by the
parameter scale, factors every rank-2 variable and scales weight decay by the
learning rate). `Adafactor` here follows T5X's ``t5x/adafactor.py`` (the same
rule as optax's ``adafactor``), one variable at a time, with step ``t``
counting from 0:

1. ``decay = 1 - (t + 1) ** -decay_rate``; ``g2 = grad**2 + epsilon1``.
2. Second moment: if the two largest dimensions are both
   ``>= min_dim_size_to_factor`` (and the variable is not marked never-factored),
   keep row/column means of ``g2`` as exponential averages and rebuild
   ``v = v_row * v_col / mean(v_row)``; otherwise keep the full ``v``.
3. ``y = grad / sqrt(v)``, then ``y /= max(1, RMS(y) / clipping_threshold)``.
4. ``update = lr * y``, times ``max(epsilon2, RMS(param))`` when
   `multiply_by_parameter_scale`.
5. With `beta1`: ``m = beta1 * m + (1 - beta1) * update`` and ``update = m``.
6. ``param = (1 - weight_decay_rate) * param - update`` (decay NOT times lr).

All optimizer state lives in keras variables (``optimizer.variables``), in
float32, so checkpoints save and restore it like any other keras state.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

# keras' generic options that would act a second time on top of Adafactor's
# own clipping / weight decay, or replace the weights behind its back.
_REJECTED_OPTIONS = {
    "weight_decay": "use `weight_decay_rate` (T5X semantics, not multiplied by the learning rate)",
    "clipnorm": "Adafactor already clips each update by its RMS (`clipping_threshold`)",
    "clipvalue": "Adafactor already clips each update by its RMS (`clipping_threshold`)",
    "global_clipnorm": "Adafactor already clips each update by its RMS (`clipping_threshold`)",
    "use_ema": "keep an average of the prompt outside the optimizer if you need one",
}
# Only meaningful with `use_ema`; accepted (and dropped) so stored configs load.
_EMA_OPTIONS = ("ema_momentum", "ema_overwrite_frequency")


@keras.saving.register_keras_serializable(package="softprompt")
class Adafactor(keras.optimizers.Optimizer):
    """Adafactor with T5X semantics (the prompt-tuning paper's optimizer).

    The defaults are the paper's: constant learning rate 0.3, no parameter
    scaling, update clipping at RMS 1, weight decay 1e-5, no momentum.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Absolute step size (there is no ``1/sqrt(step)`` cap).
        decay_rate: exponent of the second-moment schedule
            ``1 - (t + 1) ** -decay_rate``.
        step_offset: the optimizer step at which that schedule restarts:
            ``t = max(iterations - step_offset, 0)`` (T5X subtracts it; the
            clamp at 0 only matters before that step, where T5X would divide
            by zero).
        multiply_by_parameter_scale: scale each update by
            ``max(epsilon2, RMS(param))``.
        clipping_threshold: clip each update to this RMS; `None` turns it off.
        weight_decay_rate: ``param = (1 - weight_decay_rate) * param - update``;
            `None` or 0 turns it off. Not multiplied by the learning rate.
        epsilon1: added to the squared gradient.
        epsilon2: lower bound of the parameter scale.
        factored: allow a factored second moment at all.
        min_dim_size_to_factor: factor a variable on its two largest dimensions
            only when the second largest is at least this size.
        beta1: momentum on the (lr-scaled) update; `None` keeps no momentum.
        never_factor: substrings; a variable whose `path` (or `name`) contains
            any of them keeps an unfactored second moment whatever its shape.
            The default ``("prompt",)`` keeps the soft prompt unfactored as in
            the official code; ``()`` factors by shape alone.
        name: the optimizer's name (prefix of its variables).
        **kwargs: keras' `loss_scale_factor` and `gradient_accumulation_steps`
            (with accumulation, ``t`` counts applied updates, not micro-steps).
            keras' `weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`
            and `use_ema` raise a `ValueError`: they would act on top of the
            rule above. Passing them as `None`/`False` is accepted, so stored
            keras configs load.

    Examples:

    >>> import keras, numpy as np
    >>> from softprompt.core.training.adafactor import Adafactor
    >>> prompt = keras.Variable(np.zeros((1, 4, 8), "float32"), name="prompt")
    >>> optimizer = Adafactor()  # the paper's setting
    >>> optimizer.apply([np.ones((1, 4, 8), "float32")], [prompt])
    >>> round(float(prompt.numpy()[0, 0, 0]), 4)  # first step: -lr * sign(grad)
    -0.3
    """

    def __init__(
        self,
        learning_rate=0.3,
        decay_rate: float = 0.8,
        step_offset: int = 0,
        multiply_by_parameter_scale: bool = False,
        clipping_threshold: float | None = 1.0,
        weight_decay_rate: float | None = 1e-5,
        epsilon1: float = 1e-30,
        epsilon2: float = 1e-3,
        factored: bool = True,
        min_dim_size_to_factor: int = 128,
        beta1: float | None = None,
        never_factor: Sequence[str] = ("prompt",),
        name: str | None = None,
        **kwargs,
    ):
        for option, advice in _REJECTED_OPTIONS.items():
            value = kwargs.pop(option, None)
            if value not in (None, False):
                raise ValueError(f"Adafactor does not take keras' `{option}={value!r}`: {advice}.")
        for option in _EMA_OPTIONS:
            kwargs.pop(option, None)
        if isinstance(learning_rate, int) and not isinstance(learning_rate, bool):
            learning_rate = float(learning_rate)
        _check(decay_rate > 0, "decay_rate", decay_rate, "a positive float")
        _check(int(step_offset) == step_offset, "step_offset", step_offset, "an integer")
        _check(
            clipping_threshold is None or clipping_threshold > 0,
            "clipping_threshold",
            clipping_threshold,
            "None or a positive float",
        )
        _check(
            weight_decay_rate is None or 0 <= weight_decay_rate < 1,
            "weight_decay_rate",
            weight_decay_rate,
            "None or a float in [0, 1)",
        )
        _check(beta1 is None or 0 <= beta1 < 1, "beta1", beta1, "None or a float in [0, 1)")
        _check(epsilon1 >= 0, "epsilon1", epsilon1, "a float >= 0")
        _check(epsilon2 >= 0, "epsilon2", epsilon2, "a float >= 0")
        _check(
            int(min_dim_size_to_factor) == min_dim_size_to_factor and min_dim_size_to_factor >= 1,
            "min_dim_size_to_factor",
            min_dim_size_to_factor,
            "a positive integer",
        )
        if isinstance(never_factor, str):
            never_factor = (never_factor,)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay_rate = float(decay_rate)
        self.step_offset = int(step_offset)
        self.multiply_by_parameter_scale = bool(multiply_by_parameter_scale)
        self.clipping_threshold = None if clipping_threshold is None else float(clipping_threshold)
        self.weight_decay_rate = None if weight_decay_rate is None else float(weight_decay_rate)
        self.epsilon1 = float(epsilon1)
        self.epsilon2 = float(epsilon2)
        self.factored = bool(factored)
        self.min_dim_size_to_factor = int(min_dim_size_to_factor)
        self.beta1 = None if beta1 is None else float(beta1)
        self.never_factor = tuple(str(s) for s in never_factor)

    # -- which variables get a factored second moment ------------------------

    def is_never_factored(self, variable) -> bool:
        """Whether `variable`'s path or name matches one of `never_factor`."""
        names = (str(getattr(variable, "path", "")), str(getattr(variable, "name", "")))
        return any(s in n for s in self.never_factor for n in names)

    def factored_dims(self, variable) -> tuple[int, int] | None:
        """``(row_dim, col_dim)`` factored for `variable`, or `None`.

        ``col_dim`` is the largest dimension and ``row_dim`` the second largest
        (ties keep the original order); the second moment is factored only when
        ``shape[row_dim] >= min_dim_size_to_factor``.
        """
        shape = tuple(variable.shape)
        if not self.factored or len(shape) < 2 or self.is_never_factored(variable):
            return None
        by_size = sorted(range(len(shape)), key=lambda d: shape[d])
        row_dim, col_dim = by_size[-2], by_size[-1]
        if shape[row_dim] < self.min_dim_size_to_factor:
            return None
        return row_dim, col_dim

    # -- state -----------------------------------------------------------------

    def build(self, var_list):
        """Creates the slots: ``v_row``/``v_col`` or ``v``, and ``m`` with momentum."""
        if self.built:
            return
        super().build(var_list)
        self._dims, self._v_row, self._v_col, self._v, self._m = [], [], [], [], []
        for var in var_list:
            dims = None if self._overwrite_variable_with_gradient(var) else self.factored_dims(var)
            self._dims.append(dims)
            v_row = v_col = v = m = None
            if not self._overwrite_variable_with_gradient(var):
                prefix = str(getattr(var, "path", var.name)).replace("/", "_")
                shape = tuple(var.shape)
                if dims is not None:
                    row_dim, col_dim = dims
                    v_row = self._slot(_drop(shape, col_dim), f"{prefix}_v_row")
                    v_col = self._slot(_drop(shape, row_dim), f"{prefix}_v_col")
                else:
                    v = self._slot(shape, f"{prefix}_v")
                if self.beta1 is not None:
                    m = self._slot(shape, f"{prefix}_m")
            self._v_row.append(v_row)
            self._v_col.append(v_col)
            self._v.append(v)
            self._m.append(m)

    def _slot(self, shape, name):
        return self.add_variable(shape=shape, initializer="zeros", dtype="float32", name=name)

    # -- the update --------------------------------------------------------------

    def _second_moment_decay(self):
        t = ops.maximum(ops.cast(self.iterations, "float32") - float(self.step_offset), 0.0)
        return 1.0 - ops.power(t + 1.0, -self.decay_rate)

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        # Adding to dense zeros densifies a sparse gradient (TensorFlow hands
        # `IndexedSlices` for a variable read through a gather; duplicates sum).
        grad = ops.add(ops.zeros(variable.shape, "float32"), ops.cast(gradient, "float32"))
        param = ops.cast(variable, "float32")
        decay = self._second_moment_decay()
        mixing = 1.0 - decay
        grad_sqr = ops.square(grad) + self.epsilon1

        # Second moment, factored or full; y = grad / sqrt(v).
        if self._dims[i] is not None:
            row_dim, col_dim = self._dims[i]
            v_row, v_col = self._v_row[i], self._v_col[i]
            new_v_row = decay * v_row + mixing * ops.mean(grad_sqr, axis=col_dim)
            new_v_col = decay * v_col + mixing * ops.mean(grad_sqr, axis=row_dim)
            self.assign(v_row, new_v_row)
            self.assign(v_col, new_v_col)
            row_dim_in_v_row = row_dim - 1 if col_dim < row_dim else row_dim
            row_mean = ops.mean(new_v_row, axis=row_dim_in_v_row, keepdims=True)
            row_factor = ops.rsqrt(new_v_row / row_mean)
            col_factor = ops.rsqrt(new_v_col)
            y = (
                grad
                * ops.expand_dims(row_factor, axis=col_dim)
                * ops.expand_dims(col_factor, axis=row_dim)
            )
        else:
            v = self._v[i]
            new_v = decay * v + mixing * grad_sqr
            self.assign(v, new_v)
            y = grad * ops.rsqrt(new_v)

        # Clip the update by its RMS.
        if self.clipping_threshold is not None:
            y = y / ops.maximum(1.0, _rms(y) / self.clipping_threshold)

        # Scale by the learning rate (and the parameter's RMS).
        update = ops.cast(learning_rate, "float32") * y
        if self.multiply_by_parameter_scale:
            update = update * ops.maximum(self.epsilon2, _rms(param))

        # Momentum on the scaled update.
        if self.beta1 is not None:
            m = self._m[i]
            update = self.beta1 * m + (1.0 - self.beta1) * update
            self.assign(m, update)

        # Weight decay, not multiplied by the learning rate.
        if self.weight_decay_rate:
            param = (1.0 - self.weight_decay_rate) * param
        self.assign(variable, ops.cast(param - update, variable.dtype))

    # -- config --------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        for option in (*_REJECTED_OPTIONS, *_EMA_OPTIONS):
            config.pop(option, None)
        config.update(
            {
                "decay_rate": self.decay_rate,
                "step_offset": self.step_offset,
                "multiply_by_parameter_scale": self.multiply_by_parameter_scale,
                "clipping_threshold": self.clipping_threshold,
                "weight_decay_rate": self.weight_decay_rate,
                "epsilon1": self.epsilon1,
                "epsilon2": self.epsilon2,
                "factored": self.factored,
                "min_dim_size_to_factor": self.min_dim_size_to_factor,
                "beta1": self.beta1,
                "never_factor": list(self.never_factor),
            }
        )
        return config


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))


def _drop(shape, dim):
    return shape[:dim] + shape[dim + 1 :]


def _check(ok, name, value, expected):
    if not ok:
        raise ValueError(f"Adafactor got `{name}={value!r}`; expected {expected}.")
