"""The model registry on MLflow's Model Registry (``--registry mlflow:`` or
``NLPFORGE_REGISTRY=mlflow:[TRACKING_URI]``), for teams that already run an MLflow server.

It keeps the folder registry's meaning, so the two never diverge: a version is an immutable
bundle checked in full before it is registered; ``vN`` is MLflow's version N; a stage
(``staging``, ``production``, ``archived``) is an MLflow alias; lineage (the bundle's sha256,
its task and base model, and what ``nlpforge improve`` records) is kept as version tags.
The bundle is logged as the artifacts of an MLflow run in the ``nlpforge-registry``
experiment. Serving resolves ``NAME@production`` through the alias and downloads that version
once into ``$NLPFORGE_CACHE/mlflow-registry/NAME/vN``, checked against its sha256 tag; the
folder then carries a ``registry.json`` as a folder-registry version does, so a server reports
the version that answered either way.

The folder registry stays the zero-dependency default: one folder, no server, files you can
copy. MLflow is chosen when the team's registry already lives there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from nlpforge.atomic import atomic_dir, atomic_write_json
from nlpforge.errors import StageError
from nlpforge.runs import hash_path

EXPERIMENT = "nlpforge-registry"
PREFIX = "mlflow:"


def is_mlflow(spec: str | Path | None) -> bool:
    spec = os.environ.get("NLPFORGE_REGISTRY") if spec is None else spec
    return isinstance(spec, str) and spec.startswith(PREFIX)


def _client(spec: str | None) -> Any:
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError:
        raise StageError("--registry mlflow: needs MLflow: pip install 'nlpforge[track]'") from None
    spec = spec if spec is not None else os.environ.get("NLPFORGE_REGISTRY", PREFIX)
    uri = spec[len(PREFIX):] or None
    if uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    return MlflowClient()


def _number(version: str) -> str:
    return version[1:] if version.startswith("v") else version


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in str(exc)


def versions(name: str, spec: str | None = None) -> list[str]:
    client = _client(spec)
    found = client.search_model_versions(f"name = '{name}'")
    return [f"v{n}" for n in sorted(int(v.version) for v in found)]


def stages(name: str, spec: str | None = None) -> dict[str, str]:
    client = _client(spec)
    try:
        model = client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - MLflow raises MlflowException for a missing model
        if _missing(exc):
            return {}
        raise
    return {alias: f"v{version}" for alias, version in (model.aliases or {}).items()}


def register(bundle: Path, name: str, sha256: str, meta: dict[str, Any], lineage: dict[str, Any] | None, spec: str | None = None) -> str:
    """Log the bundle as a run's artifacts and make it the next version of ``name``; its ``vN``."""
    import mlflow

    client = _client(spec)
    try:
        client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001
        if not _missing(exc):
            raise
        client.create_registered_model(name, tags={"nlpforge": "bundle"})
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"register {name}") as run:
        mlflow.log_artifacts(str(bundle), artifact_path="bundle")
        source = mlflow.get_artifact_uri("bundle")
    tags = {"sha256": sha256, "nlpforge.task": str(meta.get("task")), "nlpforge.base_model": str(meta.get("base_model")), "nlpforge.source": str(bundle.resolve())}
    if lineage:
        tags["nlpforge.lineage"] = json.dumps(lineage)
    mv = client.create_model_version(name, source, run_id=run.info.run_id, tags=tags)
    return f"v{mv.version}"


def promote(name: str, version: str, stage: str, spec: str | None = None) -> dict[str, str]:
    client = _client(spec)
    client.get_model_version(name, _number(version))  # the version must exist
    client.set_registered_model_alias(name, stage, _number(version))
    return stages(name, spec)


def version_of(name: str, tag: str, spec: str | None = None) -> Any:
    """The MLflow model version ``tag`` (``vN``, ``latest`` or an alias) names."""
    client = _client(spec)
    have = versions(name, spec)
    if not have:
        raise StageError(f"{name}@{tag}: no model {name!r} in the MLflow registry (register one with `nlpforge models register BUNDLE --name {name} --registry mlflow:`)")
    if tag == "latest":
        return client.get_model_version(name, _number(have[-1]))
    if tag.startswith("v") and tag[1:].isdigit():
        if tag not in have:
            raise StageError(f"{name}@{tag}: {name} has no version {tag}; versions: {have}")
        return client.get_model_version(name, _number(tag))
    st = stages(name, spec)
    if tag not in st:
        raise StageError(f"{name}@{tag}: no version of {name} is in stage {tag!r}; stages set: {st or 'none'} (`nlpforge models promote {name}@vN --stage {tag}`)")
    return client.get_model_version_by_alias(name, tag)


def local_copy(name: str, mv: Any) -> Path:
    """The version's bundle on local disk (downloaded once, checked against its sha256 tag)."""
    import mlflow.artifacts

    from nlpforge.models import cache_dir

    out = cache_dir() / "mlflow-registry" / name / f"v{mv.version}"
    if (out / "registry.json").is_file():
        return out
    with atomic_dir(out) as tmp:
        got = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(tmp / "download")))
        for item in got.iterdir():
            shutil.move(str(item), tmp / item.name)
        shutil.rmtree(tmp / "download", ignore_errors=True)
        want = (mv.tags or {}).get("sha256")
        digest = hash_path(tmp)
        if want and digest != want:
            raise StageError(f"{name}@v{mv.version}: the downloaded bundle's sha256 {digest} is not the registered {want}; the artifact store holds other files")
        atomic_write_json(tmp / "registry.json", {"name": name, "version": f"v{mv.version}", "registered": mv.creation_timestamp, "source": mv.source,
                                                  "sha256": digest, "backend": "mlflow"})
    return out


def describe(name: str, spec: str | None = None) -> list[dict[str, Any]]:
    client = _client(spec)
    st = stages(name, spec)
    rows = []
    for mv in sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version)):
        tags = mv.tags or {}
        full = client.get_model_version(name, mv.version)  # search results may omit tags
        tags = full.tags or tags
        rows.append({"name": name, "version": f"v{mv.version}", "stages": [s for s, v in st.items() if v == f"v{mv.version}"],
                     "registered": mv.creation_timestamp, "task": tags.get("nlpforge.task"), "base_model": tags.get("nlpforge.base_model"),
                     "eval": {}, "path": mv.source, "error": None, "lineage": json.loads(tags["nlpforge.lineage"]) if "nlpforge.lineage" in tags else None})
    return rows


def names(spec: str | None = None) -> list[str]:
    return sorted(m.name for m in _client(spec).search_registered_models())


def version_with(name: str, sha256: str, spec: str | None = None) -> str | None:
    client = _client(spec)
    for mv in client.search_model_versions(f"name = '{name}'"):
        if (client.get_model_version(name, mv.version).tags or {}).get("sha256") == sha256:
            return f"v{mv.version}"
    return None
