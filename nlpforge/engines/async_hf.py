"""transformers behind the server: one worker thread takes queued requests and runs them as one
batch through the shared decoding loop (``decode.py``), so rows with different sampling
parameters, seeds and adapters share a batch. The model is loaded the way eval and batch
scoring load it (``HFEngine.from_bundle``); an adapter bundle's adapters all sit on the one
base (PEFT multi-adapter, per-row ``adapter_names``).

One request never fails another: a row whose logits go bad fails alone inside the loop, and
if a whole batch raises, each of its requests is retried alone so only the culprit hears of
it. Hand-written because no library does dynamic batching over ``generate``.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nlpforge.console import log
from nlpforge.engines.base import EngineRequestError, GenOut, Sampling, classify_ids
from nlpforge.engines.bundle import BundleInfo, load_tokenizer
from nlpforge.engines.decode import Row, decode, prompt_logprobs
from nlpforge.engines.hf import HFEngine, pad_id
from nlpforge.errors import StageError

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


@dataclass
class _Job:
    kind: str  # "generate" | "classify"
    emit: Callable[[Any], None]  # called from the worker thread; hands the item to the request's event loop
    texts: list[str] = field(default_factory=list)  # classify
    prompt: list[int] = field(default_factory=list)  # generate
    params: Sampling | None = None
    adapter: str | None = None
    stream: bool = False
    cancelled: bool = False  # set by the request when its client goes away

    @property
    def rows(self) -> int:
        return len(self.texts) if self.kind == "classify" else (self.params.n if self.params else 1)


class AsyncHFEngine:
    kind = "hf"

    def __init__(self, info: BundleInfo, max_batch: int = 16, batch_wait_ms: float = 5.0, threads: int | None = None):
        self.info = info
        self.tok = load_tokenizer(info)
        self.max_batch = max_batch
        self.batch_wait = batch_wait_ms / 1000
        self.threads = threads
        self.core: HFEngine | None = None
        self.model: Any = None  # the core's model, or the PEFT model holding every adapter
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._held: deque[_Job] = deque()
        self._pending = 0
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self.core = await asyncio.to_thread(HFEngine.from_bundle, self.info, self.max_batch, self.threads, None, self.tok)
        self.model = self.core.model
        if self.info.adapters:
            self.model = await asyncio.to_thread(self._load_adapters)
        self._thread = threading.Thread(target=self._loop, name="nlpforge-hf-engine", daemon=True)
        self._thread.start()

    def _load_adapters(self) -> Any:
        from peft import PeftModel

        assert self.core is not None
        names = list(self.info.adapters)
        model = PeftModel.from_pretrained(self.core.model, str(self.info.adapters[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(self.info.adapters[name]), adapter_name=name)
        return model.eval()

    def pending(self) -> int:
        return self._pending

    async def shutdown(self) -> None:
        self._q.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    def _submit(self, job: _Job) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        job.emit = lambda item: loop.call_soon_threadsafe(q.put_nowait, item)
        self._pending += 1
        self._q.put(job)
        return q

    async def generate(self, prompt: list[int], params: Sampling, request_id: str, adapter: str | None = None, stream: bool = False) -> AsyncIterator[GenOut]:
        if params.json_schema is not None or params.json_object:
            raise EngineRequestError("response_format json_schema/json_object needs the vllm engine")
        job = _Job("generate", lambda _: None, prompt=prompt, params=params, adapter=adapter, stream=stream)
        q = self._submit(job)
        try:
            while True:
                item = await q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finished:
                    return
        finally:
            job.cancelled = True  # no-op once finished; stops the rows of an abandoned request

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]:
        q = self._submit(_Job("classify", lambda _: None, texts=texts))
        item = await q.get()
        if isinstance(item, BaseException):
            raise item
        return item

    # worker thread ------------------------------------------------------------------------

    def _next(self, timeout: float | None) -> _Job | None | bool:
        if self._held:
            return self._held.popleft()
        try:
            return self._q.get(timeout=timeout) if timeout is None or timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return False

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` and the queued jobs of its kind that arrive within the batch window."""
        batch, rows, stop = [first], first.rows, False
        deadline = time.monotonic() + self.batch_wait
        held: list[_Job] = []
        while rows < self.max_batch:
            nxt = self._next(deadline - time.monotonic())
            if nxt is False:
                break
            if nxt is None:
                stop = True
                break
            assert isinstance(nxt, _Job)
            if nxt.kind == first.kind and rows + nxt.rows <= self.max_batch and not nxt.cancelled:
                batch.append(nxt)
                rows += nxt.rows
            else:
                held.append(nxt)
        self._held.extend(held)
        return batch, stop

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._next(None)
            if first is None:
                break
            assert isinstance(first, _Job)
            batch, stop = self._collect(first)
            try:
                self._run(batch)
            finally:
                self._pending -= len(batch)
        while (job := self._next(0)) not in (None, False):
            assert isinstance(job, _Job)
            job.emit(StageError("server shutting down"))

    def _run(self, batch: list[_Job]) -> None:
        """Run a batch; if it raises, run each job alone so the error reaches only its own request."""
        try:
            (self._classify if batch[0].kind == "classify" else self._generate)(batch)
        except Exception as exc:  # noqa: BLE001 - every waiting request must hear about it
            if len(batch) == 1:
                log(f"[red]hf engine: a {batch[0].kind} request failed: {type(exc).__name__}: {exc}[/red]")
                batch[0].emit(exc)
                return
            for job in batch:
                self._run([job])

    def _classify(self, batch: list[_Job]) -> None:
        assert self.core is not None
        ids = classify_ids(self.tok, [t for job in batch for t in job.texts], self.info.max_length)
        probs = self.core.classify_ids(ids)
        i = 0
        for job in batch:
            n = len(job.texts)
            job.emit((probs[i : i + n], sum(len(x) for x in ids[i : i + n])))
            i += n

    def _generate(self, batch: list[_Job]) -> None:
        rows: list[Row] = []
        owner: dict[int, _Job] = {}
        stop_ids = frozenset(self.info.stop_ids)
        for job in batch:
            assert job.params is not None
            for c in range(job.params.n):
                row = Row(job.prompt, job.params, stop_ids, index=c, adapter=job.adapter, stream=job.stream, aborted=lambda j=job: j.cancelled)  # type: ignore[misc]
                owner[id(row)] = job
                rows.append(row)
        mine = {id(job): [r for r in rows if owner[id(r)] is job] for job in batch}

        def snapshot(job: _Job, finished: bool) -> GenOut:
            # copies: the worker keeps appending to the live lists while the event loop reads these
            choices = [replace(r.out, token_ids=list(r.out.token_ids), logprobs=None if r.out.logprobs is None else list(r.out.logprobs)) for r in mine[id(job)]]
            return GenOut(choices, len(job.prompt), None, finished)

        def on_step(changed: list[Row]) -> None:
            jobs = {id(owner[id(r)]): owner[id(r)] for r in changed}
            for job in jobs.values():
                if job.stream and not all(r.done for r in mine[id(job)]):
                    job.emit(snapshot(job, False))

        streaming = any(job.stream for job in batch)
        decode(self.model, self.tok, rows, pad_id(self.tok, self.info), on_step if streaming else None, adapter_names=bool(self.info.adapters))
        for job in batch:
            failed = [r.out.error for r in mine[id(job)] if r.out.error]
            if failed:
                job.emit(RuntimeError(failed[0]))
                continue
            out = snapshot(job, True)
            if job.params is not None and job.params.prompt_logprobs is not None:
                extra = {"adapter_names": [job.adapter or BASE_ADAPTER]} if self.info.adapters else {}
                out.prompt_logprobs = prompt_logprobs(self.model, job.prompt, job.params.prompt_logprobs, extra)
            job.emit(out)
