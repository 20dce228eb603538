"""``POST /v1/completions`` (echo with prompt log-probs: what lm-evaluation-harness scores with)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from nlpforge.engines.base import GenOut, Sampling, TokenLogprob
from nlpforge.serve import protocol as P
from nlpforge.serve.middleware import OpenAIRoute
from nlpforge.serve.routes import json_response, responses, server
from nlpforge.serve.state import Server
from nlpforge.serve.streaming import SSEResponse, sse, streamed

router = APIRouter(route_class=OpenAIRoute)


@router.post("/v1/completions", response_model=None, responses=responses(P.Completion))
async def completions(req: P.CompletionRequest, srv: Annotated[Server, Depends(server)]) -> Any:
    adapter = srv.adapter_for(req.model)
    srv.need_task("chat", "/v1/completions")
    prompts = srv.prompts(req)
    plist = [srv.sampling(req, len(p)) for p in prompts]
    rid = P.new_id("cmpl")
    model = req.model or srv.info.name
    for p in prompts:
        srv.log_prompt(rid, srv.tok.decode(p))
    if req.stream:
        srv.acquire(req.n)
        return SSEResponse(_stream(srv, model, prompts[0], plist[0], rid, adapter), lambda: srv.release(req.n))
    fp = srv.fingerprint  # read in the step that picks the engine: the version that answers
    with srv.admitted(len(prompts) * req.n):
        outs = await asyncio.gather(*(srv.run(p, pp, f"{rid}-{i}", adapter) for i, (p, pp) in enumerate(zip(prompts, plist))))
    choices = []
    for i, (p, out) in enumerate(zip(prompts, outs)):
        for c in out.choices:
            text, token_lps = c.text, list(c.logprobs or [])
            gen_ids = c.token_ids
            if req.max_tokens == 0:
                text, token_lps, gen_ids = "", [], []
            legacy = None
            if req.echo:
                text = srv.tok.decode(p) + text
                if req.logprobs is not None:
                    prompt_lps: list[TokenLogprob | None] = list(out.prompt_logprobs or [None] * len(p))
                    legacy = srv.legacy_logprobs(p + gen_ids, prompt_lps + token_lps)  # type: ignore[operator]
            elif req.logprobs is not None:
                legacy = srv.legacy_logprobs(c.token_ids, token_lps)  # type: ignore[arg-type]
            choices.append(P.CompletionChoice(index=i * req.n + c.index, text=text, finish_reason=c.finish_reason, logprobs=legacy))
    n_prompt = sum(len(p) for p in prompts)
    n_out = sum(len(c.token_ids) for o in outs for c in o.choices)
    return json_response(P.Completion(id=rid, model=model, system_fingerprint=fp, choices=choices, usage=P.Usage(prompt_tokens=n_prompt, completion_tokens=n_out, total_tokens=n_prompt + n_out)))


def _stream(srv: Server, model: str, prompt: list[int], params: Sampling, rid: str, adapter: str | None) -> AsyncIterator[str]:
    finished = [False] * params.n
    sent = [0] * params.n
    fp = srv.fingerprint

    def on_delta(out: GenOut) -> list[str]:
        events = []
        for c in out.choices:
            text = c.text[sent[c.index]:]
            finish = None if finished[c.index] else c.finish_reason
            finished[c.index] = finished[c.index] or finish is not None
            if text or finish:
                sent[c.index] = len(c.text)
                events.append(sse(P.Completion(id=rid, model=model, system_fingerprint=fp, choices=[P.CompletionChoice(index=c.index, text=text, finish_reason=finish)])))
        return events

    return streamed(srv, prompt, params, rid, adapter, on_delta)
