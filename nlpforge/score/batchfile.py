"""OpenAI batch files, as the OpenAI Batch API and ``vllm run-batch`` read and write them.

Input line: ``{custom_id, method: "POST", url: "/v1/chat/completions" | "/v1/completions", body}``.
Output line: ``{id, custom_id, response: {status_code, request_id, body}, error}``. Each body is
validated by the server's own request models (``nlpforge.serve.protocol``) and mapped to the
engines' ``Sampling`` by them, so a line gets exactly the answer (or the 400) the server would
give. A line that cannot be read at all (bad JSON, no custom_id) gets ``response: null`` and
``error: {code, message}``. Requests are grouped by sampling parameters into engine calls.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nlpforge.data.chat import prompt_ids
from nlpforge.score.tasks import RowError, Task
from nlpforge.serve.protocol import ChatCompletionRequest, CompletionRequest

URLS = ("/v1/chat/completions", "/v1/completions")


class BatchLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1)
    method: Literal["POST"]
    url: Literal["/v1/chat/completions", "/v1/completions"]
    body: dict[str, Any]


def _rid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _explain(exc: ValidationError, prefix: str = "") -> str:
    parts = [f"{'.'.join(str(x) for x in ((prefix,) if prefix else ()) + tuple(e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()]
    return "; ".join(parts) + (f" (valid urls: {', '.join(URLS)})" if any(e["loc"][:1] == ("url",) for e in exc.errors()) else "")


class BatchTask(Task):
    name = "batch"

    def prepare(self, record: dict) -> tuple:
        try:
            line = BatchLine.model_validate(record)
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc)) from None
        chat = line.url == "/v1/chat/completions"
        body: ChatCompletionRequest | CompletionRequest
        try:
            body = (ChatCompletionRequest if chat else CompletionRequest).model_validate(line.body)
            if body.stream:
                raise RowError("invalid_request", "body.stream: stream=true is not available in a batch file")
            if isinstance(body, CompletionRequest) and not isinstance(body.prompt, str):
                raise RowError("invalid_request", "body.prompt: a batch line takes one prompt string")
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc, "body")) from None
        engine = self.engine
        if isinstance(body, ChatCompletionRequest):
            messages: Any = body.message_dicts()
            ids = prompt_ids(engine.tok, messages)
        else:
            messages = body.prompt
            ids = engine.text_ids(messages)
        defaults = engine.info.defaults
        max_tokens = body.requested_max_tokens() or defaults.max_tokens
        limit = engine.max_length
        if limit and len(ids) + max_tokens > limit:
            raise RowError("invalid_request", f"prompt of {len(ids)} tokens + max_tokens {max_tokens} exceeds the model's context of {limit}")
        try:
            params = body.to_sampling(defaults, max_tokens)
            params.check_vocab(len(engine.tok))
        except ValidationError as exc:
            raise RowError("invalid_request", _explain(exc, "body")) from None
        except ValueError as exc:
            raise RowError("invalid_request", f"body.{'logit_bias: ' if 'logit_bias' in str(exc) else ''}{exc}") from None
        return (line.custom_id, chat, messages, params, len(ids))

    def run(self, items: list[tuple], records: list[dict]) -> list[dict]:
        # one engine call per (endpoint, sampling parameters): the engine sorts each by length
        groups: dict[tuple, list[int]] = {}
        for k, (_, chat, _, params, _) in enumerate(items):
            groups.setdefault((chat, params), []).append(k)
        results: list[list] = [[] for _ in items]
        for (chat, params), ks in groups.items():
            inputs = [items[k][2] for k in ks]
            outs = self.engine.chat_generate(inputs, params) if chat else self.engine.generate(inputs, params)
            for k, o in zip(ks, outs):
                results[k] = o
        return [self._response(item, choices) for item, choices in zip(items, results)]

    def _response(self, item: tuple, choices: list) -> dict:
        custom_id, chat, _, _, prompt_tokens = item
        completion_tokens = sum(len(c.token_ids) for c in choices)
        body: dict[str, Any] = {
            "id": _rid("chatcmpl" if chat else "cmpl"),
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.engine.info.name,
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
        if custom_id is None or err.reason not in ("invalid_request", "invalid_messages"):
            return {"id": _rid("batch_req"), "custom_id": custom_id, "response": None, "error": {"code": err.reason, "message": f"{doc.source}: {err.detail}"}}
        body = {"error": {"message": err.detail, "type": "invalid_request_error", "param": None, "code": None}}
        return {"id": _rid("batch_req"), "custom_id": custom_id, "response": {"status_code": 400, "request_id": _rid("req"), "body": body}, "error": None}
