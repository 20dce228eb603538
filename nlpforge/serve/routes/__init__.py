"""The HTTP routes, one module per OpenAI route, as thin functions over ``state.Server``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from nlpforge.serve.protocol import ErrorResponse
from nlpforge.serve.state import Server

ERRORS: dict[int | str, dict] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 429)}


def responses(model: type[BaseModel]) -> dict[int | str, dict]:
    """The OpenAPI description of a route that returns ``model`` (and the OpenAI-shaped errors)."""
    return {200: {"model": model}, **ERRORS}


def json_response(body: BaseModel) -> Response:
    """The response body serialised once: a ``response_model`` would validate the finished model again."""
    return Response(body.model_dump_json(), media_type="application/json")


def server(request: Request) -> Server:
    """FastAPI dependency: the shared server state."""
    return request.app.state.server
