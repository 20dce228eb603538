"""``/health``, ``/metrics``, ``/v1/models``, ``/tokenize`` and ``/v1/feedback``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nlpforge.serve import protocol as P
from nlpforge.serve.middleware import OpenAIRoute
from nlpforge.serve.routes import ERRORS, server
from nlpforge.serve.state import Server

router = APIRouter(route_class=OpenAIRoute)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def metrics(srv: Annotated[Server, Depends(server)]) -> Response:
    return Response(generate_latest(srv.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/models", response_model=P.ModelList, responses=ERRORS)
async def models(srv: Annotated[Server, Depends(server)]) -> P.ModelList:
    info = srv.info
    cards = [P.ModelCard(id=info.name, root=info.name, max_model_len=info.max_model_len)]
    cards += [P.ModelCard(id=name, root=name, parent=info.name, max_model_len=info.max_model_len) for name in info.adapters]
    return P.ModelList(data=cards)


@router.post("/tokenize", response_model=P.TokenizeResponse, responses=ERRORS)
async def tokenize(req: P.TokenizeRequest, srv: Annotated[Server, Depends(server)]) -> P.TokenizeResponse:
    srv.adapter_for(req.model)
    if req.messages is not None:
        ids = srv.render([{"role": m.role, "content": m.content or ""} for m in req.messages], req.add_generation_prompt)
    elif req.prompt is not None:
        ids = list(srv.tok(req.prompt, add_special_tokens=req.add_special_tokens)["input_ids"])
    else:
        raise P.APIError(400, "give `prompt` or `messages`", param="prompt")
    return P.TokenizeResponse(tokens=ids, count=len(ids), max_model_len=srv.info.max_model_len)


@router.post("/v1/feedback", response_model=P.FeedbackResponse, responses=ERRORS)
async def feedback(req: P.FeedbackRequest, srv: Annotated[Server, Depends(server)]) -> P.FeedbackResponse:
    if srv.feedback is None:
        raise P.APIError(400, "feedback is off on this server; start it with --feedback-dir DIR", code="feedback_disabled")
    revision = srv.feedback.add(req)
    if revision is None:
        raise P.APIError(404, f"no recent chat completion with id {req.id!r} (choice {req.choice}) on this server", param="id", code="not_found")
    if req.rating is not None:
        srv.monitor.rated(srv.feedback.model_of(req.id) or srv.info.name, req.rating)
    return P.FeedbackResponse(id=req.id, revision=revision)
