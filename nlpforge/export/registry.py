"""A local model registry: immutable bundle versions under ``NAME/VERSION`` and stage pointers.

Layout of the registry folder (``$NLPFORGE_REGISTRY``, default ``./registry``)::

    NAME/v1/            a bundle, copied in once and never changed
    NAME/v2/
    NAME/stages.json    {"production": "v2", "staging": "v1"}, rewritten atomically

``resolve("NAME@production")``, ``resolve("NAME@v2")`` and ``resolve("NAME@latest")`` give
the bundle folder; anything else is a path and passes through. A bundle is checked in full
(``engines.bundle.read_bundle``) before it is registered; a broken entry already in a registry
is listed with its error instead of breaking the listing of the others.

``--registry mlflow:[TRACKING_URI]`` (or ``NLPFORGE_REGISTRY=mlflow:...``) puts the same
registry on MLflow's Model Registry instead (:mod:`nlpforge.export.registry_mlflow`): the same
refs, versions and stages, every function here dispatching to it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from nlpforge.artifacts import ArtifactError, BundleMeta
from nlpforge.atomic import atomic_dir, atomic_write_json
from nlpforge.engines.bundle import read_bundle
from nlpforge.errors import StageError
from nlpforge.export import registry_mlflow as ml
from nlpforge.runs import hash_path, now

REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)@(?P<tag>[A-Za-z0-9._-]+)$")
VERSION = re.compile(r"^v(\d+)$")
STAGES = ("staging", "production", "archived")


Root = Path | str | None  # a registry folder, or mlflow:[TRACKING_URI]; None: $NLPFORGE_REGISTRY or ./registry


def registry_root(root: Root = None) -> Path:
    return Path(root) if root else Path(os.environ.get("NLPFORGE_REGISTRY", "registry"))


def _ml(root: Root) -> str | None:
    """The MLflow spec when ``root`` (or $NLPFORGE_REGISTRY) names one, else None (a folder)."""
    if not ml.is_mlflow(root):
        return None
    return str(root) if root is not None else os.environ["NLPFORGE_REGISTRY"]


def versions(name: str, root: Root = None) -> list[str]:
    if (spec := _ml(root)) is not None:
        return ml.versions(name, spec)
    folder = registry_root(root) / name
    found = [p.name for p in folder.iterdir() if p.is_dir() and VERSION.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda v: int(v[1:]))


def stages(name: str, root: Root = None) -> dict[str, str]:
    if (spec := _ml(root)) is not None:
        return ml.stages(name, spec)
    path = registry_root(root) / name / "stages.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StageError(f"{path}: not valid JSON ({exc}); it maps stages to versions, e.g. {{\"production\": \"v2\"}}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise StageError(f"{path}: expected an object of stage -> version, e.g. {{\"production\": \"v2\"}}")
    return data


def resolve(ref: str, root: Root = None) -> Path:
    """``NAME@STAGE`` / ``NAME@VERSION`` / ``NAME@latest`` -> bundle folder; a path passes through."""
    m = REF.match(ref)
    if m is None or Path(ref).exists():
        return Path(ref)
    name, tag = m["name"], m["tag"]
    if (spec := _ml(root)) is not None:
        return ml.local_copy(name, ml.version_of(name, tag, spec))
    reg = registry_root(root)
    have = versions(name, root)
    if not have:
        raise StageError(f"{ref}: no model {name!r} in the registry {reg} (register one with `nlpforge models register BUNDLE --name {name}`)")
    if tag == "latest":
        version = have[-1]
    elif VERSION.match(tag):
        version = tag
    else:
        st = stages(name, root)
        if tag not in st:
            raise StageError(f"{ref}: no version of {name} is in stage {tag!r}; stages set: {st or 'none'} (`nlpforge models promote {name}@vN --stage {tag}`)")
        version = st[tag]
    path = reg / name / version
    if not path.is_dir():
        raise StageError(f"{ref}: {name} has no version {version}; versions: {have}")
    return path


def register(bundle: Path, name: str | None = None, root: Root = None, lineage: dict[str, Any] | None = None) -> tuple[str, str]:
    """Check a bundle in full and copy it in as the next version (never overwriting one); returns
    (name, version). ``lineage`` (where the version came from: parent version, run, feedback) is
    kept in its ``registry.json``."""
    if not BundleMeta.path_in(bundle).is_file():
        raise StageError(f"{bundle}: not an nlpforge bundle (no {BundleMeta.FILE}); export one with `nlpforge export RECIPE`")
    meta = read_bundle(bundle).meta
    name = name or meta.name or bundle.name
    if not REF.match(f"{name}@x"):
        raise StageError(f"--name {name!r}: use letters, digits, '.', '_' or '-'")
    if (spec := _ml(root)) is not None:
        return name, ml.register(bundle, name, hash_path(bundle), meta.model_dump(mode="json"), lineage, spec)
    have = versions(name, root)
    version = f"v{int(have[-1][1:]) + 1 if have else 1}"
    target = registry_root(root) / name / version
    with atomic_dir(target) as tmp:
        shutil.copytree(bundle, tmp, dirs_exist_ok=True)
        atomic_write_json(tmp / "registry.json", {"name": name, "version": version, "registered": now(), "source": str(bundle.resolve()),
                                                  "sha256": hash_path(bundle), **({"lineage": lineage} if lineage else {})})
    for p in target.rglob("*"):  # immutable: read-only files
        if p.is_file():
            p.chmod(0o444)
    return name, version


def version_with(name: str, sha256: str, root: Root = None) -> str | None:
    """The version registered from a bundle with this content hash, if any (registering the same
    candidate twice would make two versions of one model)."""
    if (spec := _ml(root)) is not None:
        return ml.version_with(name, sha256, spec)
    for v in versions(name, root):
        path = registry_root(root) / name / v / "registry.json"
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("sha256") == sha256:
                return v
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
    return None


def promote(ref: str, stage: str, root: Root = None) -> dict[str, str]:
    m = REF.match(ref)
    if m is None or not VERSION.match(m["tag"]):
        raise StageError(f"{ref}: promote takes NAME@VERSION (e.g. support-bot@v3)")
    if stage not in STAGES:
        raise StageError(f"--stage {stage}: valid stages are {', '.join(STAGES)}")
    if (spec := _ml(root)) is not None:
        return ml.promote(m["name"], m["tag"], stage, spec)
    resolve(ref, root)  # the version must exist
    st = stages(m["name"], root)
    st[stage] = m["tag"]
    atomic_write_json(registry_root(root) / m["name"] / "stages.json", st)
    return st


def describe(name: str, root: Root = None) -> list[dict[str, Any]]:
    """One row per version; a version whose files are broken gets ``error`` instead of failing the listing."""
    if (spec := _ml(root)) is not None:
        return ml.describe(name, spec)
    try:
        st = stages(name, root)
    except StageError as exc:
        st = {}
        stage_error: str | None = str(exc)
    else:
        stage_error = None
    rows = []
    for v in versions(name, root):
        folder = registry_root(root) / name / v
        row: dict[str, Any] = {"name": name, "version": v, "stages": [s for s, ver in st.items() if ver == v], "registered": None, "task": None,
                               "base_model": None, "eval": {}, "path": str(folder), "error": stage_error}
        try:
            meta = BundleMeta.read(folder)
            row.update(task=meta.task, base_model=meta.base_model, eval=meta.eval)
            reg = json.loads((folder / "registry.json").read_text(encoding="utf-8")) if (folder / "registry.json").is_file() else {}
            row["registered"] = reg.get("registered") if isinstance(reg, dict) else None
        except (ArtifactError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def names(root: Root = None) -> list[str]:
    if (spec := _ml(root)) is not None:
        return ml.names(spec)
    reg = registry_root(root)
    return sorted(p.name for p in reg.iterdir() if p.is_dir() and versions(p.name, root)) if reg.is_dir() else []
