"""Server-sent events: the response that aborts its request when the client goes away, and the
loop that turns an engine's cumulative snapshots into OpenAI stream events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from nlpforge.console import log
from nlpforge.engines.base import GenOut, Sampling
from nlpforge.serve.protocol import APIError
from nlpforge.serve.state import Server, client_error

DONE = "data: [DONE]\n\n"


def sse(payload: Any) -> str:
    data = payload.model_dump_json(exclude_none=True) if hasattr(payload, "model_dump_json") else json.dumps(payload)
    return f"data: {data}\n\n"


class SSEResponse(StreamingResponse):
    """Closes its generator however the response ends, so a client that went away mid-stream
    aborts its request in the engine at once (not when the generator is garbage collected),
    and then runs ``on_close`` (releases the request's place in the queue)."""

    def __init__(self, body: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(body, media_type="text/event-stream")
        self.on_close = on_close

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            finally:
                self.on_close()


async def streamed(srv: Server, prompt: list[int], params: Sampling, rid: str, adapter: str | None,
                   on_delta: Callable[[GenOut], list[str]]) -> AsyncIterator[str]:
    """Run one request and yield the events ``on_delta`` makes of each snapshot; errors become an
    ``error`` event (the client raises on it), a disconnect aborts the request."""
    last: GenOut | None = None
    started = time.perf_counter()
    try:
        with srv.engine_in_use() as engine:
            async with contextlib.aclosing(engine.generate(prompt, params, rid, adapter, stream=True)) as gen:
                async for out in gen:
                    last = out
                    for ev in on_delta(out):
                        yield ev
    except APIError as exc:
        yield sse(exc.body())
    except (asyncio.CancelledError, GeneratorExit):
        srv.metrics.aborted.inc()
        raise
    except Exception as exc:  # noqa: BLE001 - the status line is sent; report in-band
        err = client_error(exc)
        if isinstance(err, APIError):
            yield sse(err.body())
        else:
            log(f"[red]stream {rid} failed: {type(exc).__name__}: {exc}[/red]")
            yield sse({"error": {"message": f"internal error: {type(exc).__name__}", "type": "server_error", "param": None, "code": None}})
    else:
        if last is not None:
            srv.finished(last, adapter, started)
    yield DONE
