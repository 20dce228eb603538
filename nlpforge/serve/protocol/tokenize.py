"""``POST /tokenize`` (vLLM's extra route): the ids the server renders, to check the train/serve contract."""

from __future__ import annotations

from pydantic import BaseModel

from nlpforge.serve.protocol.chat import ChatMessage
from nlpforge.serve.protocol.common import Loose


class TokenizeRequest(Loose):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_generation_prompt: bool = True
    add_special_tokens: bool = True


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int
