"""softprompt: prompt tuning for frozen T5 models on Keras 3 (JAX, PyTorch, TensorFlow).

Example:
    >>> import softprompt
    >>> model = softprompt.PromptedT5.from_preset("softprompt_tiny", prompt_length=20)
    >>> model.compile(optimizer=softprompt.Adafactor(learning_rate=0.3))   # the paper's, + z-loss
    >>> softprompt.generate(model, ["the red fox ran."], max_length=4)
    >>> softprompt.save_prompt("prompt.npy", model.prompt.embeddings[0])

Names are imported lazily, so ``import softprompt`` does not load keras (the
CLI picks the backend first). With ``SOFTPROMPT_ONLY_BACKEND=1`` and a backend set,
importing softprompt keeps the frameworks of the other backends out of the process
(`softprompt.backends.exclusive`), so import it before keras.
"""

from __future__ import annotations

import importlib

from softprompt.backends.exclusive import from_environment as _only_from_environment

__version__ = "0.1.0"

_EXPORTS = {
    "PromptedT5": "softprompt.core.model.prompted_t5",
    "SoftPrompt": "softprompt.core.model.prompt",
    "Adafactor": "softprompt.core.training.adafactor",
    "save_prompt": "softprompt.core.io.prompt_files",
    "load_prompt": "softprompt.core.io.prompt_files",
    "score": "softprompt.core.inference.batched",
    "generate": "softprompt.core.inference.batched",
    "greedy_tokens": "softprompt.core.inference.decoding",
    "seq2seq_loss": "softprompt.core.model.loss",
    "initial_prompt": "softprompt.core.model.init",
    "convert_hf_t5": "softprompt.core.interop.hf_t5",
    "export_peft": "softprompt.core.interop.peft",
    "import_peft": "softprompt.core.interop.peft",
    "read_peft": "softprompt.core.interop.peft",
    "export_official": "softprompt.core.interop.official",
    "tasks": "softprompt.tasks",
    "backends": "softprompt.backends",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

_only_from_environment()


def __getattr__(name):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'softprompt' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
