"""softprompt's Adafactor against a plain NumPy transcription of the T5X rule.

Runs under whichever backend ``KERAS_BACKEND`` names; every check is the same
on all three.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from softprompt.core.training.adafactor import Adafactor


def _load_reference():
    path = Path(__file__).with_name("adafactor_reference.py")
    spec = importlib.util.spec_from_file_location("adafactor_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ReferenceAdafactor = _load_reference().ReferenceAdafactor

# keras' own `Variable.numpy()` trips a NumPy 2 deprecation warning; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

STEPS = 50
RTOL = 1e-5

# name -> (shape, (row_dim, col_dim) expected with the defaults, or None).
# Every array stays under 32768 elements: larger ones make torch's CPU kernels
# go multi-threaded, which crawls on a busy 2-core machine.
VARIABLES = {
    "kernel": ((200, 130), (1, 0)),  # factored
    "bias": ((300,), None),  # a vector: never factored
    "narrow": ((64, 300), None),  # second largest dim < 128 (factored at threshold 32)
    "stacked": ((1, 150, 140), (2, 1)),  # 3-D, factored on its two largest dims
    "heads": ((3, 40, 64), None),  # 3-D, factored at threshold 32 on dims (1, 2)
    "prompt": ((3, 40, 64), None),  # (N, P, d) prompts: never factored, by name
    "long_prompt": ((1, 150, 140), None),  # a factorable shape, unfactored by name
}

CONFIGS = {
    "paper": {},
    "momentum-scale-decay": dict(
        beta1=0.9, multiply_by_parameter_scale=True, weight_decay_rate=1e-3
    ),
    "no-clip-no-decay": dict(clipping_threshold=None, weight_decay_rate=None, decay_rate=0.5),
    "offset-unfactored": dict(step_offset=7, factored=False, beta1=0.5, clipping_threshold=0.5),
    "low-factor-threshold": dict(min_dim_size_to_factor=32, beta1=0.9),
}


def rel_err(actual, expected):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def make_problem(seed=0):
    """Initial values and a gradient sequence whose scale varies (clipping on and off)."""
    rng = np.random.default_rng(seed)
    init = {
        n: rng.uniform(-0.5, 0.5, shape).astype("float32") for n, (shape, _) in VARIABLES.items()
    }
    grads = [
        {
            n: (10.0 ** rng.uniform(-2, 1) * rng.standard_normal(shape)).astype("float32")
            for n, (shape, _) in VARIABLES.items()
        }
        for _ in range(STEPS)
    ]
    return init, grads


def run_against_reference(hparams, schedule=None, reference_lr=None):
    init, grads = make_problem()
    variables = [keras.Variable(init[n], name=n) for n in VARIABLES]
    optimizer = Adafactor(**hparams) if schedule is None else Adafactor(schedule, **hparams)
    reference = ReferenceAdafactor(**hparams)
    params = dict(init)
    states = {
        n: reference.init(shape, never_factor="prompt" in n) for n, (shape, _) in VARIABLES.items()
    }

    for t in range(STEPS):
        optimizer.apply([ops.convert_to_tensor(grads[t][n]) for n in VARIABLES], variables)
        lr = None if reference_lr is None else reference_lr(t)
        for n in VARIABLES:
            params[n] = reference.step(params[n], grads[t][n], states[n], t, lr)
        for var, n in zip(variables, VARIABLES, strict=True):
            err = rel_err(var.numpy(), params[n])
            assert err <= RTOL, f"{n} at step {t}: relative error {err:.2e}"

    slots = {v.path.split("/")[-1]: v.numpy() for v in optimizer.variables}
    for n in VARIABLES:
        for key in ("v", "v_row", "v_col", "m"):
            if key in states[n]:
                err = rel_err(slots[f"{n}_{key}"], states[n][key])
                assert err <= RTOL, f"slot {n}_{key}: relative error {err:.2e}"
    assert int(ops.convert_to_numpy(optimizer.iterations)) == STEPS


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_reference_for_50_steps(name):
    run_against_reference(CONFIGS[name])


def test_matches_reference_with_a_learning_rate_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.3, decay_steps=10, decay_rate=0.5)
    run_against_reference(
        dict(multiply_by_parameter_scale=True),
        schedule=schedule,
        reference_lr=lambda t: 0.3 * 0.5 ** (t / 10),
    )


def test_slot_shapes_follow_the_factoring_rule():
    variables = [
        keras.Variable(np.zeros(shape, "float32"), name=n) for n, (shape, _) in VARIABLES.items()
    ]
    optimizer = Adafactor()
    optimizer.build(variables)
    for var, (n, (_, dims)) in zip(variables, VARIABLES.items(), strict=True):
        assert optimizer.factored_dims(var) == dims, n
    slots = {v.path.split("/")[-1]: tuple(v.shape) for v in optimizer.variables}
    assert slots["kernel_v_row"] == (130,) and slots["kernel_v_col"] == (200,)
    assert slots["stacked_v_row"] == (1, 140) and slots["stacked_v_col"] == (1, 150)
    assert slots["long_prompt_v"] == (1, 150, 140) and "long_prompt_v_row" not in slots
    assert all(v.dtype == "float32" for v in optimizer.variables[2:])

    kernel, _, narrow, _, heads, prompt, long_prompt = variables
    assert Adafactor(never_factor=()).factored_dims(long_prompt) == (2, 1)
    assert Adafactor(factored=False).factored_dims(kernel) is None
    low = Adafactor(min_dim_size_to_factor=32)
    assert low.factored_dims(narrow) == (0, 1)
    assert low.factored_dims(heads) == (1, 2)
    assert low.factored_dims(prompt) is None


class _PromptTable(keras.layers.Layer):
    """Reads its (N, P, d) variable through a gather, as PromptedT5 does."""

    def __init__(self, init, **kwargs):
        super().__init__(**kwargs)
        self._init = init

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=self._init.shape,
            initializer=keras.initializers.Constant(self._init),
            name="embeddings",
        )

    def call(self, prompt_ids):
        return ops.take(self.embeddings, prompt_ids, axis=0)


class _SpyAdafactor(Adafactor):
    gradient_types: list = []

    def update_step(self, gradient, variable, learning_rate):
        _SpyAdafactor.gradient_types.append(type(gradient).__name__)
        super().update_step(gradient, variable, learning_rate)


def test_gradient_through_a_gather_trains_like_the_reference():
    """`ops.take(var, ids)` in the loss: TensorFlow hands the optimizer `IndexedSlices`."""
    rng = np.random.default_rng(1)
    init = rng.uniform(-0.5, 0.5, (3, 20, 32)).astype("float32")
    ids_in = keras.Input(shape=(), dtype="int32")
    model = keras.Model(ids_in, _PromptTable(init, name="soft_prompt")(ids_in))
    _SpyAdafactor.gradient_types = []
    model.compile(
        optimizer=_SpyAdafactor(beta1=0.9, min_dim_size_to_factor=16, name="spy_adafactor"),
        loss="mse",
    )

    # A shape factorable at this threshold; the variable's path says "prompt".
    reference = ReferenceAdafactor(beta1=0.9, min_dim_size_to_factor=16)
    state = reference.init(init.shape, never_factor=True)
    param = init.astype(np.float64)
    for t in range(8):
        ids = rng.choice(3, size=5).astype("int32")  # duplicates; some rows unused
        ids[:2] = [0, 0]
        target = rng.standard_normal((5, 20, 32)).astype("float32")
        model.train_on_batch(ids, target)

        # mse = mean of squares over every element; gradient scattered back by id.
        grad_out = 2.0 * (param[ids] - target) / target.size
        grad = np.zeros_like(param)
        np.add.at(grad, ids, grad_out)
        param = reference.step(param, grad, state, t)
        err = rel_err(model.weights[0].numpy(), param)
        assert err <= RTOL, f"step {t}: relative error {err:.2e}"

    assert model.optimizer.factored_dims(model.weights[0]) is None  # path has "prompt"
    if keras.backend.backend() == "tensorflow":
        assert "IndexedSlices" in _SpyAdafactor.gradient_types


def test_state_restores_into_a_fresh_optimizer():
    init, grads = make_problem(seed=2)
    names = ["kernel", "prompt"]
    hparams = dict(beta1=0.9, multiply_by_parameter_scale=True)

    def apply(optimizer, variables, steps):
        for t in steps:
            optimizer.apply([ops.convert_to_tensor(grads[t][n]) for n in names], variables)

    variables = [keras.Variable(init[n], name=n) for n in names]
    first = Adafactor(**hparams)
    apply(first, variables, range(5))
    store = {}
    first.save_own_variables(store)
    midway = [v.numpy() for v in variables]
    apply(first, variables, range(5, 10))

    restored_vars = [keras.Variable(value, name=n) for value, n in zip(midway, names, strict=True)]
    second = Adafactor(**hparams)
    second.build(restored_vars)
    second.load_own_variables(store)
    apply(second, restored_vars, range(5, 10))
    for a, b in zip(variables, restored_vars, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_gradient_accumulation_counts_applied_updates():
    init, grads = make_problem(seed=3)
    var = keras.Variable(init["kernel"], name="kernel")
    optimizer = Adafactor(gradient_accumulation_steps=2)
    reference = ReferenceAdafactor()
    state = reference.init(init["kernel"].shape)
    param = init["kernel"]
    for t in range(3):
        pair = grads[2 * t]["kernel"], grads[2 * t + 1]["kernel"]
        for g in pair:
            optimizer.apply([ops.convert_to_tensor(g)], [var])
        param = reference.step(param, (pair[0].astype(np.float64) + pair[1]) / 2, state, t)
        assert rel_err(var.numpy(), param) <= RTOL


def test_config_round_trip():
    optimizer = Adafactor(
        learning_rate=0.1,
        decay_rate=0.7,
        step_offset=3,
        multiply_by_parameter_scale=True,
        clipping_threshold=None,
        weight_decay_rate=None,
        epsilon1=1e-20,
        epsilon2=1e-4,
        factored=False,
        min_dim_size_to_factor=32,
        beta1=0.9,
        never_factor=("soft_prompt", "bias"),
        name="af",
    )
    config = optimizer.get_config()
    for option in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema"):
        assert option not in config
    again = Adafactor.from_config(config)
    assert again.get_config() == config
    assert again.never_factor == ("soft_prompt", "bias")

    revived = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(revived, Adafactor) and revived.get_config() == config

    schedule = keras.optimizers.schedules.ExponentialDecay(0.3, decay_steps=10, decay_rate=0.5)
    scheduled = Adafactor.from_config(Adafactor(schedule).get_config())
    assert (
        scheduled.get_config()["learning_rate"] == Adafactor(schedule).get_config()["learning_rate"]
    )

    # A config written by keras' base class (neutral generic options) still loads.
    base_style = {
        **config,
        "weight_decay": None,
        "clipnorm": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
    }
    assert Adafactor.from_config(base_style).get_config() == config


@pytest.mark.parametrize(
    "option, value",
    [
        ("weight_decay", 0.01),
        ("clipnorm", 1.0),
        ("clipvalue", 1.0),
        ("global_clipnorm", 1.0),
        ("use_ema", True),
    ],
)
def test_rejects_keras_generic_options(option, value):
    with pytest.raises(ValueError, match=option):
        Adafactor(**{option: value})


@pytest.mark.parametrize(
    "option, value",
    [
        ("beta1", 1.0),
        ("clipping_threshold", 0.0),
        ("weight_decay_rate", 1.0),
        ("decay_rate", 0.0),
        ("min_dim_size_to_factor", 0),
    ],
)
def test_rejects_bad_hyperparameters(option, value):
    with pytest.raises(ValueError, match=option):
        Adafactor(**{option: value})
