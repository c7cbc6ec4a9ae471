"""``softprompt info``: backend, versions, devices and optional extras."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform

import click

from softprompt.cli.common import backend_option, user_errors

#: import name -> distribution name, for the extras worth knowing about.
EXTRAS = {
    "jax": "jax",
    "torch": "torch",
    "tensorflow": "tensorflow",
    "tensorflow_text": "tensorflow-text",
    "sentencepiece": "sentencepiece",
    "tensorboard": "tensorboard",
    "matplotlib": "matplotlib",
    "transformers": "transformers",
    "peft": "peft",
    "datasets": "datasets",
    "safetensors": "safetensors",
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    """What `info` reports, as a dict (imports keras on the selected backend).

    The backend is set up as `softprompt train` sets it up (`Adapter.configure`:
    ``SOFTPROMPT_CPU_DEVICES``, other hosts), so the devices and the distribution
    listed are the ones a run in this environment would use.
    """
    import keras

    from softprompt import __version__, backends

    adapter = backends.current()
    adapter.configure()
    distribution = adapter.distribute("auto")
    extras = {}
    for module, dist in EXTRAS.items():
        found = importlib.util.find_spec(module) is not None
        extras[module] = _version(dist) if found else None
    return {
        "softprompt": __version__,
        "python": platform.python_version(),
        "backend": adapter.name,
        "backend_version": adapter.version(),
        "devices": [{"kind": d.kind, "name": d.name} for d in adapter.devices()],
        "distribution": {"kind": distribution.kind, "replicas": distribution.num_replicas,
                         "processes": distribution.num_processes},
        "keras": keras.__version__,
        "keras_hub": _version("keras-hub"),
        "numpy": _version("numpy"),
        "extras": extras,
    }


@click.command("info")
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@user_errors
def info(as_json):
    """Show the backend, its version and devices, keras / keras-hub versions and extras.

    Devices and distribution are those `softprompt train` would use here
    (``SOFTPROMPT_CPU_DEVICES=N`` presents N CPU devices on JAX and TensorFlow).

    \b
    Example:
        softprompt info
        softprompt info --backend jax --json
    """
    report = collect()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        ("softprompt", report["softprompt"]),
        ("python", report["python"]),
        ("backend", f"{report['backend']} {report['backend_version']}"),
        ("devices", ", ".join(f"{d['kind']}:{d['name']}" for d in report["devices"]) or "none"),
        ("training", _distribution_text(report["distribution"])),
        ("keras", report["keras"]),
        ("keras-hub", report["keras_hub"]),
        ("numpy", report["numpy"]),
    ]
    extras = [(f"  {name}", version or "not installed")
              for name, version in report["extras"].items()]
    width = max(len(r[0]) for r in rows + extras)
    for name, value in rows:
        click.echo(f"{name.ljust(width)}  {value}")
    click.echo("extras:")
    for name, value in extras:
        click.echo(f"{name.ljust(width)}  {value}")


def _distribution_text(dist: dict) -> str:
    if dist["kind"] == "none":
        return "one device (no distribution)"
    text = f"{dist['kind']} parallel, {dist['replicas']} replicas"
    return text + (f", {dist['processes']} processes" if dist["processes"] > 1 else "")
