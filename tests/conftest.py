"""Session fixtures: the tiny base model (built once, by the real builder script) and one
real quickstart run through the CLI, shared by the end-to-end and serving tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

# no model hub here; keep every cache inside the test session
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.mktemp("cache")
    for var in ("VLLM_CACHE_ROOT", "XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR"):
        os.environ[var] = str(cache / var.lower())
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import build_tiny_model

    return build_tiny_model.build(tmp_path_factory.mktemp("models") / "tiny", steps=200, log=False)


def nlpforge(*args: str, cwd: Path = ROOT, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "nlpforge", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"}
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"nlpforge {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def quickstart_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped quickstart recipe, end to end, on the session's tiny model."""
    run_dir = tmp_path_factory.mktemp("runs") / "quickstart-chat"
    nlpforge("run", "recipes/quickstart-chat.yaml", "--quiet", "--run-dir", str(run_dir), "--set", f"model.path={tiny_model}")
    return run_dir


@pytest.fixture(scope="session")
def classifier_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MiniLM sequence-classification bundle (seeded, untrained head) in the bundle contract."""
    import build_classifier_bundle

    return build_classifier_bundle.build(tmp_path_factory.mktemp("models") / "classifier")
