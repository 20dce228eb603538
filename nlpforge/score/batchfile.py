"""OpenAI batch files, as the OpenAI Batch API and ``vllm run-batch`` read and write them.

Input line: ``{custom_id, method: "POST", url: "/v1/chat/completions" | "/v1/completions", body}``.
Output line: ``{id, custom_id, response: {status_code, request_id, body}, error}``. A request
that is well formed as a line but invalid as a request gets ``status_code`` 400 and an OpenAI
error body; a line that cannot be read at all (bad JSON, no custom_id) gets ``response: null``
and ``error: {code, message}``. Requests are grouped by sampling parameters into engine calls.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nlpforge.data.chat import prompt_ids
from nlpforge.engines import Sampling
from nlpforge.score.tasks import RowError, Task, parse_messages

URLS = ("/v1/chat/completions", "/v1/completions")


class _Body(BaseModel):
    # OpenAI clients send fields we do not act on (user, metadata, stream_options): ignored
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=64)
    stream: bool = False
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: dict[str, float] | None = None

    @model_validator(mode="after")
    def _no_stream(self) -> _Body:
        if self.stream:
            raise ValueError("stream=true is not available in a batch file")
        return self

    def sampling(self, defaults: Sampling) -> Sampling:
        max_tokens = self.max_completion_tokens or self.max_tokens or defaults.max_tokens
        return Sampling(
            max_tokens=max_tokens,
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            stop=self.stop,
            seed=self.seed,
            n=self.n,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            repetition_penalty=self.repetition_penalty or 1.0,
            logit_bias=self.logit_bias,
        )


class ChatBody(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_tools(self) -> ChatBody:
        if self.tools and self.tool_choice != "none":
            raise ValueError('tool calls are not available: send no `tools`, or tool_choice "none"')
        return self


class CompletionBody(_Body):
    prompt: str = Field(min_length=1)


class BatchLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1)
    method: Literal["POST"]
    url: Literal["/v1/chat/completions", "/v1/completions"]
    body: dict[str, Any]


def _rid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class BatchTask(Task):
    name = "batch"

    def prepare(self, record: dict) -> tuple:
        try:
            line = BatchLine.model_validate(record)
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc)) from None
        chat = line.url == "/v1/chat/completions"
        try:
            body = (ChatBody if chat else CompletionBody).model_validate(line.body)
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc, "body")) from None
        try:
            params = body.sampling(self.engine.info.defaults)  # type: ignore[union-attr]
            params.check_vocab(len(self.engine.tok))  # type: ignore[union-attr]
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc, "body")) from None
        except ValueError as exc:
            raise RowError("invalid_request", f"body.logit_bias: {exc}") from None
        if chat:
            messages = parse_messages(body.messages, "body.messages")
            ids = prompt_ids(self.engine.tok, messages)  # type: ignore[union-attr]
        else:
            ids = self.engine.text_ids(body.prompt)  # type: ignore[union-attr]
        limit = self.engine.max_length  # type: ignore[union-attr]
        if limit and len(ids) + params.max_tokens > limit:
            raise RowError("invalid_request", f"prompt of {len(ids)} tokens + max_tokens {params.max_tokens} exceeds the model's context of {limit}")
        return (line.custom_id, chat, messages if chat else body.prompt, params, len(ids))

    def run(self, items: list[tuple], records: list[dict]) -> list[dict]:
        # one engine call per (endpoint, sampling parameters): the engine sorts each by length
        groups: dict[tuple, list[int]] = {}
        for k, (_, chat, _, params, _) in enumerate(items):
            groups.setdefault((chat, params), []).append(k)
        results: list[list | None] = [None] * len(items)
        for (chat, params), ks in groups.items():
            inputs = [items[k][2] for k in ks]
            outs = self.engine.chat_generate(inputs, params) if chat else self.engine.generate(inputs, params)  # type: ignore[union-attr]
            for k, o in zip(ks, outs):
                results[k] = o
        return [self._response(item, choices) for item, choices in zip(items, results)]  # type: ignore[arg-type]

    def _response(self, item: tuple, choices: list) -> dict:
        custom_id, chat, _, _, prompt_tokens = item
        completion_tokens = sum(len(c.token_ids) for c in choices)
        body: dict[str, Any] = {
            "id": _rid("chatcmpl" if chat else "cmpl"),
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.engine.info.name,  # type: ignore[union-attr]
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason, "logprobs": None}
                if chat else {"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
                for i, c in enumerate(choices)
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }
        return {"id": _rid("batch_req"), "custom_id": custom_id, "response": {"status_code": 200, "request_id": _rid("req"), "body": body}, "error": None}

    def output(self, record: dict, added: dict) -> dict:
        return added

    def error_output(self, doc: Any, err: RowError) -> dict:
        record = doc.record if isinstance(doc.record, dict) else {}
        custom_id = record.get("custom_id") if isinstance(record.get("custom_id"), str) else None
        if custom_id is None or err.reason != "invalid_request" and err.reason != "invalid_messages":
            return {"id": _rid("batch_req"), "custom_id": custom_id, "response": None, "error": {"code": err.reason, "message": f"{doc.source}: {err.detail}"}}
        body = {"error": {"message": err.detail, "type": "invalid_request_error", "param": None, "code": None}}
        return {"id": _rid("batch_req"), "custom_id": custom_id, "response": {"status_code": 400, "request_id": _rid("req"), "body": body}, "error": None}


def _explain(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in ((prefix,) if prefix else ()) + tuple(e["loc"]))
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts) + f" (valid urls: {', '.join(URLS)})" if "url" in str(exc) else "; ".join(parts)
