"""Entry point of the ``softprompt`` command.

Commands are loaded lazily so that ``softprompt --help`` (and the choice of
backend) happens before keras or any framework is imported.
"""

from __future__ import annotations

import importlib

import click

from softprompt import __version__

#: command name -> "module:attribute"
COMMANDS = {
    "train": "softprompt.cli.train:train",
    "eval": "softprompt.cli.evaluate:evaluate",
    "predict": "softprompt.cli.predict:predict",
    "ensemble": "softprompt.cli.ensemble:ensemble",
    "neighbors": "softprompt.cli.neighbors:neighbors",
    "info": "softprompt.cli.info:info",
    "convert": "softprompt.cli.convert:convert",
    "export": "softprompt.cli.interop:export",
    "import": "softprompt.cli.interop:import_",
    "adapt": "softprompt.cli.adapt:adapt",
    "bench": "softprompt.cli.bench:bench",
    "compare": "softprompt.cli.compare:compare",
    "transfer": "softprompt.cli.compare:transfer",
    "tasks": "softprompt.cli.tasks:tasks",
    "serve": "softprompt.cli.serve:serve",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx, name):
        return self._load(name)

    @staticmethod
    def _load(name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                return None  # command not built yet
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="softprompt")
def cli():
    """Prompt tuning for frozen T5 models on Keras 3 (JAX, PyTorch, TensorFlow).

    \b
    Example:
        softprompt train                      # the built-in demo, offline
        softprompt neighbors runs/demo/best.npy -k 5
        softprompt convert hf-t5 path/to/t5-base-lm-adapt ./my-t5-base-lm-adapt
        softprompt train --preset ./my-t5-base-lm-adapt --task boolq --data path/to/BoolQ
    """


def main():
    cli(prog_name="softprompt")


if __name__ == "__main__":
    main()
