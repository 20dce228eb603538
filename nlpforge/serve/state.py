"""What the routes share: the bundle, the engine, the limits, admission to the queue, metrics,
feedback, and the translation of engine outputs into the OpenAI shapes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nlpforge.console import log
from nlpforge.data.chat import prompt_ids
from nlpforge.engines.base import AsyncEngine, EngineRequestError, GenOut, Sampling, TokenLogprob
from nlpforge.engines.bundle import BundleInfo
from nlpforge.evals.drift import read_reference
from nlpforge.serve import protocol as P
from nlpforge.serve.feedback import FeedbackStore
from nlpforge.serve.middleware import Metrics
from nlpforge.serve.monitor import Monitor


@dataclass
class ServerConfig:
    """Operational limits and switches (the recipe's ``serve`` section or the CLI flags of `nlpforge serve`)."""

    api_keys: list[str] = field(default_factory=list)
    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int | None = None  # default: the bundle's max_model_len - 1
    max_tokens_limit: int = 4096
    max_queue: int = 256  # sequences in flight; more answer 429
    retry_after_s: int = 1
    max_classify_inputs: int = 256
    feedback_dir: Path | None = None
    log_prompts: bool = False
    redact_pii: bool = False
    monitor_factuality: bool = True  # score grounded chat answers off the request path
    monitor_drift: bool = True  # prompts against the bundle's drift.json, off the request path
    monitor_cpu: float = 0.1  # share of one core the monitoring worker may use
    feedback_retain: int = 1_000_000  # completions kept in the feedback store (newest)
    hallucination_gate: float = 0.5  # grounded answers scoring above it are counted (nlpforge_hallucination_over_gate)


def validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    """The first problems of a validation error (pydantic's, or FastAPI's without its ``body`` prefix) as one message, and the field to name as ``param``."""
    where = [".".join(str(x) for x in e.get("loc", ()) if x != "body") for e in errors[:5]]
    msg = "; ".join(f"{w or 'body'}: {str(e.get('msg')).removeprefix('Value error, ')}" for w, e in zip(where, errors))
    return msg or "invalid request", (where[0] if where else None) or None


def client_error(exc: BaseException) -> BaseException:
    """Errors that are the caller's fault (vLLM's request validation, a refused parameter): 400, not 500."""
    if isinstance(exc, EngineRequestError):
        return P.APIError(400, str(exc))
    if any(c.__name__ == "VLLMClientError" for c in type(exc).__mro__):
        return P.APIError(400, str(exc), param=getattr(exc, "parameter", None))
    return exc


def registry_version(info: BundleInfo) -> str | None:
    """``NAME@vN`` of a bundle served from the registry (its ``registry.json``), else None."""
    try:
        reg = json.loads((Path(info.path) / "registry.json").read_text(encoding="utf-8")) if info.path else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return f"{reg['name']}@{reg['version']}" if isinstance(reg, dict) and "name" in reg and "version" in reg else None


class Server:
    def __init__(self, info: BundleInfo, engine: AsyncEngine, cfg: ServerConfig):
        self.cfg = cfg
        self.inflight = 0
        self.metrics = Metrics(lambda: self.inflight)
        self._users: dict[int, int] = {}  # id(engine) -> requests running on it (a swapped-out engine drains)
        self.draining_engines: set[asyncio.Task] = set()  # engines swapped out by --watch-registry, finishing their requests
        self.use(info, engine)
        drift = read_reference(info.path) if cfg.monitor_drift else None
        self.monitor = Monitor(self.metrics.registry, gate=cfg.hallucination_gate, factuality=cfg.monitor_factuality, drift=drift,
                               cpu=cfg.monitor_cpu)
        self.redact: Callable[[str], str] | None = None
        if cfg.redact_pii:
            from nlpforge.corpus.pii import ENTITIES, Anonymizer

            self.redact = Anonymizer(list(ENTITIES))
        self.feedback = FeedbackStore(cfg.feedback_dir, cfg.feedback_retain, redact=self.redact) if cfg.feedback_dir else None
        self.draining = False

    def use(self, info: BundleInfo, engine: AsyncEngine) -> AsyncEngine | None:
        """Serve ``info`` on ``engine`` from now on (one step, no await: a request sees the old
        bundle or the new one); returns the engine it replaces, to drain."""
        old = getattr(self, "engine", None)
        self.info, self.engine = info, engine
        self.tok = engine.tok
        self.vocab = len(self.tok)
        self.defaults = info.defaults
        self.max_prompt = self.cfg.max_prompt_tokens or info.max_model_len - 1
        self.fingerprint = registry_version(info)
        self._pieces: dict[int, str] = {}
        self.metrics.serving.clear()
        self.metrics.serving.labels(model=info.name, version=self.fingerprint or "").set(1)
        return old

    def busy(self, engine: AsyncEngine) -> int:
        return self._users.get(id(engine), 0)

    @contextlib.contextmanager
    def engine_in_use(self) -> Iterator[AsyncEngine]:
        """The current engine, counted as busy until the block ends (so a swap waits for it)."""
        engine = self.engine
        self._users[id(engine)] = self._users.get(id(engine), 0) + 1
        try:
            yield engine
        finally:
            self._users[id(engine)] -= 1
            if not self._users[id(engine)]:
                del self._users[id(engine)]

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
            raise P.APIError(400, f"{route} needs a {task} bundle; this server holds a {self.info.task} bundle", param="model", code="wrong_task")

    def acquire(self, cost: int = 1) -> None:
        """Admit a request of ``cost`` sequences or refuse it: 400 if it could never fit, else 429 with Retry-After."""
        if self.draining:
            raise P.APIError(503, "server is shutting down", "server_error", code="shutting_down", headers={"Retry-After": str(self.cfg.retry_after_s)})
        if cost > self.cfg.max_queue:
            raise P.APIError(400, f"this request needs {cost} sequences (prompts x n); the server admits at most {self.cfg.max_queue} at once (--max-queue)",
                             param="prompt", code="batch_too_large")
        if self.inflight + cost > self.cfg.max_queue:
            self.metrics.rejected.inc()
            raise P.APIError(429, f"server busy: {self.inflight} sequences in flight (limit {self.cfg.max_queue}); retry later", "rate_limit_error",
                             code="queue_full", headers={"Retry-After": str(self.cfg.retry_after_s)})
        self.inflight += cost

    def release(self, cost: int = 1) -> None:
        self.inflight -= cost

    @contextlib.contextmanager
    def admitted(self, cost: int = 1) -> Iterator[None]:
        self.acquire(cost)
        try:
            yield
        finally:
            self.release(cost)

    def sampling(self, req: P.ChatCompletionRequest | P.CompletionRequest, prompt_len: int) -> Sampling:
        """The request's ``Sampling`` within this server's limits (400s name the field)."""
        where = "messages" if isinstance(req, P.ChatCompletionRequest) else "prompt"
        if prompt_len > self.max_prompt:
            raise P.APIError(400, f"prompt is {prompt_len} tokens; the limit is {self.max_prompt} (max_model_len {self.info.max_model_len})",
                             param=where, code="context_length_exceeded")
        want = req.requested_max_tokens()
        if want is not None and want > self.cfg.max_tokens_limit:
            raise P.APIError(400, f"max_tokens={want} exceeds this server's limit of {self.cfg.max_tokens_limit}", param="max_tokens", code="max_tokens_too_large")
        room = self.info.max_model_len - prompt_len
        if want is not None and want > room:
            raise P.APIError(400, f"prompt ({prompt_len} tokens) + max_tokens ({want}) exceeds max_model_len {self.info.max_model_len}",
                             param="max_tokens", code="context_length_exceeded")
        try:
            params = req.to_sampling(self.defaults, min(want or self.defaults.max_tokens, room, self.cfg.max_tokens_limit))
            params.check_vocab(self.vocab)
        except ValidationError as exc:
            msg, param = validation_message(exc.errors())
            raise P.APIError(400, msg, param=param) from None
        except ValueError as exc:
            raise P.APIError(400, str(exc), param="logit_bias" if "logit_bias" in str(exc) else "n" if str(exc).startswith("n=") else None) from None
        if (params.json_schema or params.json_object) and self.engine.kind != "vllm":
            raise P.APIError(400, f"response_format json needs the vllm engine (this server runs {self.engine.kind})", param="response_format")
        return params

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        try:
            if add_generation_prompt:
                return prompt_ids(self.tok, messages)
            return list(self.tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        except Exception as exc:  # noqa: BLE001 - a template that raises (e.g. roles out of order) is the caller's input
            raise P.APIError(400, f"messages: the model's chat template cannot render them: {exc}", param="messages") from None

    def prompts(self, req: P.CompletionRequest) -> list[list[int]]:
        p = req.prompt
        items: list[str | list[int]] = [p] if isinstance(p, str) or (p and isinstance(p[0], int)) else list(p)  # type: ignore[list-item]
        out = []
        for it in items:
            ids = list(self.tok(it)["input_ids"]) if isinstance(it, str) else list(it)
            if not ids:
                raise P.APIError(400, "prompt must not be empty", param="prompt")
            if any(t < 0 or t >= self.vocab for t in ids):
                raise P.APIError(400, f"prompt token ids must be in [0, {self.vocab})", param="prompt")
            out.append(ids)
        return out

    def log_prompt(self, rid: str, text: str) -> None:
        if self.cfg.log_prompts:
            shown = self.redact(text) if self.redact else text
            log(f"{rid}: {shown[:2000]!r}")

    async def run(self, prompt: list[int], params: Sampling, rid: str, adapter: str | None) -> GenOut:
        last: GenOut | None = None
        started = time.perf_counter()
        try:
            with self.engine_in_use() as engine:
                async with contextlib.aclosing(engine.generate(prompt, params, rid, adapter)) as gen:
                    async for out in gen:
                        last = out
        except Exception as exc:
            raise client_error(exc) from exc
        assert last is not None
        self.finished(last, adapter, started)
        return last

    def finished(self, out: GenOut, adapter: str | None, started: float | None) -> None:
        """Count a whole answer: tokens, finish reasons, empty answers and refusals, latency."""
        self.metrics.prompt_tokens.inc(out.prompt_len)
        self.metrics.completion_tokens.inc(sum(len(c.token_ids) for c in out.choices))
        self.monitor.answered(adapter or self.info.name, [c.text for c in out.choices], [c.finish_reason for c in out.choices],
                              None if started is None else time.perf_counter() - started)

    # shapes --------------------------------------------------------------------------------

    def piece(self, token_id: int) -> str:
        """A token's text (cached: logprob responses decode every token again and again)."""
        text = self._pieces.get(token_id)
        if text is None:
            text = self._pieces[token_id] = self.tok.decode([token_id])
        return text

    def chat_logprobs(self, lps: list[TokenLogprob] | None, k: int) -> P.ChoiceLogprobs | None:
        if lps is None:
            return None
        return P.ChoiceLogprobs(content=[
            P.TokenLogprob(token=self.piece(lp.token_id), logprob=lp.logprob,
                           top_logprobs=[P.TopLogprob(token=self.piece(t), logprob=v) for t, v in sorted(lp.top, key=lambda x: -x[1])[:k]] if k else [])
            for lp in lps
        ])

    def legacy_logprobs(self, ids: list[int], lps: list[TokenLogprob | None]) -> P.LegacyLogprobs:
        out = P.LegacyLogprobs()
        offset = 0
        for tid, lp in zip(ids, lps):
            piece = self.piece(tid if lp is None else lp.token_id)
            out.tokens.append(piece)
            out.token_logprobs.append(None if lp is None else lp.logprob)
            tops: dict[str, float] | None = None
            if lp is not None:
                tops = {}
                for t, v in lp.top:
                    tops.setdefault(self.piece(t), v)
            out.top_logprobs.append(tops)
            out.text_offset.append(offset)
            offset += len(piece)
        return out
