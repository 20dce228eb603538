"""The engine interface shared by eval, batch scoring and serving (DESIGN.md, contract 2),
and the pieces every engine uses the same way: the bundle's metadata, its default sampling
parameters, prompt rendering and the post-processing of scores. Keeping these here (not in
each engine) is what makes the HF and vLLM engines give the same answers for the same input."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nlpforge.errors import StageError

BUNDLE_META = "nlpforge.json"


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop": ended on a stop token or string; "length": hit max_new_tokens
    prompt_tokens: int = 0


@dataclass
class Perplexity:
    """Per-row score: mean NLL (nats/token) over every token after the first, and exp of it."""

    nll: float
    tokens: int
    perplexity: float = field(init=False)

    def __post_init__(self) -> None:
        self.perplexity = math.exp(min(self.nll, 50.0))


class Sampling(BaseModel):
    """Sampling parameters with the OpenAI names (server, batch files and `score` take these).

    ``temperature`` 0 means greedy. ``seed`` makes sampled output repeatable within one engine;
    only greedy output is expected to agree across engines.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = Field(1, ge=1, le=64)
    # vLLM's order and meaning: logit_bias, then the repetition penalty over prompt and output
    # tokens (>1 discourages), then frequency and presence penalties over output tokens only
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=2.0)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias in [-100, 100]); OpenAI sends {"id": bias}

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, v: Any) -> Any:
        if v is None:
            return ()
        return (v,) if isinstance(v, str) else tuple(v)

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _bias_pairs(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, dict):
            pairs = []
            for k, b in v.items():
                if not str(k).lstrip("-").isdigit() or int(k) < 0:
                    raise ValueError(f"logit_bias key {k!r} is not a token id (a non-negative integer)")
                if not isinstance(b, int | float) or not -100 <= b <= 100:
                    raise ValueError(f"logit_bias[{k}] = {b!r}: a bias is a number in [-100, 100]")
                pairs.append((int(k), float(b)))
            return tuple(sorted(pairs))
        return v

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalized(self) -> bool:
        """Whether anything changes the logits before sampling (the engines skip that work otherwise)."""
        return bool(self.presence_penalty or self.frequency_penalty or self.repetition_penalty != 1.0 or self.logit_bias)

    def check_vocab(self, vocab_size: int) -> None:
        """A ``logit_bias`` token id the model does not have is the caller's error (ValueError)."""
        bad = [t for t, _ in self.logit_bias if t >= vocab_size]
        if bad:
            raise ValueError(f"logit_bias token id {bad[0]} is out of range: the vocabulary has ids 0..{vocab_size - 1}")


class Engine(Protocol):
    task: str  # "chat" (causal LM) or "classification"

    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        """Greedy continuation of each conversation's generation prompt."""
        ...

    def nll(self, rows: list[dict]) -> tuple[float, int]:
        """Summed negative log-likelihood over the tokens whose label is not -100, and their count."""
        ...

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        """``params.n`` completions of each prompt text (tokenized as the tokenizer does by default)."""
        ...

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        """``params.n`` assistant replies to each conversation, rendered by nlpforge.data.chat."""
        ...

    def perplexity(self, texts: list[str]) -> list[Perplexity]:
        ...

    def classify(self, texts: list[str]) -> list[list[float]]:
        """Class probabilities per text, index = class id (softmax, or sigmoid when multi-label)."""
        ...

    def close(self) -> None:
        ...


@dataclass
class BundleInfo:
    """What an engine (offline or serving) needs to know about a bundle beyond the HF files."""

    path: Path
    meta: dict[str, Any]
    task: str
    stop_ids: list[int]
    defaults: Sampling
    labels: list[str]
    multi_label: bool
    threshold: float | None
    max_length: int | None
    dtype: str
    trust_remote_code: bool = False  # only when the bundle opts in (nlpforge.json)
    adapters: dict[str, Path] = field(default_factory=dict)  # served name -> LoRA folder (adapter bundles)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    @property
    def max_model_len(self) -> int:
        """Context length a server admits (prompt + generated tokens)."""
        return int(self.max_length or 2048)


def read_bundle(path: Path) -> BundleInfo:
    """Read ``nlpforge.json`` and ``generation_config.json``; a plain HF model folder works too
    (task from its config: a ``*ForSequenceClassification`` architecture is a classifier)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise StageError(f"{path}: not a model bundle (no config.json); give an exported bundle folder (runs/<name>/export) or NAME@STAGE")
    meta = json.loads((path / BUNDLE_META).read_text(encoding="utf-8")) if (path / BUNDLE_META).is_file() else {}
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    task = meta.get("task") or ("classification" if any(a.endswith("ForSequenceClassification") for a in archs) else "chat")
    gen = json.loads((path / "generation_config.json").read_text(encoding="utf-8")) if (path / "generation_config.json").is_file() else {}
    eos = gen.get("eos_token_id", config.get("eos_token_id"))
    stop_ids = [int(x) for x in (eos if isinstance(eos, list) else [eos] if eos is not None else [])]
    stop_ids = list(dict.fromkeys(meta.get("stop_token_ids", []) + stop_ids))
    # the bundle's generation_config is the served default (export writes greedy unless asked),
    # read the way `vllm serve --generation-config auto` reads it
    defaults = Sampling(
        max_tokens=gen.get("max_new_tokens") or 128,
        temperature=float(gen.get("temperature", 1.0)) if gen.get("do_sample") else 0.0,
        top_p=float(gen.get("top_p") or 1.0),
    )
    id2label = config.get("id2label") or {}
    labels = meta.get("labels") or [id2label[k] for k in sorted(id2label, key=int)] if task == "classification" else []
    return BundleInfo(
        path=path,
        meta=meta,
        task=task,
        stop_ids=stop_ids,
        defaults=defaults,
        labels=list(labels),
        multi_label=bool(meta.get("multi_label", config.get("problem_type") == "multi_label_classification")),
        threshold=meta.get("threshold"),
        max_length=meta.get("max_length") or meta.get("max_model_len") or config.get("max_position_embeddings"),
        dtype=meta.get("dtype") or "float32",
        trust_remote_code=bool(meta.get("trust_remote_code", False)),
        adapters={name: (path / rel).resolve() for name, rel in meta.get("adapters", {}).items()},
    )


def load_tokenizer(info: BundleInfo) -> Any:
    """The bundle's tokenizer (with its chat template), as every engine loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(info.path, trust_remote_code=info.trust_remote_code)


def classify_ids(tok: Any, texts: list[str], info: BundleInfo) -> list[list[int]]:
    """Token ids a classifier scores: the tokenizer's default encoding, cut to the bundle's length."""
    return list(tok(texts, truncation=True, max_length=info.max_length or 512)["input_ids"])


def probs_from_logits(logits: list[list[float]], multi_label: bool) -> list[list[float]]:
    """Softmax per row, or an independent sigmoid per class for multi-label bundles.
    Both engines hand raw logits here, so their probabilities are computed one way."""
    import torch

    t = torch.tensor(logits, dtype=torch.float64)
    p = torch.sigmoid(t) if multi_label else torch.softmax(t, dim=-1)
    return p.tolist()


def decide(probs: list[float], labels: list[str], multi_label: bool, threshold: float | None) -> str | list[str] | None:
    """The label(s) a caller acts on, the same in eval, batch scoring and the server: multi-label
    takes every label at or above the threshold (0.5 if unset); binary with a threshold
    (fraud-style) takes the positive (second) label only at or above it; otherwise the argmax,
    or None (abstain) when a threshold is set and the argmax is below it."""
    if multi_label:
        cut = 0.5 if threshold is None else threshold
        return [label for label, p in zip(labels, probs) if p >= cut]
    if threshold is not None and len(labels) == 2:
        return labels[1] if probs[1] >= threshold else labels[0]
    best = max(range(len(probs)), key=probs.__getitem__)
    if threshold is not None and probs[best] < threshold:
        return None
    return labels[best]


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string (OpenAI/vLLM semantics: the stop is not returned)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
