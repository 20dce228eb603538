"""What every route shares: OpenAI-shaped errors, the sampling fields of chat and completion
requests (and their one mapping to the engines' ``Sampling``), usage and log-prob shapes.

Requests accept unknown fields (clients send vendor extras such as ``user``); every number has
the range both engines compute safely, so a bad value is a 400 that names the field, never a
500 or a NaN inside someone else's batch.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from nlpforge.engines.base import SEED_MAX, SEED_MIN, Sampling

MAX_N = 16
Bias = Annotated[float, Field(ge=-100, le=100)]


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class APIError(Exception):
    """Raised anywhere in a route; the app turns it into ``{"error": {...}}`` with ``status``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code, self.headers = status, message, type_, param, code, headers

    def body(self) -> dict[str, Any]:
        return ErrorResponse(error=ErrorBody(message=self.message, type=self.type, param=self.param, code=self.code)).model_dump()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class StreamOptions(Loose):
    include_usage: bool = False


class SamplingFields(Loose):
    """Fields shared by chat and completion requests: the engine's sampling parameters."""

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N)
    stop: str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None = None
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = Field(False, description="vLLM extra: keep generating past the stop tokens (benchmarks)")
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, ge=0.01, le=2, description="vLLM extra: >1 discourages tokens of the prompt and the output")
    logit_bias: dict[str, Bias] | None = Field(None, max_length=300, description="token id -> bias in [-100, 100], added to the logits")

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def sampling(self, defaults: Sampling, max_tokens: int, **extra: Any) -> Sampling:
        """This request as the engines' ``Sampling``: unset fields take the bundle's defaults
        (its ``generation_config.json``). Raises ValueError (pydantic's ValidationError) for
        a combination no engine can run."""
        temperature = defaults.temperature if self.temperature is None else self.temperature
        if self.n > 1 and temperature < 1e-5:
            raise ValueError(f"n={self.n} needs temperature > 0 (greedy decoding gives n identical answers)")
        return Sampling(
            max_tokens=max_tokens, temperature=temperature, top_p=defaults.top_p if self.top_p is None else self.top_p, n=self.n,
            stop=self.stop, seed=self.seed, ignore_eos=self.ignore_eos, presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0, repetition_penalty=self.repetition_penalty or 1.0, logit_bias=self.logit_bias, **extra,
        )


class Response(BaseModel):
    """What every generation response and stream chunk carries."""

    id: str
    object: str
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    system_fingerprint: str | None = None  # NAME@vN: the registry version that answered


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class LegacyLogprobs(BaseModel):
    """The completions API's logprobs, which lm-evaluation-harness reads for echoed prompts."""

    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []
