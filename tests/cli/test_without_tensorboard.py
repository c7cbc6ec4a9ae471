"""``softprompt train`` where the `tensorboard` package cannot be imported: it finishes.

`tensorboard` is a dependency, so this happens only where someone removed it; the run must
still write every other output and say once why the TensorBoard events are missing. The
package is hidden in a real subprocess by a finder at the front of ``sys.meta_path`` that
refuses ``tensorboard`` and all its submodules (TensorFlow's optional ``tf.summary`` hook
included), so ``import tensorboard`` fails exactly as on a machine without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from task_helpers import TASK, TRAIN

#: Run the CLI with `tensorboard` unimportable; first check that it really is.
HIDE_TENSORBOARD = """
import importlib.abc, sys

class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hidden())
for hidden in ("tensorboard", "tensorboard.summary.writer.record_writer"):
    try:
        __import__(hidden)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{hidden} is still importable")
from softprompt.cli.main import main
sys.argv[0] = "softprompt"
main()
"""

WARNING = "tensorboard is not installed: no TensorBoard events are written"


def test_train_finishes_without_tensorboard(preset_v11, task_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # as a user's shell has it
    result = subprocess.run(
        [sys.executable, "-c", HIDE_TENSORBOARD, "train", "--preset", preset_v11, *TASK,
         "--data", str(task_dir), *TRAIN, "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count(WARNING) == 1, result.stderr[-3000:]
    assert "Error" not in result.stderr, result.stderr[-3000:]
    for name in ("config.json", "metrics.jsonl", "train.csv", "curve.png", "best.npy",
                 "checkpoints/step-2.npy", "checkpoints/step-4.npy", "checkpoints/latest.json"):
        assert (out / name).is_file(), name
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4]
    assert not list(out.glob("tensorboard/events.out.tfevents.*"))
