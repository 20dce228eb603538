"""What an engine needs to know about a bundle beyond the HF files, read and checked once.

A bundle is an exported folder (``runs/<name>/export``), a registry version, or a plain HF
model folder (its task then comes from the architecture). :func:`read_bundle` refuses a
folder that cannot serve (no or broken ``config.json``, no tokenizer, no weights, a broken
``nlpforge.json``, ``auto_map`` code that is not there) with one message that says what is
missing, before any weights are loaded: the registry checks at ``register`` and the server
at start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlpforge.artifacts import ArtifactError, BundleMeta
from nlpforge.engines.base import Sampling

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class BundleInfo:
    """A bundle's task, stop tokens, served defaults, labels and limits."""

    path: Path | None  # None: a model in memory (eval runs the tuned model before export)
    meta: BundleMeta
    stop_ids: list[int]
    defaults: Sampling
    max_length: int | None
    adapters: dict[str, Path] = field(default_factory=dict)  # served name -> LoRA folder (adapter bundles)

    @property
    def task(self) -> str:
        return self.meta.task

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def multi_label(self) -> bool:
        return self.meta.multi_label

    @property
    def threshold(self) -> float | None:
        return self.meta.threshold

    @property
    def dtype(self) -> str:
        return self.meta.dtype

    @property
    def trust_remote_code(self) -> bool:
        return self.meta.trust_remote_code

    @property
    def name(self) -> str:
        return self.meta.name or (self.path.name if self.path else "model")

    @property
    def max_model_len(self) -> int:
        """Context length a server admits (prompt + generated tokens)."""
        return int(self.max_length or 2048)

    @classmethod
    def for_model(cls, task: str, stop_ids: list[int] | None = None, labels: list[str] | None = None, multi_label: bool = False,
                  threshold: float | None = None, max_length: int | None = None, defaults: Sampling | None = None) -> BundleInfo:
        """The same facts for a model that is not (yet) a bundle: eval's base and tuned models."""
        meta = BundleMeta(task=task, labels=labels or [], multi_label=multi_label, threshold=threshold, stop_token_ids=stop_ids or [])  # type: ignore[arg-type]
        return cls(path=None, meta=meta, stop_ids=list(stop_ids or []), defaults=defaults or Sampling(), max_length=max_length)


def _json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: {what} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: {what} must be a JSON object, got {type(data).__name__}")
    return data


def check_files(path: Path, meta: BundleMeta, config: dict[str, Any]) -> None:
    """The HF files a server loads: a tokenizer, weights, and any remote code ``auto_map`` names."""
    names = {p.name for p in path.iterdir()}
    if not names.intersection(TOKENIZER_FILES):
        raise ArtifactError(f"{path}: no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); export writes them, a copied folder may lack them")
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        raise ArtifactError(f"{path}: no weights (*.safetensors or *.bin)")
    for cls_ref in (config.get("auto_map") or {}).values():
        ref = cls_ref[0] if isinstance(cls_ref, list) else cls_ref
        if not isinstance(ref, str):
            continue
        module = ref.split("--")[-1].rsplit(".", 1)[0]
        if "--" not in ref and not (path / f"{module.replace('.', '/')}.py").is_file():
            raise ArtifactError(f"{path}/config.json: auto_map names {ref!r} but {module}.py is not in the bundle")
    for name, rel in meta.adapters.items():
        folder = path / rel
        if not (folder / "adapter_config.json").is_file():
            raise ArtifactError(f"{path}/nlpforge.json: adapter {name!r} has no adapter_config.json in {folder}")
    if meta.contract is not None and not meta.contract.get("samples_checked"):
        raise ArtifactError(f"{path}/nlpforge.json: the export contract check records no checked sample; re-export the bundle")


def read_bundle(path: Path) -> BundleInfo:
    """Read and check ``nlpforge.json`` (optional: a plain HF folder works), ``config.json`` and
    ``generation_config.json``; the served defaults are read the way ``vllm serve
    --generation-config auto`` reads them."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no such bundle folder; give an exported bundle (runs/<name>/export) or NAME@STAGE")
    if not (path / "config.json").is_file():
        raise ArtifactError(f"{path}: not a model bundle (no config.json); give an exported bundle folder (runs/<name>/export) or NAME@STAGE")
    config = _json(path / "config.json", "config.json")
    if not isinstance(config.get("model_type"), str) and not config.get("architectures"):
        raise ArtifactError(f"{path}/config.json: names no model_type or architectures; it is not a transformers model config")
    if BundleMeta.path_in(path).is_file():
        meta = BundleMeta.read(path)
    else:
        archs = config.get("architectures") or []
        meta = BundleMeta(task="classification" if any(str(a).endswith("ForSequenceClassification") for a in archs) else "chat")
    check_files(path, meta, config)
    gen = _json(path / "generation_config.json", "generation_config.json") if (path / "generation_config.json").is_file() else {}
    eos = gen.get("eos_token_id", config.get("eos_token_id"))
    stop_ids = [int(x) for x in (eos if isinstance(eos, list) else [eos] if eos is not None else []) if isinstance(x, int)]
    stop_ids = list(dict.fromkeys(meta.stop_token_ids + stop_ids))
    try:
        defaults = Sampling(
            max_tokens=gen.get("max_new_tokens") or 128,
            temperature=float(gen.get("temperature", 1.0)) if gen.get("do_sample") else 0.0,
            top_p=float(gen.get("top_p") or 1.0),
        )
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path}/generation_config.json: its sampling defaults are out of range: {exc}") from None
    if meta.task == "classification" and not meta.labels:
        id2label = config.get("id2label") or {}
        meta.labels = [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))] if id2label else []
        meta.multi_label = meta.multi_label or config.get("problem_type") == "multi_label_classification"
    max_length = meta.max_length or meta.max_model_len or config.get("max_position_embeddings")
    return BundleInfo(path=path, meta=meta, stop_ids=stop_ids, defaults=defaults, max_length=max_length,
                      adapters={name: (path / rel).resolve() for name, rel in meta.adapters.items()})


def load_tokenizer(info: BundleInfo) -> Any:
    """The bundle's tokenizer (with its chat template), as every engine loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(info.path, trust_remote_code=info.trust_remote_code)
