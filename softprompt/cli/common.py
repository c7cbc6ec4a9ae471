"""Options and error handling shared by every command.

Commands import keras (and so the backend) only inside their bodies, after
`backend_option` has set ``KERAS_BACKEND``.
"""

from __future__ import annotations

import functools
import os
import sys

import click

from softprompt.backends.base import DTYPES
from softprompt.core.disk_space import DiskFull
from softprompt.core.run_lock import RunFolderBusy

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class UserInputError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None):
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


class FilePath(click.Path):
    """`click.Path` that also refuses a NUL byte as a usage error.

    ``os.stat`` raises `ValueError` for a NUL byte, which click would let escape as a
    traceback while it parses the options.
    """

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\x00" in value:
            self.fail(f"{value!r} holds a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def _set_backend(ctx, param, value):
    from softprompt import backends

    if value is None:
        value = os.environ.get("KERAS_BACKEND")
        if value is None:
            return None
    try:
        return backends.select(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param) from None


def backend_option(f):
    """``--backend jax|torch|tensorflow``: sets KERAS_BACKEND before keras loads."""
    return click.option(
        "--backend",
        type=str,
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_set_backend,
        help="Framework to run on: jax, torch or tensorflow (default: $KERAS_BACKEND).",
    )(f)


def _set_dtype(ctx, param, value):
    if value is None or value == "float32":
        return value
    from softprompt import backends

    backends.current().set_dtype(value)  # keras' policy for the models built afterwards
    return value


def dtype_option(f):
    """``--dtype float32|bfloat16|mixed_bfloat16``: the frozen model's dtype policy.

    Applied when the options are parsed, before any model is built (after
    ``--backend``, which is eager). The prompt stays float32.
    """
    return click.option(
        "--dtype",
        type=click.Choice(DTYPES),
        default="float32",
        show_default=True,
        expose_value=False,
        callback=_set_dtype,
        help="Frozen model's weights/compute dtype (bfloat16: faster and half the memory where "
             "the hardware multiplies bfloat16; norms, softmax and logits stay float32).",
    )(f)


def debug_option(f):
    return click.option(
        "--debug", is_flag=True, default=False, help="Show full tracebacks on errors."
    )(f)


def user_errors(f):
    """Turn the errors a user can cause into one-line messages with exit code 2.

    `ValueError`, `FileNotFoundError`, `NotADirectoryError`, `IsADirectoryError`,
    `PermissionError` and `RunFolderBusy` become ``Error: <message>`` (exit 2);
    `DiskFull` is ``Error: <message>`` with exit 1, and any other exception is a
    runtime failure (exit 1, one line, its type named). ``--debug`` re-raises
    so the traceback shows.
    """

    @functools.wraps(f)
    def wrapper(*args, debug=False, **kwargs):
        if not debug:
            quiet_tensorflow_import()
        try:
            return f(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                PermissionError, RunFolderBusy) as err:
            if debug:
                raise
            raise UserInputError(_one_line(err)) from None
        except DiskFull as err:
            if debug:
                raise
            click.echo(f"Error: {_one_line(err)}", err=True)
            sys.exit(EXIT_RUNTIME)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as err:  # noqa: BLE001 - last line of defence for a CLI
            if debug:
                raise
            click.echo(f"Error: {type(err).__name__}: {_one_line(err)}", err=True)
            sys.exit(EXIT_RUNTIME)

    return debug_option(wrapper)


def quiet_tensorflow_import() -> None:
    """Import TensorFlow with its C++ start-up chatter held back.

    keras-hub's tokenizers need TensorFlow on every backend, and TensorFlow's
    C++ runtime prints oneDNN/CUDA notices straight to the stderr file
    descriptor before its logging is configured (``TF_CPP_MIN_LOG_LEVEL``
    cannot stop them), which would bury our one-line errors. The notices are
    shown only if the import fails.
    """
    import tempfile

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError):
        text = text.strip("'\"")
    return " ".join(text.split())
