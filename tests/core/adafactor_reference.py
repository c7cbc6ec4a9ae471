"""A plain NumPy (float64) transcription of the T5X Adafactor rule, for tests.

Written from the rule as T5X states it (``t5x/adafactor.py``,
``apply_param_gradient`` with the heuristic factoring), one variable at a time;
deliberately independent of `softprompt.core.training.adafactor` (no keras here).
"""

from __future__ import annotations

import numpy as np

DEFAULTS = dict(
    learning_rate=0.3,
    decay_rate=0.8,
    step_offset=0,
    multiply_by_parameter_scale=False,
    clipping_threshold=1.0,
    weight_decay_rate=1e-5,
    epsilon1=1e-30,
    epsilon2=1e-3,
    factored=True,
    min_dim_size_to_factor=128,
    beta1=None,
)


def factored_dims(shape, factored=True, min_dim_size_to_factor=128):
    """(second largest dim, largest dim), or None when the moment stays full."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape, kind="stable")
    if shape[order[-2]] < min_dim_size_to_factor:
        return None
    return int(order[-2]), int(order[-1])


class ReferenceAdafactor:
    """State per variable in a dict; `step` returns the new parameter."""

    def __init__(self, **hparams):
        unknown = set(hparams) - set(DEFAULTS)
        assert not unknown, unknown
        self.h = {**DEFAULTS, **hparams}

    def init(self, shape, never_factor=False):
        h = self.h
        dims = (
            None
            if never_factor
            else factored_dims(shape, h["factored"], h["min_dim_size_to_factor"])
        )
        state = {"dims": dims}
        if dims is None:
            state["v"] = np.zeros(shape)
        else:
            d_row, d_col = dims
            state["v_row"] = np.zeros(np.delete(shape, d_col))
            state["v_col"] = np.zeros(np.delete(shape, d_row))
        if h["beta1"] is not None:
            state["m"] = np.zeros(shape)
        return state

    def step(self, param, grad, state, t, learning_rate=None):
        """One update at optimizer step `t` (counting from 0)."""
        h = self.h
        lr = h["learning_rate"] if learning_rate is None else learning_rate
        param = np.asarray(param, np.float64)
        grad = np.asarray(grad, np.float64)

        t = max(t - h["step_offset"], 0)
        decay = 1.0 - (t + 1.0) ** (-h["decay_rate"])
        mixing = 1.0 - decay
        grad_sqr = grad * grad + h["epsilon1"]

        if state["dims"] is not None:
            d_row, d_col = state["dims"]
            state["v_row"] = decay * state["v_row"] + mixing * grad_sqr.mean(axis=d_col)
            state["v_col"] = decay * state["v_col"] + mixing * grad_sqr.mean(axis=d_row)
            reduced_row = d_row - 1 if d_col < d_row else d_row
            row_col_mean = state["v_row"].mean(axis=reduced_row, keepdims=True)
            row_factor = (state["v_row"] / row_col_mean) ** -0.5
            col_factor = state["v_col"] ** -0.5
            y = grad * np.expand_dims(row_factor, d_col) * np.expand_dims(col_factor, d_row)
        else:
            state["v"] = decay * state["v"] + mixing * grad_sqr
            y = grad * state["v"] ** -0.5

        if h["clipping_threshold"] is not None:
            y = y / max(1.0, np.sqrt(np.mean(y * y)) / h["clipping_threshold"])

        update_scale = lr
        if h["multiply_by_parameter_scale"]:
            update_scale = update_scale * max(h["epsilon2"], np.sqrt(np.mean(param * param)))
        subtrahend = update_scale * y

        if h["beta1"] is not None:
            state["m"] = h["beta1"] * state["m"] + (1.0 - h["beta1"]) * subtrahend
            subtrahend = state["m"]

        if h["weight_decay_rate"]:
            return (1.0 - h["weight_decay_rate"]) * param - subtrahend
        return param - subtrahend
