"""The HTTP routes, one module per OpenAI route, as thin functions over ``state.Server``."""

from __future__ import annotations

from fastapi import Request

from nlpforge.serve.protocol import ErrorResponse
from nlpforge.serve.state import Server

ERRORS: dict[int | str, dict] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 429)}


def server(request: Request) -> Server:
    """FastAPI dependency: the shared server state."""
    return request.app.state.server
