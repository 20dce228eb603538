"""Operations around every route: Bearer keys, the body-size limit, request metrics (one pure
ASGI middleware, so streamed responses and client disconnects pass straight through), and the
route class that turns an unexpected error into a 500 for that request only, without
dropping the client's keep-alive connection."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from nlpforge.console import log
from nlpforge.serve.protocol import APIError


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


class Metrics:
    """Prometheus metrics in a registry of their own (one per app, so tests can build several)."""

    def __init__(self, depth: Callable[[], float]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("nlpforge_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self.latency = Histogram("nlpforge_request_latency_seconds", "time to the last byte of the response", ["route"], registry=r,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.prompt_tokens = Counter("nlpforge_prompt_tokens", "prompt tokens processed", registry=r)
        self.completion_tokens = Counter("nlpforge_completion_tokens", "tokens generated", registry=r)
        self.aborted = Counter("nlpforge_aborted_requests", "requests aborted because the client went away", registry=r)
        self.rejected = Counter("nlpforge_rejected_requests", "requests refused with 429 (queue full)", registry=r)
        self.queue = Gauge("nlpforge_queue_depth", "sequences accepted and not finished", registry=r)
        self.queue.set_function(depth)
        self.serving = Gauge("nlpforge_model_info", "1 for the bundle being served (version: NAME@vN when it came from the registry)", ["model", "version"], registry=r)
        self.swaps = Counter("nlpforge_model_swaps", "versions swapped in by --watch-registry, and swaps that failed or were refused", ["result"], registry=r)


class OpenAIRoute(APIRoute):
    """Any exception a route does not turn into an ``APIError`` becomes an OpenAI-shaped 500 for
    that request. Starlette's last-resort handler answers 500 too, but then re-raises, and the
    server closes the connection without ``Connection: close``: the client's next request on it
    fails."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (APIError, RequestValidationError, HTTPException):
                raise
            except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are answered
                log(f"[red]internal error on {request.url.path}: {type(exc).__name__}: {exc}[/red]")
                return error_response(APIError(500, f"internal error: {type(exc).__name__}", "server_error"))

        return guarded


class Guard:
    """ASGI middleware: Bearer keys (constant-time, every route but /health), body-size limit
    (400 ``body_too_large``), request count and latency."""

    OPEN = ("/health",)

    def __init__(self, app: Any, api_keys: list[str], max_body_bytes: int, metrics: Metrics):
        self.app, self.max_body, self.metrics = app, max_body_bytes, metrics
        self.keys = [k.encode() for k in api_keys]

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        token = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
        ok = False
        for key in self.keys:  # compare against every key: timing does not reveal which matched
            ok |= hmac.compare_digest(token, key)
        return ok

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, start, status = scope["path"], time.perf_counter(), [500]
        route = path if path.startswith("/v1/") or path in ("/health", "/metrics", "/tokenize") else "other"

        async def send_wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        async def reply(exc: APIError) -> None:
            await error_response(exc)(scope, receive, send_wrapped)

        try:
            headers = dict(scope["headers"])
            if self.keys and path not in self.OPEN and not self._authorized(headers):
                await reply(APIError(401, "invalid or missing API key (send `Authorization: Bearer KEY`)", "invalid_request_error", code="invalid_api_key"))
                return
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await reply(APIError(400, f"request body of {int(length)} bytes exceeds the limit of {self.max_body} bytes", code="body_too_large"))
                return
            if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
                # chunked upload: read it here (bounded) and replay it to the app
                body, more = b"", True
                while more:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    body += msg.get("body", b"")
                    more = msg.get("more_body", False)
                    if len(body) > self.max_body:
                        await reply(APIError(400, f"request body exceeds the limit of {self.max_body} bytes", code="body_too_large"))
                        return
                sent = False

                async def replay() -> dict:
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send_wrapped)
                return
            await self.app(scope, receive, send_wrapped)
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
