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


def support_sample(folder: Path, n: int) -> Path:
    """The first ``n`` lines of the shipped support corpus (its deliberately broken lines
    included) as ``folder/raw.jsonl``: the raw input of a small recipe."""
    lines = (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[:n]
    out = folder / "raw.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


def nlpforge(*args: str, cwd: Path = ROOT, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "nlpforge", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})}
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


def make_chat_bundle(model: Path, out: Path, name: str = "tiny-chat", max_new_tokens: int = 24) -> Path:
    """A chat bundle in the export layout from the untuned tiny model, without a training run:
    stop ids (end of turn + eos), greedy default, ``nlpforge.json`` with the serve flags."""
    import json
    import shutil

    shutil.copytree(model, out, dirs_exist_ok=True)
    gen = json.loads((out / "generation_config.json").read_text())
    eot = 3  # <|im_end|> in build_tiny_model's tokenizer
    gen.update({"eos_token_id": [eot, gen["eos_token_id"]], "max_new_tokens": max_new_tokens, "do_sample": False, "temperature": 0.0})
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    meta = {
        "name": name, "task": "chat", "dtype": "float32", "stop_token_ids": gen["eos_token_id"], "max_model_len": 512,
        "serve": {"engine": "vllm", "vllm_args": ["--served-model-name", name, "--max-model-len", "512", "--dtype", "float32", "--generation-config", "auto"]},
    }
    (out / "nlpforge.json").write_text(json.dumps(meta, indent=2))
    return out


@pytest.fixture(scope="session")
def chat_bundle(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny model as a chat bundle (cheap: no fine-tuning run)."""
    return make_chat_bundle(tiny_model, tmp_path_factory.mktemp("models") / "tiny-chat")
