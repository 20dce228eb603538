"""nlpforge's OpenAI-compatible server: the FastAPI app, its routes (``routes/``) over one of the
shared async engines, the operations middleware, and the error handlers. HTTP only: every
piece of inference is in ``nlpforge.engines``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nlpforge import __version__
from nlpforge.console import log
from nlpforge.engines.base import AsyncEngine
from nlpforge.engines.bundle import BundleInfo
from nlpforge.serve.middleware import Guard, error_response
from nlpforge.serve.protocol import APIError
from nlpforge.serve.routes import chat, classify, completions, misc
from nlpforge.serve.state import Server, ServerConfig, validation_message
from nlpforge.serve.watch import Watch, watch_registry


def create_app(info: BundleInfo, engine: AsyncEngine, cfg: ServerConfig | None = None, watch: Watch | None = None,
               load: Callable[[BundleInfo], AsyncEngine] | None = None) -> Guard:
    """The app over ``engine``; with ``watch`` (and ``load``, which builds an engine for a bundle)
    it follows a registry stage and swaps new versions in (``serve.watch``)."""
    cfg = cfg or ServerConfig()
    srv = Server(info, engine, cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        log(f"nlpforge serve: {srv.fingerprint or info.name} ({info.task}) on the {engine.kind} engine, ready")
        watcher = asyncio.get_running_loop().create_task(watch_registry(srv, watch, load)) if watch and load else None
        yield
        srv.draining = True  # uvicorn has stopped accepting and waited for open requests
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, *srv.draining_engines, return_exceptions=True)
        await srv.engine.shutdown()
        srv.monitor.close()
        if srv.feedback:
            srv.feedback.close()

    app = FastAPI(title="nlpforge", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible API over an nlpforge bundle: chat, completions, classification, feedback.")
    app.state.server = srv
    for module in (misc, chat, completions, classify):
        app.include_router(module.router)

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        msg, param = validation_message(exc.errors())
        return error_response(APIError(400, msg, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(APIError(exc.status_code, str(exc.detail), "invalid_request_error" if exc.status_code < 500 else "server_error"))

    return Guard(app, cfg.api_keys, cfg.max_body_bytes, srv.metrics)
