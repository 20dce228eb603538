"""nlpforge's OpenAI-compatible server: thin FastAPI routes over a serve engine.

The routes render chat prompts with the bundle's own template through
``nlpforge.data.chat.prompt_ids`` (what training and the export check use), check limits,
and translate engine snapshots to the OpenAI shapes in ``protocol.py``. Operations (API keys,
body-size limit, metrics) sit in one ASGI middleware so they also cover streaming bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nlpforge import __version__
from nlpforge.console import log
from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import BundleInfo, decide
from nlpforge.serve import protocol as P
from nlpforge.serve.engines import GenOut, GenParams, ServeEngine, TokenLogprob
from nlpforge.serve.feedback import FeedbackStore

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": P.ErrorResponse} for code in (400, 401, 404, 429)}


@dataclass
class ServerConfig:
    """Operational limits and switches (CLI flags of `nlpforge serve`)."""

    api_keys: list[str] = field(default_factory=list)
    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int | None = None  # default: the bundle's max_model_len - 1
    max_tokens_limit: int = 4096
    max_queue: int = 256  # requests in flight; more answer 429
    retry_after_s: int = 1
    max_classify_inputs: int = 256
    feedback_dir: Path | None = None
    log_prompts: bool = False
    redact_pii: bool = False


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
        self.queue = Gauge("nlpforge_queue_depth", "requests accepted and not finished", registry=r)
        self.queue.set_function(depth)


def _json_error(exc: P.APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


class Guard:
    """ASGI middleware: Bearer keys (constant-time, every route but /health), body-size limit,
    request count and latency. Pure ASGI rather than BaseHTTPMiddleware so streamed
    responses and client disconnects pass straight through."""

    OPEN = ("/health",)

    def __init__(self, app: Any, cfg: ServerConfig, metrics: Metrics):
        self.app, self.cfg, self.metrics = app, cfg, metrics
        self.keys = [k.encode() for k in cfg.api_keys]

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

        async def reply(exc: P.APIError) -> None:
            await _json_error(exc)(scope, receive, send_wrapped)

        try:
            headers = dict(scope["headers"])
            if self.keys and path not in self.OPEN and not self._authorized(headers):
                await reply(P.APIError(401, "invalid or missing API key (send `Authorization: Bearer KEY`)", "invalid_request_error", code="invalid_api_key"))
                return
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.cfg.max_body_bytes:
                await reply(P.APIError(400, f"request body of {int(length)} bytes exceeds the limit of {self.cfg.max_body_bytes} bytes", code="body_too_large"))
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
                    if len(body) > self.cfg.max_body_bytes:
                        await reply(P.APIError(400, f"request body exceeds the limit of {self.cfg.max_body_bytes} bytes", code="body_too_large"))
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
                await self.body_iterator.aclose()  # type: ignore[union-attr]
            finally:
                self.on_close()


def sse(payload: Any) -> str:
    data = payload.model_dump_json(exclude_none=True) if hasattr(payload, "model_dump_json") else json.dumps(payload)
    return f"data: {data}\n\n"


class Server:
    """The state the routes share: bundle, engine, tokenizer, limits, metrics, feedback."""

    def __init__(self, info: BundleInfo, engine: ServeEngine, cfg: ServerConfig):
        self.info, self.engine, self.cfg = info, engine, cfg
        self.tok = engine.tokenizer
        self.defaults = info.defaults
        self.inflight = 0
        self.metrics = Metrics(lambda: self.inflight)
        self.max_prompt = cfg.max_prompt_tokens or info.max_model_len - 1
        self._redact: Callable[[str], str] | None = None
        if cfg.redact_pii:
            from nlpforge.corpus.pii import ENTITIES, Anonymizer

            self._redact = Anonymizer(list(ENTITIES))
        self.feedback = FeedbackStore(cfg.feedback_dir, redact=self._redact) if cfg.feedback_dir else None
        self.draining = False

    # checks --------------------------------------------------------------------------------

    def adapter_for(self, model: str | None) -> str | None:
        if model is None or model == self.info.name:
            return None
        if model in self.info.adapters:
            return model
        names = [self.info.name, *self.info.adapters]
        raise P.APIError(404, f"model {model!r} does not exist; this server has {names}", "invalid_request_error", "model", "model_not_found")

    def need_task(self, task: str, route: str) -> None:
        if self.info.task != task:
            raise P.APIError(400, f"{route} needs a {task} bundle; {self.info.path} is a {self.info.task} bundle", param="model", code="wrong_task")

    def acquire(self, cost: int = 1) -> None:
        """Admit a request of ``cost`` sequences or refuse it (429 with Retry-After)."""
        if self.draining:
            raise P.APIError(503, "server is shutting down", "server_error", code="shutting_down", headers={"Retry-After": str(self.cfg.retry_after_s)})
        if self.inflight + cost > self.cfg.max_queue:
            self.metrics.rejected.inc()
            raise P.APIError(429, f"server busy: {self.inflight} requests in flight (limit {self.cfg.max_queue}); retry later", "rate_limit_error",
                             code="queue_full", headers={"Retry-After": str(self.cfg.retry_after_s)})
        self.inflight += cost

    def release(self, cost: int = 1) -> None:
        self.inflight -= cost

    @contextlib.contextmanager
    def admitted(self, cost: int = 1) -> Any:
        self.acquire(cost)
        try:
            yield
        finally:
            self.release(cost)

    def params(self, req: P.SamplingFields, prompt_len: int, max_tokens: int | None, logprobs: int | None, prompt_logprobs: int | None) -> GenParams:
        d = self.defaults
        if prompt_len > self.max_prompt:
            raise P.APIError(400, f"prompt is {prompt_len} tokens; the limit is {self.max_prompt} (max_model_len {self.info.max_model_len})",
                             param="messages" if isinstance(req, P.ChatCompletionRequest) else "prompt", code="context_length_exceeded")
        if max_tokens is not None and max_tokens > self.cfg.max_tokens_limit:
            raise P.APIError(400, f"max_tokens={max_tokens} exceeds this server's limit of {self.cfg.max_tokens_limit}", param="max_tokens", code="max_tokens_too_large")
        room = self.info.max_model_len - prompt_len
        if max_tokens is not None and max_tokens > room:
            raise P.APIError(400, f"prompt ({prompt_len} tokens) + max_tokens ({max_tokens}) exceeds max_model_len {self.info.max_model_len}",
                             param="max_tokens", code="context_length_exceeded")
        temperature = d.temperature if req.temperature is None else req.temperature
        if req.n > 1 and temperature == 0:
            raise P.APIError(400, f"n={req.n} needs temperature > 0 (greedy decoding gives n identical answers)", param="n")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if any(not s for s in stop):
            raise P.APIError(400, "stop strings must not be empty", param="stop")
        try:
            params = GenParams(
                max_tokens=min(max_tokens or d.max_tokens, room, self.cfg.max_tokens_limit), temperature=temperature,
                top_p=d.top_p if req.top_p is None else req.top_p, n=req.n, stop=stop,
                seed=req.seed, logprobs=logprobs, prompt_logprobs=prompt_logprobs, ignore_eos=req.ignore_eos,
                presence_penalty=req.presence_penalty or 0.0, frequency_penalty=req.frequency_penalty or 0.0,
                repetition_penalty=req.repetition_penalty or 1.0, logit_bias=req.logit_bias,
            )
            params.check_vocab(len(self.tok))
        except ValidationError as exc:  # logit_bias keys are checked here, not by the request model
            first = exc.errors()[0]
            field_ = ".".join(str(x) for x in first["loc"]) or None
            raise P.APIError(400, f"{field_}: {str(first['msg']).removeprefix('Value error, ')}", param=field_) from None
        except ValueError as exc:
            raise P.APIError(400, str(exc), param="logit_bias") from None
        return params

    def log_prompt(self, rid: str, text: str) -> None:
        if self.cfg.log_prompts:
            shown = self._redact(text) if self._redact else text
            log(f"{rid}: {shown[:2000]!r}")

    def piece(self, token_id: int) -> str:
        return self.tok.decode([token_id])

    async def run(self, prompt: list[int], params: GenParams, rid: str, adapter: str | None) -> GenOut:
        last: GenOut | None = None
        try:
            async with contextlib.aclosing(self.engine.generate(prompt, params, rid, adapter)) as gen:
                async for out in gen:
                    last = out
        except Exception as exc:
            raise client_error(exc) from exc
        assert last is not None
        self.metrics.prompt_tokens.inc(last.prompt_len)
        self.metrics.completion_tokens.inc(sum(len(c.token_ids) for c in last.choices))
        return last

    # shapes --------------------------------------------------------------------------------

    def chat_logprobs(self, lps: list[TokenLogprob] | None, k: int) -> P.ChoiceLogprobs | None:
        if lps is None:
            return None
        return P.ChoiceLogprobs(content=[
            P.TokenLogprob(token=self.piece(lp.token_id), logprob=lp.logprob,
                           top_logprobs=[P.TopLogprob(token=self.piece(t), logprob=v) for t, v in lp.top[: max(k, 0)]] if k else [])
            for lp in lps
        ])

    def legacy_logprobs(self, ids: list[int], lps: list[TokenLogprob | None]) -> P.LegacyLogprobs:
        out = P.LegacyLogprobs()
        offset = 0
        for tid, lp in zip(ids, lps):
            if lp is None:  # the first prompt token has no logprob
                piece = self.piece(tid)
                out.tokens.append(piece)
                out.token_logprobs.append(None)
                out.top_logprobs.append(None)
                out.text_offset.append(offset)
                offset += len(piece)
                continue
            piece = self.piece(lp.token_id)
            out.tokens.append(piece)
            out.token_logprobs.append(lp.logprob)
            tops: dict[str, float] = {}
            for t, v in lp.top:
                tops.setdefault(self.piece(t), v)
            out.top_logprobs.append(tops)
            out.text_offset.append(offset)
            offset += len(piece)
        return out


def create_app(info: BundleInfo, engine: ServeEngine, cfg: ServerConfig | None = None) -> FastAPI:
    cfg = cfg or ServerConfig()
    srv = Server(info, engine, cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        log(f"nlpforge serve: {info.name} ({info.task}) on the {engine.kind} engine, ready")
        yield
        srv.draining = True  # uvicorn has stopped accepting and waited for open requests
        await engine.shutdown()
        if srv.feedback:
            srv.feedback.close()

    app = FastAPI(title="nlpforge", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible API over an nlpforge bundle: chat, completions, classification, feedback.")
    app.state.server = srv

    @app.exception_handler(P.APIError)
    async def api_error(_: Request, exc: P.APIError) -> JSONResponse:
        return _json_error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body') or 'body'}: {e.get('msg')}" for e in errs[:5])
        return _json_error(P.APIError(400, msg or "invalid request", param=where or None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _json_error(P.APIError(exc.status_code, str(exc.detail), "invalid_request_error" if exc.status_code < 500 else "server_error"))

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log(f"[red]internal error: {type(exc).__name__}: {exc}[/red]")
        return _json_error(P.APIError(500, f"internal error: {type(exc).__name__}", "server_error"))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(srv.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", response_model=P.ModelList, responses=ERRORS)
    async def models() -> P.ModelList:
        cards = [P.ModelCard(id=info.name, root=str(info.path), max_model_len=info.max_model_len)]
        cards += [P.ModelCard(id=name, root=str(path), parent=info.name, max_model_len=info.max_model_len) for name, path in info.adapters.items()]
        return P.ModelList(data=cards)

    @app.post("/tokenize", response_model=P.TokenizeResponse, responses=ERRORS)
    async def tokenize(req: P.TokenizeRequest) -> P.TokenizeResponse:
        srv.adapter_for(req.model)
        if req.messages is not None:
            ids = _render(srv, req.messages, req.add_generation_prompt)
        elif req.prompt is not None:
            ids = srv.tok(req.prompt, add_special_tokens=req.add_special_tokens)["input_ids"]
        else:
            raise P.APIError(400, "give `prompt` or `messages`", param="prompt")
        return P.TokenizeResponse(tokens=ids, count=len(ids), max_model_len=info.max_model_len)

    @app.post("/v1/chat/completions", response_model=P.ChatCompletion, responses=ERRORS)
    async def chat(req: P.ChatCompletionRequest, request: Request) -> Any:
        adapter = srv.adapter_for(req.model)
        srv.need_task("chat", "/v1/chat/completions")
        if req.tools and req.tool_choice != "none":
            raise P.APIError(400, "this server does not make tool calls; send no `tools`, or tool_choice \"none\"", param="tools")
        prompt = _render(srv, req.messages, True)
        k = (req.top_logprobs or 0) if req.logprobs else None
        params = srv.params(req, len(prompt), req.max_completion_tokens or req.max_tokens, k, None)
        rf = req.response_format
        if rf is not None and rf.type != "text":
            if engine.kind != "vllm":
                raise P.APIError(400, f"response_format {rf.type} needs the vllm engine (this server runs {engine.kind})", param="response_format")
            if rf.type == "json_schema":
                if rf.json_schema is None or rf.json_schema.schema_ is None:
                    raise P.APIError(400, "response_format.json_schema.schema is required", param="response_format")
                params = params.model_copy(update={"json_schema": rf.json_schema.schema_})
            else:
                params = params.model_copy(update={"json_object": True})
        rid = P.new_id("chatcmpl")
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        srv.log_prompt(rid, json.dumps(messages))
        if req.stream:
            srv.acquire(req.n)
            return SSEResponse(_chat_stream(srv, req, prompt, params, rid, adapter, messages), lambda: srv.release(req.n))
        with srv.admitted(req.n):
            out = await srv.run(prompt, params, rid, adapter)
        choices = [P.ChatChoice(index=c.index, message=P.AssistantMessage(content=c.text), finish_reason=c.finish_reason,
                                logprobs=srv.chat_logprobs(c.logprobs, k or 0)) for c in out.choices]
        completion = sum(len(c.token_ids) for c in out.choices)
        if srv.feedback:
            srv.feedback.remember(rid, req.model, messages, [c.text for c in out.choices])
        return P.ChatCompletion(id=rid, model=req.model, choices=choices,
                                usage=P.Usage(prompt_tokens=len(prompt), completion_tokens=completion, total_tokens=len(prompt) + completion))

    @app.post("/v1/completions", response_model=P.Completion, responses=ERRORS)
    async def completions(req: P.CompletionRequest) -> Any:
        adapter = srv.adapter_for(req.model)
        srv.need_task("chat", "/v1/completions")
        prompts = _prompts(srv, req.prompt)
        want = req.max_tokens if req.max_tokens != 0 else 1  # max_tokens 0 + echo: score the prompt only
        if req.max_tokens == 0 and not req.echo:
            raise P.APIError(400, "max_tokens=0 is only useful with echo=true", param="max_tokens")
        plist = [srv.params(req, len(p), want, req.logprobs, req.logprobs if req.echo and req.logprobs is not None else None) for p in prompts]
        rid = P.new_id("cmpl")
        for p in prompts:
            srv.log_prompt(rid, srv.tok.decode(p))
        if req.stream:
            if len(prompts) > 1 or req.echo:
                raise P.APIError(400, "streaming takes one prompt without echo", param="stream")
            srv.acquire(req.n)
            return SSEResponse(_completion_stream(srv, req, prompts[0], plist[0], rid, adapter), lambda: srv.release(req.n))
        with srv.admitted(len(prompts) * req.n):
            outs = await asyncio.gather(*(srv.run(p, pp, f"{rid}-{i}", adapter) for i, (p, pp) in enumerate(zip(prompts, plist))))
        choices = []
        for i, (p, out) in enumerate(zip(prompts, outs)):
            for c in out.choices:
                text, lps = c.text, c.logprobs
                token_lps: list[TokenLogprob | None] = list(lps or [])
                if req.max_tokens == 0:
                    text, token_lps = "", []
                legacy = None
                if req.echo:
                    prompt_text = srv.tok.decode(p)
                    text = prompt_text + text
                    if req.logprobs is not None:
                        gen_ids = [] if req.max_tokens == 0 else c.token_ids
                        legacy = srv.legacy_logprobs(p + gen_ids, list(out.prompt_logprobs or [None] * len(p)) + token_lps)
                elif req.logprobs is not None:
                    legacy = srv.legacy_logprobs(c.token_ids, token_lps)
                choices.append(P.CompletionChoice(index=i * req.n + c.index, text=text, finish_reason=c.finish_reason, logprobs=legacy))
        n_prompt = sum(len(p) for p in prompts)
        n_out = sum(len(c.token_ids) for o in outs for c in o.choices)
        return P.Completion(id=rid, model=req.model, choices=choices, usage=P.Usage(prompt_tokens=n_prompt, completion_tokens=n_out, total_tokens=n_prompt + n_out))

    @app.post("/v1/classify", response_model=P.ClassifyResponse, responses=ERRORS)
    async def classify(req: P.ClassifyRequest) -> P.ClassifyResponse:
        srv.adapter_for(req.model)
        srv.need_task("classification", "/v1/classify")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or len(texts) > cfg.max_classify_inputs:
            raise P.APIError(400, f"input: give 1 to {cfg.max_classify_inputs} texts, got {len(texts)}", param="input")
        with srv.admitted(1):
            probs, n_tokens = await engine.classify(texts)
        labels = info.labels or [str(i) for i in range(len(probs[0]))]
        thr = req.threshold if req.threshold is not None else info.threshold
        data = [P.ClassifyItem(index=i, label=decide(p, labels, info.multi_label, thr), probs=p, num_classes=len(p), labels=labels, threshold=thr)
                for i, p in enumerate(probs)]
        return P.ClassifyResponse(id=P.new_id("classify"), model=req.model or info.name, data=data, usage=P.Usage(prompt_tokens=n_tokens, total_tokens=n_tokens))

    @app.post("/v1/feedback", response_model=P.FeedbackResponse, responses=ERRORS)
    async def feedback(req: P.FeedbackRequest) -> P.FeedbackResponse:
        if srv.feedback is None:
            raise P.APIError(400, "feedback is off on this server; start it with --feedback-dir DIR", code="feedback_disabled")
        if req.rating is None and req.preferred is None:
            raise P.APIError(400, "give `rating` (up|down) and/or `preferred` (the answer you wanted)", param="rating")
        if not srv.feedback.add(req):
            raise P.APIError(404, f"no recent chat completion with id {req.id!r} (choice {req.choice}) on this server", param="id", code="not_found")
        return P.FeedbackResponse(id=req.id)

    return Guard(app, cfg, srv.metrics)  # type: ignore[return-value]


def client_error(exc: Exception) -> Exception:
    """vLLM's request-validation errors are the caller's fault: 400, not 500."""
    if any(c.__name__ == "VLLMClientError" for c in type(exc).__mro__):
        return P.APIError(400, str(exc), param=getattr(exc, "parameter", None))
    return exc


def _render(srv: Server, messages: list[P.ChatMessage], add_generation_prompt: bool) -> list[int]:
    msgs = [{"role": m.role, "content": m.content or ""} for m in messages]
    try:
        if add_generation_prompt:
            return prompt_ids(srv.tok, msgs)
        return list(srv.tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"])
    except Exception as exc:  # noqa: BLE001 - a template that raises (e.g. roles out of order) is the caller's input
        raise P.APIError(400, f"messages: the model's chat template cannot render them: {exc}", param="messages") from None


def _prompts(srv: Server, prompt: Any) -> list[list[int]]:
    if isinstance(prompt, str):
        items: list[Any] = [prompt]
    elif prompt and all(isinstance(x, int) for x in prompt):
        items = [prompt]
    else:
        items = list(prompt)
    if not items:
        raise P.APIError(400, "prompt must not be empty", param="prompt")
    vocab = len(srv.tok)
    out = []
    for it in items:
        ids = srv.tok(it)["input_ids"] if isinstance(it, str) else list(it)
        if not ids:
            raise P.APIError(400, "prompt must not be empty", param="prompt")
        if any(t < 0 or t >= vocab for t in ids):
            raise P.APIError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
        out.append(ids)
    return out


async def _streamed(srv: Server, prompt: list[int], params: GenParams, rid: str, adapter: str | None,
                    on_delta: Callable[[GenOut, list[int], list[int]], Awaitable[list[str]] | list[str]]) -> AsyncIterator[str]:
    """Run one request and yield SSE events made by ``on_delta`` from each snapshot; errors
    become an ``error`` event (the client raises on it), a disconnect aborts the request."""
    params = params.model_copy(update={"stream": True})
    sent_text = [0] * params.n
    sent_lp = [0] * params.n
    last: GenOut | None = None
    try:
        async with contextlib.aclosing(srv.engine.generate(prompt, params, rid, adapter)) as gen:
            async for out in gen:
                last = out
                for ev in on_delta(out, sent_text, sent_lp):  # type: ignore[union-attr]
                    yield ev
    except P.APIError as exc:
        yield sse(exc.body())
    except Exception as exc:  # noqa: BLE001 - the status line is sent; report in-band
        err = client_error(exc)
        if err is not exc:
            yield sse(err.body())
        else:
            log(f"[red]stream {rid} failed: {type(exc).__name__}: {exc}[/red]")
            yield sse({"error": {"message": f"internal error: {type(exc).__name__}", "type": "server_error", "param": None, "code": None}})
    except (asyncio.CancelledError, GeneratorExit):
        srv.metrics.aborted.inc()
        raise
    else:
        if last is not None:
            srv.metrics.prompt_tokens.inc(last.prompt_len)
            srv.metrics.completion_tokens.inc(sum(len(c.token_ids) for c in last.choices))
    yield "data: [DONE]\n\n"


def _chat_stream(srv: Server, req: P.ChatCompletionRequest, prompt: list[int], params: GenParams, rid: str, adapter: str | None,
                 messages: list[dict]) -> AsyncIterator[str]:
    k = params.logprobs or 0
    started = [False] * params.n
    finished = [False] * params.n
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def on_delta(out: GenOut, sent_text: list[int], sent_lp: list[int]) -> list[str]:
        events = []
        for c in out.choices:
            i = c.index
            if not started[i]:
                started[i] = True
                events.append(sse(P.ChatCompletionChunk(id=rid, model=req.model, choices=[P.ChatChunkChoice(index=i, delta=P.DeltaMessage(role="assistant", content=""))])))
            text = c.text[sent_text[i]:]
            new_lp = c.logprobs[sent_lp[i]:] if c.logprobs is not None else None
            finish = None if finished[i] else c.finish_reason
            finished[i] = finished[i] or finish is not None
            if text or finish or new_lp:
                sent_text[i] = len(c.text)
                sent_lp[i] += len(new_lp or [])
                events.append(sse(P.ChatCompletionChunk(id=rid, model=req.model, choices=[P.ChatChunkChoice(
                    index=i, delta=P.DeltaMessage(content=text), finish_reason=finish,
                    logprobs=srv.chat_logprobs(new_lp, k) if params.logprobs is not None and new_lp else None)])))
        if out.finished:
            if srv.feedback:
                srv.feedback.remember(rid, req.model, messages, [c.text for c in out.choices])
            if include_usage:
                n = sum(len(c.token_ids) for c in out.choices)
                events.append(sse(P.ChatCompletionChunk(id=rid, model=req.model, choices=[],
                                                        usage=P.Usage(prompt_tokens=len(prompt), completion_tokens=n, total_tokens=len(prompt) + n))))
        return events

    return _streamed(srv, prompt, params, rid, adapter, on_delta)


def _completion_stream(srv: Server, req: P.CompletionRequest, prompt: list[int], params: GenParams, rid: str, adapter: str | None) -> AsyncIterator[str]:
    finished = [False] * params.n

    def on_delta(out: GenOut, sent_text: list[int], sent_lp: list[int]) -> list[str]:
        events = []
        for c in out.choices:
            text = c.text[sent_text[c.index]:]
            finish = None if finished[c.index] else c.finish_reason
            finished[c.index] = finished[c.index] or finish is not None
            if text or finish:
                sent_text[c.index] = len(c.text)
                events.append(sse(P.Completion(id=rid, model=req.model, choices=[P.CompletionChoice(index=c.index, text=text, finish_reason=finish)])))
        return events

    return _streamed(srv, prompt, params, rid, adapter, on_delta)
