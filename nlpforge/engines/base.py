"""The engine interface shared by eval, batch scoring and serving, and what every engine uses
the same way: sampling parameters, outputs, and the post-processing of scores. Keeping these
here (not in each engine) is what makes the HF and vLLM engines answer alike."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from nlpforge.engines.bundle import BundleInfo

# vLLM's bounds: a temperature below this is greedy; seeds are 64-bit signed (torch.Generator)
SAMPLING_EPS = 1e-5
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
MAX_LOGPROBS = 20


class Sampling(BaseModel):
    """One request's sampling parameters, with the OpenAI/vLLM names. Every front end (HTTP
    routes, batch files, ``nlpforge score``, eval) builds one of these and both engines read it.

    ``temperature`` below 1e-5 is greedy (as in vLLM). ``seed`` makes sampled output
    repeatable within one engine; only greedy output is expected to agree across engines.
    The ranges are what both engines compute safely in float32: a value outside them is the
    caller's error (a 400 at the HTTP edge), never a NaN inside a batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(128, ge=1, le=2**31 - 1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] = ()
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    n: int = Field(1, ge=1, le=64)
    # vLLM's order and meaning: logit_bias, then the repetition penalty over prompt and output
    # tokens (>1 discourages), then frequency and presence penalties over output tokens only
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    repetition_penalty: float = Field(1.0, ge=0.01, le=2.0)
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias in [-100, 100]); OpenAI sends {"id": bias}
    # what only some front ends ask for
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)  # top-k per generated token (0: only the chosen one); None: off
    prompt_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)  # the same for the prompt tokens (echo)
    ignore_eos: bool = False  # as vLLM: keep generating past every stop token of the bundle
    json_schema: str | None = None  # structured output (vllm engine): a JSON schema, serialised so the params stay hashable
    json_object: bool = False

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, v: Any) -> Any:
        if v is None:
            return ()
        stops = (v,) if isinstance(v, str) else tuple(v)
        if any(not isinstance(s, str) or not s for s in stops):
            raise ValueError("stop strings must be non-empty strings")
        return stops

    @field_validator("json_schema", mode="before")
    @classmethod
    def _schema_text(cls, v: Any) -> Any:
        return json.dumps(v, sort_keys=True) if isinstance(v, dict) else v

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
                if isinstance(b, bool) or not isinstance(b, int | float) or not -100 <= b <= 100:
                    raise ValueError(f"logit_bias[{k}] = {b!r}: a bias is a number in [-100, 100]")
                pairs.append((int(k), float(b)))
            return tuple(sorted(pairs))
        return v

    @property
    def greedy(self) -> bool:
        return self.temperature < SAMPLING_EPS

    @property
    def penalized(self) -> bool:
        """Whether anything changes the logits before sampling (the engines skip that work otherwise)."""
        return bool(self.presence_penalty or self.frequency_penalty or self.repetition_penalty != 1.0 or self.logit_bias)

    def check_vocab(self, vocab_size: int) -> None:
        """A ``logit_bias`` token id the model does not have is the caller's error (ValueError)."""
        bad = [t for t, _ in self.logit_bias if t >= vocab_size]
        if bad:
            raise ValueError(f"logit_bias token id {bad[0]} is out of range: the vocabulary has ids 0..{vocab_size - 1}")


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: list[tuple[int, float]]  # the chosen token first, then the k most likely


@dataclass
class Completion:
    """One choice. ``token_ids`` are the generated ids, a final stop token included (as vLLM
    counts them); ``text`` never holds the stop token or stop string."""

    text: str
    token_ids: list[int]
    finish_reason: str | None  # stop | length | abort | error; None while generating
    prompt_tokens: int = 0
    index: int = 0
    logprobs: list[TokenLogprob] | None = None  # when Sampling.logprobs is set: one per token id
    entropies: list[float] | None = None  # hf engine, with logprobs: entropy (nats) of each step's next-token distribution
    error: str | None = None  # why this choice failed (finish_reason "error"); the batch's other rows are unaffected


@dataclass
class GenOut:
    """A cumulative snapshot of one request's choices (the async engines stream these)."""

    choices: list[Completion]
    prompt_len: int
    prompt_logprobs: list[TokenLogprob | None] | None = None
    finished: bool = False


@dataclass
class Perplexity:
    """Per-row score: mean NLL (nats/token) over every token after the first, and exp of it."""

    nll: float
    tokens: int
    perplexity: float = field(init=False)

    def __post_init__(self) -> None:
        self.perplexity = math.exp(min(self.nll, 50.0))


class EngineRequestError(ValueError):
    """A request the engine refused because of its own parameters (the HTTP layer answers 400)."""


class Engine(Protocol):
    """The offline engines (``HFEngine``, ``VLLMEngine``, which subclass it for the methods
    implemented here, the same for both): eval and batch scoring call these."""

    info: BundleInfo
    tok: Any
    max_length: int | None
    progress: bool

    @property
    def task(self) -> str:
        return self.info.task

    def text_ids(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    def scoring_ids(self, texts: list[str]) -> list[list[int]]:
        """Ids scored for perplexity: the tokenizer's default encoding, cut to the context length."""
        limit = self.max_length or 10**9
        return [self.text_ids(t)[:limit] for t in texts]

    def chat(self, conversations: list[list[dict]], max_new_tokens: int) -> list[Completion]:
        """Greedy continuation of each conversation's generation prompt."""
        return [c[0] for c in self.chat_generate(conversations, Sampling(max_tokens=max_new_tokens))]

    def generate(self, prompts: list[str], params: Sampling) -> list[list[Completion]]:
        """``params.n`` completions of each prompt text (tokenized as the tokenizer does by default)."""
        ...

    def chat_generate(self, conversations: list[list[dict]], params: Sampling) -> list[list[Completion]]:
        """``params.n`` assistant replies to each conversation, rendered by nlpforge.data.chat."""
        ...

    def nll(self, rows: list[dict]) -> tuple[float, int]:
        """Summed negative log-likelihood over the tokens whose label is not -100, and their count."""
        ...

    def perplexity(self, texts: list[str]) -> list[Perplexity]: ...

    def classify(self, texts: list[str]) -> list[list[float]]:
        """Class probabilities per text, index = class id (softmax, or sigmoid when multi-label)."""
        ...

    def _need_classifier(self) -> None:
        if self.task != "classification":
            raise ValueError("classify needs a classification bundle (nlpforge.json task: classification)")

    def close(self) -> None: ...


class AsyncEngine(Protocol):
    """The server's engines (``AsyncHFEngine``, ``AsyncVLLMEngine``): the HTTP routes call these."""

    kind: str
    info: BundleInfo
    tok: Any

    async def start(self) -> None: ...

    def generate(self, prompt: list[int], params: Sampling, request_id: str, adapter: str | None = None, stream: bool = False) -> AsyncIterator[GenOut]:
        """Snapshots of the request; closing the iterator aborts it in the engine."""
        ...

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Probabilities per text and the number of tokens read."""
        ...

    def pending(self) -> int:
        """Requests accepted and not finished (queue depth)."""
        ...

    async def shutdown(self) -> None: ...


def classify_ids(tok: Any, texts: list[str], max_length: int | None) -> list[list[int]]:
    """Token ids a classifier scores: the tokenizer's default encoding, cut to the bundle's length."""
    return list(tok(texts, truncation=True, max_length=max_length or 512)["input_ids"])


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
