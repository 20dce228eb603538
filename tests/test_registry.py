"""The local model registry: immutable versions, stages, refs (no model loading: fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nlpforge

from nlpforge.errors import StageError
from nlpforge.export.registry import promote, register, resolve


def fake_bundle(root: Path, name: str, marker: str) -> Path:
    """The files register checks for (metadata, config, tokenizer, weights), with stand-in contents: no model is loaded."""
    root.mkdir(parents=True)
    (root / "nlpforge.json").write_text(json.dumps({"name": name, "task": "chat", "base_model": "tiny"}))
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (root / "tokenizer.json").write_text("{}")
    (root / "model.safetensors").write_text(marker)
    return root


def test_versions_are_immutable_and_stages_resolve(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    b1 = fake_bundle(tmp_path / "b1", "bot", "one")
    assert register(b1, root=reg) == ("bot", "v1")
    (b1 / "model.safetensors").write_text("changed after registering")
    assert register(b1, root=reg) == ("bot", "v2")  # a new version, v1 untouched
    assert (reg / "bot/v1/model.safetensors").read_text() == "one"
    assert (reg / "bot/v1/model.safetensors").stat().st_mode & 0o222 == 0  # files read-only
    assert resolve("bot@v1", reg) == reg / "bot/v1" and resolve("bot@latest", reg) == reg / "bot/v2"
    with pytest.raises(StageError, match="no version of bot is in stage 'production'"):
        resolve("bot@production", reg)
    promote("bot@v1", "production", reg)
    assert resolve("bot@production", reg) == reg / "bot/v1"
    promote("bot@v2", "production", reg)
    assert resolve("bot@production", reg) == reg / "bot/v2"
    assert resolve(str(b1), reg) == b1  # a path passes through
    with pytest.raises(StageError, match="no version v9"):
        resolve("bot@v9", reg)
    with pytest.raises(StageError, match="valid stages"):
        promote("bot@v1", "prod", reg)


def test_models_cli(tmp_path: Path) -> None:
    reg = tmp_path / "registry"
    b = fake_bundle(tmp_path / "b", "helpdesk", "x")
    assert "registered helpdesk@v1" in nlpforge("models", "register", str(b), "--registry", str(reg)).stdout
    nlpforge("models", "promote", "helpdesk@v1", "--stage", "production", "--registry", str(reg))
    listing = nlpforge("models", "list", "--registry", str(reg)).stdout
    assert "helpdesk" in listing and "production" in listing
    shown = json.loads(nlpforge("models", "show", "helpdesk@production", "--registry", str(reg)).stdout)
    assert shown[0]["version"] == "v1" and shown[0]["stages"] == ["production"]
    bad = nlpforge("models", "promote", "helpdesk@v3", "--registry", str(reg), check=False)
    assert bad.returncode == 1 and "no version v3" in bad.stderr


def test_mlflow_model_registry_backend_keeps_the_same_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--registry mlflow:URI` on a real MLflow store: versions, stages as aliases, lineage as tags,
    NAME@STAGE resolved to a local copy checked against the registered sha256."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from nlpforge.engines.bundle import read_bundle
    from nlpforge.export.registry import describe, version_with
    from nlpforge.runs import hash_path
    from nlpforge.serve.state import registry_version

    monkeypatch.chdir(tmp_path)  # MLflow's artifact store defaults to ./mlruns
    monkeypatch.setenv("NLPFORGE_CACHE", str(tmp_path / "cache"))
    spec = f"mlflow:sqlite:///{tmp_path}/mlflow.db"
    b = fake_bundle(tmp_path / "b", "bot", "one")
    assert register(b, root=spec) == ("bot", "v1")
    (b / "model.safetensors").write_text("two")
    assert register(b, root=spec, lineage={"parent": "bot@v1", "improve_run": "runs/x"}) == ("bot", "v2")
    with pytest.raises(StageError, match="no version of bot is in stage 'production'"):
        resolve("bot@production", spec)
    assert promote("bot@v1", "production", spec) == {"production": "v1"}
    first = resolve("bot@production", spec)
    assert (first / "model.safetensors").read_text() == "one" and registry_version(read_bundle(first)) == "bot@v1"
    assert promote("bot@v2", "production", spec) == {"production": "v2"}
    second = resolve("bot@production", spec)
    assert (second / "model.safetensors").read_text() == "two" and registry_version(read_bundle(second)) == "bot@v2"
    assert version_with("bot", hash_path(b), spec) == "v2" and version_with("bot", "0" * 64, spec) is None
    rows = describe("bot", spec)
    assert [(r["version"], r["stages"], r["task"]) for r in rows] == [("v1", [], "chat"), ("v2", ["production"], "chat")]
    assert rows[1]["lineage"] == {"parent": "bot@v1", "improve_run": "runs/x"}
    client = MlflowClient(tracking_uri=spec[len("mlflow:"):])  # what MLflow itself holds
    assert {k: str(v) for k, v in client.get_registered_model("bot").aliases.items()} == {"production": "2"}
    assert client.get_model_version("bot", "1").tags["sha256"] == json.loads((first / "registry.json").read_text())["sha256"]
    listed = nlpforge("models", "list", "--registry", spec, cwd=tmp_path).stdout
    assert "bot" in listed and "production" in listed and "v2" in listed
    shown = json.loads(nlpforge("models", "show", "bot@production", "--registry", spec, cwd=tmp_path).stdout)
    assert [(r["version"], r["stages"]) for r in shown] == [("v2", ["production"])]
    # a version whose stored files changed is refused when it is fetched
    source = Path(client.get_model_version("bot", "1").source.removeprefix("file://"))
    (source / "model.safetensors").chmod(0o644)
    (source / "model.safetensors").write_text("tampered")
    monkeypatch.setenv("NLPFORGE_CACHE", str(tmp_path / "fresh-cache"))
    with pytest.raises(StageError, match="is not the registered"):
        resolve("bot@v1", spec)
