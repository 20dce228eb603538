"""Serve what the registry says: a server started on ``NAME@STAGE`` with ``--watch-registry``
polls the stage pointer and swaps a new version in without a restart.

The new version is loaded beside the old one (a drained engine swap: memory for two models for
the length of the load), checked to be the same task with the same tokenizer and chat template
(a request in flight may have been rendered by the old one), then made current in one step;
requests already running finish on the old engine, which is shut down once they have, or after
the drain time. A version that fails to load is logged, counted
(``nlpforge_model_swaps_total{result="failed"}``) and not retried until the stage moves again;
the old version keeps serving. Adapter bundles swap the same way (vLLM's LoRA load/unload would
avoid loading the base twice; not done here). The input-drift reference stays the one the
server started with (the first version's training prompts): an improved version is trained on
feedback, and drift is measured against what the model family was built for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nlpforge.console import log
from nlpforge.engines.base import AsyncEngine
from nlpforge.engines.bundle import BundleInfo, read_bundle
from nlpforge.errors import NlpforgeError
from nlpforge.export import registry
from nlpforge.serve.state import Server


@dataclass(frozen=True)
class Watch:
    ref: str  # NAME@STAGE
    root: registry.Root = None  # the registry folder (default: $NLPFORGE_REGISTRY or ./registry)
    interval_s: float = 10.0
    drain_s: float = 30.0


def swap_problem(srv: Server, info: BundleInfo, engine: AsyncEngine) -> str | None:
    """Why ``info`` cannot replace what ``srv`` serves without a restart, or None."""
    if info.task != srv.info.task:
        return f"it is a {info.task} bundle and this server serves {srv.info.task}"
    if engine.tok.get_vocab() != srv.tok.get_vocab() or engine.tok.chat_template != srv.tok.chat_template:
        return "its tokenizer or chat template differs from the one serving (requests in flight were rendered with it); restart the server to serve it"
    return None


async def watch_registry(srv: Server, watch: Watch, load: Callable[[BundleInfo], AsyncEngine]) -> None:
    """Poll forever (the app's lifespan cancels it); swap on every change of the stage pointer."""
    current = Path(srv.info.path).resolve() if srv.info.path else None
    skipped: Path | None = None  # a version that failed: not retried until the pointer moves
    last_error = ""
    while True:
        await asyncio.sleep(watch.interval_s)
        try:
            path = (await asyncio.to_thread(registry.resolve, watch.ref, watch.root)).resolve()
        except NlpforgeError as exc:
            if str(exc) != last_error:
                log(f"[yellow]--watch-registry: {exc}; still serving {srv.fingerprint or srv.info.name}[/yellow]")
                last_error = str(exc)
            continue
        last_error = ""
        if path in (current, skipped):
            continue
        engine: AsyncEngine | None = None
        try:
            info = await asyncio.to_thread(read_bundle, path)
            engine = await asyncio.to_thread(load, info)
            problem = swap_problem(srv, info, engine)
            if problem:
                srv.metrics.swaps.labels(result="refused").inc()
                log(f"[red]--watch-registry: {watch.ref} now points at {path}, not swapped in: {problem}[/red]")
                skipped = path
                continue
            await engine.start()
        except Exception as exc:  # noqa: BLE001 - any failure to load keeps the old version serving
            srv.metrics.swaps.labels(result="failed").inc()
            log(f"[red]--watch-registry: loading {path} failed ({type(exc).__name__}: {exc}); still serving {srv.fingerprint or srv.info.name}[/red]")
            skipped = path
            if engine is not None:
                await _shutdown(engine)
            continue
        old = srv.use(info, engine)
        current, skipped = path, None
        srv.metrics.swaps.labels(result="swapped").inc()
        log(f"--watch-registry: {watch.ref} is now {srv.fingerprint or path}; draining the previous engine")
        if old is not None:
            task = asyncio.get_running_loop().create_task(_drain(srv, old, watch.drain_s))
            srv.draining_engines.add(task)
            task.add_done_callback(srv.draining_engines.discard)


async def _drain(srv: Server, engine: AsyncEngine, drain_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + drain_s
    while srv.busy(engine) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    await _shutdown(engine)


async def _shutdown(engine: AsyncEngine) -> None:
    try:
        await engine.shutdown()
    except Exception as exc:  # noqa: BLE001 - the old engine is gone either way
        log(f"[yellow]--watch-registry: shutting the previous engine down: {type(exc).__name__}: {exc}[/yellow]")
