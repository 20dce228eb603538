"""The OpenAI wire shapes nlpforge's server speaks, as pydantic models (they also make the
OpenAPI schema that schemathesis and clients read), and OpenAI-shaped errors.

Requests accept unknown fields (clients send vendor extras such as ``user``); responses
follow the OpenAI / vLLM field names so the official ``openai`` client and
lm-evaluation-harness read them unchanged.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nlpforge.data.chat import text_content


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors --------------------------------------------------------------------------------


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


# --- requests ------------------------------------------------------------------------------


class ContentPart(Loose):
    type: str
    text: str | None = None


class ChatMessage(Loose):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _join_text_parts(cls, v: str | list[ContentPart] | None) -> str | None:
        """Content parts (what newer clients send) become one string, as batch files read them."""
        return v if v is None else text_content(v if isinstance(v, str) else [p.model_dump() for p in v])


class JsonSchemaSpec(Loose):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Loose):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaSpec | None = None


class StreamOptions(Loose):
    include_usage: bool = False


class SamplingFields(Loose):
    """Fields shared by chat and completion requests (the engine's sampling params)."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = Field(False, description="vLLM extra: keep generating past the stop tokens (benchmarks)")
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0, le=2, description="vLLM extra: >1 discourages tokens of the prompt and the output")
    logit_bias: dict[str, float] | None = Field(None, description="token id -> bias in [-100, 100], added to the logits")


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(16, ge=0)


class ClassifyRequest(Loose):
    model: str | None = None
    input: str | list[str]
    threshold: float | None = Field(None, ge=0, le=1, description="nlpforge extra: override the bundle's decision threshold")


class TokenizeRequest(Loose):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_generation_prompt: bool = True
    add_special_tokens: bool = True


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="the `id` of the chat completion the feedback is about")
    rating: Literal["up", "down"] | None = None
    preferred: str | None = Field(None, description="the answer the user wanted instead")
    choice: int = Field(0, ge=0)
    comment: str | None = None


# --- responses -----------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


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


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class LegacyLogprobs(BaseModel):
    """The completions API's logprobs, which lm-evaluation-harness reads for echoed prompts."""

    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    logprobs: LegacyLogprobs | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "nlpforge"
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ClassifyItem(BaseModel):
    index: int
    label: str | list[str] | None = Field(description="argmax label; with multi-label or a threshold, the labels at or above it")
    probs: list[float]
    num_classes: int
    labels: list[str] = Field(description="nlpforge extra: the label of each entry of probs")
    threshold: float | None = Field(None, description="nlpforge extra: the decision threshold applied, if any")


class ClassifyResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[ClassifyItem]
    usage: Usage


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int


class FeedbackResponse(BaseModel):
    id: str
    stored: bool = True
