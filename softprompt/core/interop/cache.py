"""Softprompt's cache folder: presets built or converted on demand lie in its ``presets/``.

The larger members of the embedded family (`softprompt.core.interop.presets`) and the
Hugging Face T5s converted once (`softprompt.core.interop.hf_hub`) are kept there.

Example:
    >>> cache_dir() / "presets"        # ~/.cache/softprompt/presets on Linux
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SOFTPROMPT_CACHE`` if set, else the user's cache folder (``~/.cache/softprompt`` on
    Linux, ``platformdirs.user_cache_dir("softprompt")`` elsewhere)."""
    configured = os.environ.get("SOFTPROMPT_CACHE")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("softprompt"))
