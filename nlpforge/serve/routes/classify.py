"""``POST /v1/classify`` and ``POST /classify`` (vLLM's and SGLang's shape)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from nlpforge.engines.base import decide
from nlpforge.serve import protocol as P
from nlpforge.serve.middleware import OpenAIRoute
from nlpforge.serve.routes import json_response, responses, server
from nlpforge.serve.state import Server, client_error

router = APIRouter(route_class=OpenAIRoute)


@router.post("/v1/classify", response_model=None, responses=responses(P.ClassifyResponse))
@router.post("/classify", response_model=None, responses=responses(P.ClassifyResponse), include_in_schema=False)
async def classify(req: P.ClassifyRequest, srv: Annotated[Server, Depends(server)]) -> Response:
    srv.adapter_for(req.model)
    srv.need_task("classification", "/v1/classify")
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts or len(texts) > srv.cfg.max_classify_inputs:
        raise P.APIError(400, f"input: give 1 to {srv.cfg.max_classify_inputs} texts, got {len(texts)}", param="input")
    with srv.admitted(1), srv.engine_in_use() as engine:
        try:
            probs, n_tokens = await engine.classify(texts)
        except Exception as exc:
            raise client_error(exc) from exc
    info = srv.info
    labels = info.labels or [str(i) for i in range(len(probs[0]))]
    thr = req.threshold if req.threshold is not None else info.threshold
    data = [P.ClassifyItem(index=i, label=decide(p, labels, info.multi_label, thr), probs=p, num_classes=len(p), labels=labels, threshold=thr)
            for i, p in enumerate(probs)]
    return json_response(P.ClassifyResponse(id=P.new_id("classify"), model=req.model or info.name, data=data, usage=P.Usage(prompt_tokens=n_tokens, total_tokens=n_tokens)))
