"""Adapter-only bundles for vLLM multi-LoRA: several LoRA adapters beside one base model,
picked per request by its ``model`` field.

Each adapter is checked before it enters a bundle, against what vLLM can serve: LoRA (not
DoRA or other PEFT types), rank within the ``--max-lora-rank`` written into the serve flags,
and no fully-trained modules (``modules_to_save``, ``embed_tokens``/``lm_head``), which vLLM
refuses; such adapters must be merged instead (``export.format: merged``). The adapter must
also load onto the bundle's base weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nlpforge.artifacts import BundleMeta
from nlpforge.engines.vllm import lora_slots
from nlpforge.errors import ContractError

FULL_MODULES = ("embed_tokens", "lm_head", "wte", "word_embeddings", "embed_in", "embed_out")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
LORA_FLAGS = ("--enable-lora", "--max-lora-rank", "--lora-modules", "--max-loras")


def check_adapter(adapter: Path, max_lora_rank: int) -> dict[str, Any]:
    """Refuse (ContractError) an adapter vLLM cannot serve; return its rank and targets."""
    cfg_file = adapter / "adapter_config.json"
    if not cfg_file.is_file() or not (adapter / "adapter_model.safetensors").is_file():
        raise ContractError(f"{adapter}: not a PEFT adapter folder (needs {' and '.join(ADAPTER_FILES)})")
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    where = f"{cfg_file}"
    if cfg.get("peft_type") != "LORA":
        raise ContractError(f"{where}: peft_type {cfg.get('peft_type')!r}; vLLM serves LoRA adapters only (use export.format: merged)")
    if cfg.get("use_dora"):
        raise ContractError(f"{where}: DoRA adapters are not served by vLLM; merge it (export.format: merged)")
    ranks = [int(cfg["r"]), *(int(v) for v in (cfg.get("rank_pattern") or {}).values())]
    if max(ranks) > max_lora_rank:
        raise ContractError(f"{where}: LoRA rank {max(ranks)} exceeds --max-lora-rank {max_lora_rank}; raise export.max_lora_rank (vLLM allows 8..512)")
    if cfg.get("modules_to_save"):
        raise ContractError(f"{where}: modules_to_save={cfg['modules_to_save']} trains whole modules, which vLLM LoRA cannot load; merge it (export.format: merged)")
    targets = cfg.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    full = sorted({m for m in FULL_MODULES for t in [*targets, *keys] if m in t})
    if full:
        raise ContractError(f"{where}: the adapter changes {full}; vLLM refuses adapters on embeddings or the LM head: merge it (export.format: merged)")
    return {"r": max(ranks), "alpha": cfg.get("lora_alpha"), "target_modules": targets}


def lora_args(adapters: dict[str, str], max_lora_rank: int) -> list[str]:
    """vLLM flags; adapter paths stay relative to the bundle (`vllm_serve_command` resolves them)."""
    if not adapters:
        return []
    return ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(lora_slots(len(adapters))),
            "--lora-modules", *[f"{name}={rel}" for name, rel in adapters.items()]]


def strip_lora_args(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if a in LORA_FLAGS:
            skip = a != "--enable-lora"
            continue
        if skip and not a.startswith("--"):
            continue
        skip = False
        out.append(a)
    return out


def add_adapter(bundle: Path, name: str, adapter: Path, max_lora_rank: int | None = None, check_loads: bool = True) -> dict[str, Any]:
    """Check ``adapter`` and add it to ``bundle`` as ``adapters/NAME``; rewrite the serve flags."""
    meta = BundleMeta.read(bundle)
    if meta.task != "chat":
        raise ContractError(f"{bundle}: adapters are served on chat bundles, not {meta.task} bundles")
    if name == meta.name:
        raise ContractError(f"adapter name {name!r} is the base model's served name; pick another")
    rank = max_lora_rank or meta.max_lora_rank or 16
    info = check_adapter(adapter, rank)
    if check_loads:
        _check_loads(bundle, adapter)
    target = bundle / "adapters" / name
    target.mkdir(parents=True, exist_ok=True)
    for f in ADAPTER_FILES:
        shutil.copy2(adapter / f, target / f)
    meta.adapters, meta.max_lora_rank = {**meta.adapters, name: f"adapters/{name}"}, rank
    meta.adapter_info[name] = info
    meta.serve.vllm_args = strip_lora_args(meta.serve.vllm_args) + lora_args(meta.adapters, rank)
    meta.write(bundle)
    return info


def _check_loads(bundle: Path, adapter: Path) -> None:
    """The adapter's shapes must fit the bundle's base weights (else vLLM fails at request time)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(bundle)
    try:
        PeftModel.from_pretrained(base, str(adapter))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ContractError(f"{adapter}: does not fit the base weights in {bundle}: {str(exc)[:300]}") from None
