"""A local Hugging Face Hub for the tests (a module of its own, imported by name like
``task_helpers``).

Nothing is downloaded and nothing is stubbed: the real ``datasets`` and ``huggingface_hub`` run
with ``HF_HUB_OFFLINE=1`` and find what the tests put where an earlier online run would have left
it:

- `publish_dataset` prepares a dataset with ``datasets``' own Parquet builder into the
  ``HF_DATASETS_CACHE`` folder a hub load of ``REPO`` / ``CONFIG`` writes
  (``<ns>___<name>/<config>/0.0.0/<commit>/``), which offline ``load_dataset(REPO, CONFIG)``
  reads back;
- `publish_model` lays a folder out as ``huggingface_hub``'s cache does
  (``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<commit>/<file>`` links, ``refs/main``),
  which offline ``snapshot_download`` resolves.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def go_offline(monkeypatch, root: Path) -> Path:
    """Point both caches and softprompt's cache into ``root`` and switch the hub off, for this
    process (the libraries read their settings at import) and for subprocesses (environment)."""
    import datasets.config
    import huggingface_hub.constants

    root = Path(root)
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"),
                        ("HF_HUB_CACHE", str(root / "hub")),
                        ("HF_DATASETS_CACHE", str(root / "datasets")),
                        ("SOFTPROMPT_CACHE", str(root / "softprompt")),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "datasets")
    return root


def publish_dataset(splits: dict, repo_id: str, config: str, commit: str = "0" * 40) -> Path:
    """Put ``splits`` (split name -> `datasets.Dataset`) in the datasets cache as the hub's
    ``repo_id`` / ``config`` at ``commit``; returns the prepared folder."""
    import datasets.config
    from datasets.packaged_modules.parquet.parquet import Parquet

    root = Path(datasets.config.HF_DATASETS_CACHE)
    namespace, _, name = repo_id.rpartition("/")
    staging = root.parent / f"staging-{name}-{config}"
    files = {}
    for split, dataset in splits.items():
        path = staging / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(path))
        files[split] = [str(path)]
    features = next(iter(splits.values())).features
    builder = Parquet(cache_dir=str(root / "staging"), dataset_name=name, config_name=config,
                      hash=commit, data_files=files, features=features)
    builder.download_and_prepare()
    # The builder names the folder after its config id (which hashes the local data files);
    # a hub load's config id is the config name, under "<namespace>___<name>".
    prepared = Path(builder.cache_dir)
    target = root / (f"{namespace}___{name}" if namespace else name) / config / "0.0.0" / commit
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(prepared), str(target))
    shutil.rmtree(root / "staging", ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def publish_model(folder: Path, repo_id: str, commit: str | None = None) -> Path:
    """Put the files of ``folder`` in the hub cache as model ``repo_id`` at ``commit`` (default:
    a hash of the files), with ``refs/main`` pointing at it; returns the snapshot folder."""
    import huggingface_hub.constants

    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    commit = commit or hashlib.sha1("".join(digests.values()).encode()).hexdigest()
    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for path, digest in digests.items():
        blob = repo / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.name
        if not link.exists():
            os.symlink(os.path.relpath(blob, snapshot), link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
