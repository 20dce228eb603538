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
