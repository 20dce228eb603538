"""``POST /v1/chat/completions``: request and response shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from nlpforge.data.chat import text_content
from nlpforge.engines.base import MAX_LOGPROBS, Sampling
from nlpforge.serve.protocol.common import ChoiceLogprobs, Loose, Response, SamplingFields, Usage


class ContentPart(Loose):
    type: str
    text: str | None = None


class ChatMessage(Loose):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, description='"context": this message is grounding the answer is checked against (online factuality)')

    @field_validator("content")
    @classmethod
    def _join_text_parts(cls, v: str | list[ContentPart] | None) -> str | None:
        """Content parts (what newer clients send) become one string, as vLLM joins them."""
        return v if v is None else text_content(v if isinstance(v, str) else [p.model_dump() for p in v])


class JsonSchemaSpec(Loose):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Loose):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and (self.json_schema is None or self.json_schema.schema_ is None):
            raise ValueError("response_format.json_schema.schema is required for type json_schema")
        return self


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    metadata: dict[str, str] | None = Field(None, description='"context": grounding the answer is checked against (online factuality), not shown to the model')

    @model_validator(mode="after")
    def _no_tool_calls(self) -> ChatCompletionRequest:
        if self.tools and self.tool_choice != "none":
            raise ValueError('tool calls are not available (this server does not make tool calls): send no `tools`, or tool_choice "none"')
        return self

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def grounding(self) -> str | None:
        """The text the answer should rest on: ``metadata.context`` and messages named ``context``."""
        parts = [(self.metadata or {}).get("context") or "", *(m.content or "" for m in self.messages if m.name == "context")]
        text = "\n\n".join(p for p in parts if p.strip())
        return text or None

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content or ""} for m in self.messages]

    def to_sampling(self, defaults: Sampling, max_tokens: int) -> Sampling:
        rf = self.response_format
        structured: dict[str, Any] = {}
        if rf is not None and rf.type == "json_schema":
            structured["json_schema"] = rf.json_schema.schema_  # type: ignore[union-attr]
        elif rf is not None and rf.type == "json_object":
            structured["json_object"] = True
        return self.sampling(defaults, max_tokens, logprobs=(self.top_logprobs or 0) if self.logprobs else None, **structured)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(Response):
    object: Literal["chat.completion"] = "chat.completion"
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


class ChatCompletionChunk(Response):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
