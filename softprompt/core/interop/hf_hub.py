"""Hugging Face T5 checkpoints as presets: ``hf://ORG/NAME[@REVISION]`` or a transformers folder,
converted once into softprompt's cache.

keras-hub cannot load a transformers T5 (``T5ForConditionalGeneration`` / ``MT5…``), so
`resolve_hf_t5` does what a user would otherwise do by hand: fetch the checkpoint with
``huggingface_hub.snapshot_download`` (its cache, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` or a saved
login, ``HF_ENDPOINT``, as for any Hugging Face library), convert it with
`softprompt.core.interop.hf_t5.convert_hf_t5`, and keep the keras-hub preset in softprompt's cache:
``$SOFTPROMPT_CACHE`` if set, else the user's cache folder (``~/.cache/softprompt`` on Linux,
``platformdirs.user_cache_dir("softprompt")`` elsewhere), under ``presets/``.

A cached preset is named by what it was converted from, so a changed checkpoint converts again
and an unchanged one never does:

- ``hf://ORG/NAME``: the commit the revision resolved to (``ORG--NAME--<commit>``); with
  ``HF_HUB_OFFLINE=1`` the commit the local Hugging Face cache records for it. Only
  ``config.json`` is fetched before the cache is consulted: a second run downloads no weights.
- a local folder: a SHA-256 of its config, tokenizer and weight files (``NAME--<hash>``); the
  hash is remembered per folder and file sizes/modification times, so it is computed once.

Each call says in one line (on stderr, or through ``echo``) whether it converted or reused.
Anything else (``t5_1.1_base``, ``kaggle://…``, a keras-hub preset folder, an ``hf://`` repository
holding a keras-hub preset) is not ours: `resolve_hf_t5` returns ``None`` and keras-hub loads it.

Example:
    >>> resolve_hf_t5("hf://google/t5-base-lm-adapt")        # first call: fetch and convert
    hf://google/t5-base-lm-adapt: converting into ~/.cache/softprompt/presets/google--t5-base-...
    >>> resolve_hf_t5("hf://google/t5-base-lm-adapt")        # later: the cached preset
    hf://google/t5-base-lm-adapt: using the converted preset cached in ~/.cache/softprompt/...
    >>> resolve_hf_t5("t5_base_multi") is None                # keras-hub's own
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from softprompt.core.interop.cache import cache_dir
from softprompt.core.interop.hf_t5 import CONVERSION_FILE, convert_hf_t5
from softprompt.core.io.atomic import atomic_write

T5_MODEL_TYPES = ("t5", "mt5")
#: The files of a transformers T5 the converter reads (safetensors first; .bin only without).
CHECKPOINT_FILES = ("config.json", "spiece.model", "*.safetensors", "model.safetensors.index.json")
BIN_FILES = ("pytorch_model*.bin", "pytorch_model.bin.index.json")

Echo = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # sys.stderr as it is now (tests swap it)


def parse_model_uri(preset: str) -> tuple[str, str | None] | None:
    """``hf://ORG/NAME[@REVISION]`` as ``(repo_id, revision)``; ``None`` for anything else.

    >>> parse_model_uri("hf://google/t5-base-lm-adapt@main")
    ('google/t5-base-lm-adapt', 'main')
    >>> parse_model_uri("./t5") is None
    True
    """
    if not preset.startswith("hf://"):
        return None
    match = re.fullmatch(r"hf://((?:[\w.-]+/)?[\w.-]+)(?:@(.+))?", preset)
    if match is None or match.group(1).startswith(("datasets/", "spaces/")):
        raise ValueError(f"preset {preset}: expected hf://ORG/NAME[@REVISION] (a model repository)")
    return match.group(1), match.group(2)


def resolve_hf_t5(preset: str | os.PathLike, echo: Echo = _stderr) -> Path | None:
    """The keras-hub preset folder for a Hugging Face T5 ``preset``, converted on first use.

    Args:
        preset: ``hf://ORG/NAME[@REVISION]`` or a folder written by transformers'
            ``save_pretrained`` (``config.json`` with ``model_type`` ``t5``/``mt5``, the weights,
            ``spiece.model``).
        echo: where the one line saying "converting" or "using the cached preset" goes.

    Returns:
        The cached preset folder, or ``None`` when ``preset`` is not a Hugging Face
        transformers checkpoint (keras-hub names and folders, keras-hub presets on the hub).

    Raises:
        ValueError: one line naming the preset and the reason: offline with nothing cached, no
            such repository or revision, a gated or private repository without a token, a
            checkpoint that is not a T5 (``model_type`` is not ``t5``/``mt5``).
        FileNotFoundError: the checkpoint lacks a file the conversion needs.
    """
    text = str(preset)
    hub = parse_model_uri(text)
    if hub is not None:
        return _resolve_hub(text, *hub, echo=echo)
    path = Path(text).expanduser()
    if not (path / "config.json").is_file() or _model_type(path, text) is None:
        return None
    source = path.resolve()
    target = cache_dir() / "presets" / f"{_safe(source.name)}--{content_key(source)[:16]}"
    return _convert(source, target, text, echo)


def _resolve_hub(preset: str, repo_id: str, revision: str | None, echo: Echo) -> Path | None:
    snapshot = _download(preset, repo_id, revision, ["config.json"])
    if not (snapshot / "config.json").is_file():
        raise ValueError(
            f"preset {preset}: the repository has no config.json (neither a transformers nor a "
            f"keras-hub checkpoint)"
        )
    if _model_type(snapshot, preset) is None:
        return None  # a keras-hub preset on the hub: keras-hub's own hf:// loader reads it
    target = cache_dir() / "presets" / f"{_safe(repo_id)}--{snapshot.name}"
    if _complete(target):
        echo(f"{preset}: using the converted preset cached in {target}")
        return target
    snapshot = _download(preset, repo_id, snapshot.name, list(CHECKPOINT_FILES))
    if not any(snapshot.glob("*.safetensors")):
        snapshot = _download(preset, repo_id, snapshot.name, list(BIN_FILES))
    return _convert(snapshot, target, preset, echo)


def _download(preset: str, repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    """``snapshot_download`` with its errors turned into one line naming the preset."""
    import huggingface_hub
    from huggingface_hub import errors

    try:
        return Path(
            huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
        )
    except errors.GatedRepoError:
        reason = ("a gated repository: accept its terms on huggingface.co, then log in "
                  "(`hf auth login`) or set HF_TOKEN")
    except errors.RepositoryNotFoundError:
        reason = ("no such model repository on the Hugging Face Hub (a private one needs a "
                  "login or HF_TOKEN)")
    except errors.RevisionNotFoundError:
        reason = f"the repository has no revision {revision!r}"
    except errors.LocalEntryNotFoundError as err:
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            reason = ("not in the Hugging Face cache, and HF_HUB_OFFLINE is set (download it "
                      "once online, or unset HF_HUB_OFFLINE)")
        else:
            reason = f"cannot reach the Hugging Face Hub and it is not cached ({_first_line(err)})"
    except errors.HfHubHTTPError as err:
        reason = f"the Hugging Face Hub refused the download ({_first_line(err)})"
    raise ValueError(f"preset {preset}: {reason}")


def _model_type(folder: Path, preset: str) -> str | None:
    """``model_type`` of ``folder/config.json``: ``None`` for a keras-hub preset (its config has
    none); a ValueError for a transformers model that is not a T5."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"preset {preset}: config.json is not readable JSON ({err})") from None
    if not isinstance(config, dict) or "model_type" not in config:
        return None
    model_type = str(config["model_type"])
    if model_type not in T5_MODEL_TYPES:
        architectures = ", ".join(config.get("architectures") or ()) or model_type
        raise ValueError(
            f"preset {preset}: a {architectures} checkpoint (model_type {model_type!r}), not a "
            f"T5 (model_type must be {' or '.join(T5_MODEL_TYPES)})"
        )
    return model_type


def _complete(target: Path) -> bool:
    """A cached preset is complete once ``conversion.json`` is in it (written last, and the
    folder appears by one rename)."""
    return (target / CONVERSION_FILE).is_file()


def _convert(source: Path, target: Path, preset: str, echo: Echo) -> Path:
    """Convert ``source`` into ``target`` unless a complete conversion is there; one process
    converts while others wait for it (a lock file beside ``target``)."""
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(target.name + ".lock"))):
        if _complete(target):
            echo(f"{preset}: using the converted preset cached in {target}")
            return target
        echo(f"{preset}: converting into {target} (once; later runs reuse it)")
        try:
            convert_hf_t5(source, target, overwrite=True)
        except (FileNotFoundError, ValueError) as err:
            raise ValueError(f"preset {preset}: {err}") from None
    return target


# ------------------------------------------------------------------------ content keys


def _checkpoint_files(folder: Path) -> list[Path]:
    patterns = CHECKPOINT_FILES + BIN_FILES
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    return sorted(found)


def content_key(folder: str | os.PathLike) -> str:
    """SHA-256 (hex) of the names and contents of ``folder``'s checkpoint files.

    Remembered in ``presets/fingerprints.json`` per folder, with each file's size and
    modification time, so an unchanged folder is hashed once.
    """
    folder = Path(folder).resolve()
    files = _checkpoint_files(folder)
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo_path = cache_dir() / "presets" / "fingerprints.json"
    memo = _read_memo(memo_path)
    known = memo.get(str(folder))
    if isinstance(known, dict) and known.get("files") == stamp and known.get("sha256"):
        return str(known["sha256"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    key = digest.hexdigest()
    memo[str(folder)] = {"files": stamp, "sha256": key}
    memo_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(memo_path, "w") as f:
        json.dump(memo, f, indent=1, sort_keys=True)
    return key


def _read_memo(path: Path) -> dict:
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "--", name).strip("-") or "checkpoint"


def _first_line(err: BaseException) -> str:
    return next((line.strip() for line in str(err).splitlines() if line.strip()),
                type(err).__name__)
