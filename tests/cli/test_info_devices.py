"""``softprompt info`` lists the devices a training run in the same environment would use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras

#: Backends whose adapter presents N CPU devices for ``SOFTPROMPT_CPU_DEVICES=N`` (torch
#: trains on one device per process and starts processes instead).
SIMULATES_CPU_DEVICES = {"jax": 2, "tensorflow": 2, "torch": 1}


def test_info_shows_the_cpu_devices_training_would_use():
    backend = keras.backend.backend()
    env = {**os.environ, "SOFTPROMPT_CPU_DEVICES": "2", "KERAS_BACKEND": backend,
           "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "softprompt.cli.main", "info", "--json"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    expected = SIMULATES_CPU_DEVICES[backend]
    assert [d["kind"] for d in report["devices"]] == ["cpu"] * expected, report["devices"]
    assert report["distribution"]["replicas"] == expected, report["distribution"]
    assert report["distribution"]["kind"] == ("data" if expected > 1 else "none")
