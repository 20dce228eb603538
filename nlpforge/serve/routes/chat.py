"""``POST /v1/chat/completions``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from nlpforge.engines.base import GenOut, Sampling
from nlpforge.evals.drift import last_user_text
from nlpforge.serve import protocol as P
from nlpforge.serve.middleware import OpenAIRoute
from nlpforge.serve.routes import json_response, responses, server
from nlpforge.serve.state import Server
from nlpforge.serve.streaming import SSEResponse, sse, streamed

router = APIRouter(route_class=OpenAIRoute)


@router.post("/v1/chat/completions", response_model=None, responses=responses(P.ChatCompletion))
async def chat(req: P.ChatCompletionRequest, srv: Annotated[Server, Depends(server)]) -> Any:
    adapter = srv.adapter_for(req.model)
    srv.need_task("chat", "/v1/chat/completions")
    messages = req.message_dicts()
    prompt = srv.render(messages)
    params = srv.sampling(req, len(prompt))
    rid = P.new_id("chatcmpl")
    model = req.model or srv.info.name
    srv.log_prompt(rid, json.dumps(messages))
    srv.monitor.prompted(model, [last_user_text(messages)])
    if req.stream:
        srv.acquire(req.n)
        return SSEResponse(_stream(srv, req, model, prompt, params, rid, adapter, messages), lambda: srv.release(req.n))
    fp = srv.fingerprint  # read in the step that picks the engine: the version that answers
    with srv.admitted(req.n):
        out = await srv.run(prompt, params, rid, adapter)
    k = params.logprobs or 0
    choices = [P.ChatChoice(index=c.index, message=P.AssistantMessage(content=c.text), finish_reason=c.finish_reason, logprobs=srv.chat_logprobs(c.logprobs, k))
               for c in out.choices]
    return json_response(P.ChatCompletion(id=rid, model=model, system_fingerprint=fp, choices=choices, usage=_answered(srv, req, rid, model, messages, fp, prompt, out)))


def _answered(srv: Server, req: P.ChatCompletionRequest, rid: str, model: str, messages: list[dict], fp: str | None, prompt: list[int], out: GenOut) -> P.Usage:
    """Store the finished answer for feedback, hand a grounded one to the monitor; its usage."""
    texts = [c.text for c in out.choices]
    if srv.feedback:
        srv.feedback.remember(rid, model, messages, texts, fp, req.grounding())
    if (context := req.grounding()) is not None:
        srv.monitor.grounded(model, context, texts)
    n = sum(len(c.token_ids) for c in out.choices)
    return P.Usage(prompt_tokens=len(prompt), completion_tokens=n, total_tokens=len(prompt) + n)


def _stream(srv: Server, req: P.ChatCompletionRequest, model: str, prompt: list[int], params: Sampling, rid: str, adapter: str | None,
            messages: list[dict]) -> AsyncIterator[str]:
    k = params.logprobs or 0
    fp = srv.fingerprint
    started = [False] * params.n
    finished = [False] * params.n
    sent_text = [0] * params.n
    sent_lp = [0] * params.n
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def on_delta(out: GenOut) -> list[str]:
        events = []
        for c in out.choices:
            i = c.index
            if not started[i]:
                started[i] = True
                events.append(sse(P.ChatCompletionChunk(id=rid, model=model, system_fingerprint=fp, choices=[P.ChatChunkChoice(index=i, delta=P.DeltaMessage(role="assistant", content=""))])))
            text = c.text[sent_text[i]:]
            new_lp = c.logprobs[sent_lp[i]:] if c.logprobs is not None else None
            finish = None if finished[i] else c.finish_reason
            finished[i] = finished[i] or finish is not None
            if text or finish or new_lp:
                sent_text[i] = len(c.text)
                sent_lp[i] += len(new_lp or [])
                events.append(sse(P.ChatCompletionChunk(id=rid, model=model, system_fingerprint=fp, choices=[P.ChatChunkChoice(
                    index=i, delta=P.DeltaMessage(content=text), finish_reason=finish, logprobs=srv.chat_logprobs(new_lp, k) if new_lp else None)])))
        if out.finished:
            usage = _answered(srv, req, rid, model, messages, fp, prompt, out)
            if include_usage:
                events.append(sse(P.ChatCompletionChunk(id=rid, model=model, system_fingerprint=fp, choices=[], usage=usage)))
        return events

    return streamed(srv, prompt, params, rid, adapter, on_delta)
