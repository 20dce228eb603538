"""``POST /v1/completions``: request and response shapes (echo with prompt log-probs is what
lm-evaluation-harness's ``local-completions`` scores with)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from nlpforge.engines.base import MAX_LOGPROBS, Sampling
from nlpforge.serve.protocol.common import LegacyLogprobs, Response, SamplingFields, Usage

TokenIds = Annotated[list[int], Field(min_length=1)]


class CompletionRequest(SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1)] | TokenIds | Annotated[list[TokenIds], Field(min_length=1)]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    max_tokens: int | None = Field(16, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> CompletionRequest:
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens=0 is only useful with echo=true")
        if self.stream and (self.echo or self.prompt_count() > 1):
            raise ValueError("streaming takes one prompt without echo")
        return self

    def prompt_count(self) -> int:
        p = self.prompt
        return 1 if isinstance(p, str) or (p and isinstance(p[0], int)) else len(p)

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens if self.max_tokens != 0 else 1  # max_tokens 0 + echo: score the prompt only

    def to_sampling(self, defaults: Sampling, max_tokens: int) -> Sampling:
        prompt_lp = self.logprobs if self.echo and self.logprobs is not None else None
        return self.sampling(defaults, max_tokens, logprobs=self.logprobs, prompt_logprobs=prompt_lp)


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: LegacyLogprobs | None = None


class Completion(Response):
    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]
    usage: Usage | None = None
