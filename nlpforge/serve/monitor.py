"""What the served model answers, as Prometheus series to alert on: finish reasons, empty answers
and refusals, generation latency and feedback ratings per model or adapter; online
factuality: a chat answer that comes with grounding (``metadata.context``, or messages named
``context``) is scored against it with the model-free ``hallucination_score``; and input drift:
each prompt against the training prompts' reference in the bundle (``drift.json``: rolling
out-of-vocabulary rate and MiniLM distance to the training centroid).

Scoring and drift run off the request path in one worker *process* at the lowest CPU priority
(nice 19) and within a CPU budget (``cpu``: the share of one core it may use; after each job it
rests in proportion), behind a bounded queue: when answers come faster than the budget scores
them, the surplus is counted as dropped, and what is scored is a sample of the traffic.
Measured on the 2-core machine (scripts/bench_monitor.py): a scoring thread in the server cut
the hf engine's throughput to 0.3-0.6x (spaCy under the server's GIL); a niced process without
a budget still cost 0.70x at concurrency 8 (its CPU's sibling is the engine's)."""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nlpforge.console import log

# an answer that declines: the opening phrases instruction-tuned models use
REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can ?not|can'?t|won'?t|am unable|'m unable|am not able|'m not able)|"
                     r"as an ai\b|i apologi[sz]e)", re.IGNORECASE)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Monitor:
    def __init__(self, registry: CollectorRegistry, gate: float = 0.5, max_pending: int = 64, factuality: bool = True,
                 drift: dict[str, Any] | None = None, drift_window: int = 200, cpu: float = 0.1):
        r = registry
        self.gate, self.max_pending, self.factuality, self.cpu = gate, max_pending, factuality, cpu
        self.finish = Counter("nlpforge_finish_reasons", "answers by finish reason (stop, length, abort)", ["model", "reason"], registry=r)
        self.empty = Counter("nlpforge_empty_answers", "answers with no text", ["model"], registry=r)
        self.refusals = Counter("nlpforge_refusals", "answers that open with a refusal ('I'm sorry', 'I can't', 'As an AI')", ["model"], registry=r)
        self.latency = Histogram("nlpforge_generation_seconds", "time from admission to the whole answer, per model or adapter", ["model"], registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64))
        self.feedback = Counter("nlpforge_feedback", "feedback received, by rating", ["model", "rating"], registry=r)
        self.hallucination = Histogram("nlpforge_hallucination_score", "hallucination_score of grounded chat answers against their context",
                                       ["model"], registry=r, buckets=SCORE_BUCKETS)
        self.over_gate = Counter("nlpforge_hallucination_over_gate", f"grounded answers whose hallucination_score exceeds the gate ({gate})", ["model"], registry=r)
        self.dropped = Counter("nlpforge_factuality_dropped", "grounded answers not scored because the scoring queue was full", registry=r)
        self.drift, self.drift_window = drift, drift_window
        if drift is not None:
            self.oov = Gauge("nlpforge_input_oov_rate", f"share of prompt words never seen in a training prompt, mean of the last {drift_window} prompts",
                             ["model"], registry=r)
            self.distance = Gauge("nlpforge_input_embedding_distance", f"1 - cosine of the prompt's MiniLM embedding to the training centroid, mean of the last {drift_window} prompts",
                                  ["model"], registry=r)
            reference = Gauge("nlpforge_input_drift_reference", "the same measures on the held-out prompts at export (no drift)", ["measure"], registry=r)
            for measure, v in (drift.get("held_out") or {}).items():
                if measure in ("oov_rate", "embedding_distance") and v is not None:
                    reference.labels(measure).set(v)
            self.drift_dropped = Counter("nlpforge_drift_dropped", "prompts not measured for drift because the queue was full", registry=r)
        self._pool: ProcessPoolExecutor | None = None
        self._pending = 0
        self._lock = threading.Lock()

    def answered(self, model: str, texts: list[str], reasons: list[str | None], seconds: float | None) -> None:
        for text, reason in zip(texts, reasons):
            self.finish.labels(model, reason or "none").inc()
            if not text.strip():
                self.empty.labels(model).inc()
            elif REFUSAL.match(text):
                self.refusals.labels(model).inc()
        if seconds is not None:
            self.latency.labels(model).observe(seconds)

    def rated(self, model: str, rating: str) -> None:
        self.feedback.labels(model, rating).inc()

    def grounded(self, model: str, context: str, answers: list[str]) -> None:
        """Score ``answers`` against ``context`` later, in the worker process."""
        if self.factuality and not self._submit(self._scored, _score_job, model, context, answers):
            self.dropped.inc(len(answers))

    def prompted(self, model: str, texts: list[str]) -> None:
        """Measure the drift of prompts later, in the worker process (a bundle with ``drift.json``)."""
        if self.drift is not None and texts and not self._submit(self._drifted, _drift_job, model, texts, self.drift_window):
            self.drift_dropped.inc(len(texts))

    def _submit(self, done: Callable[[str, Any], None], job: Callable[..., Any], model: str, *args: Any) -> bool:
        with self._lock:
            if self._pending >= self.max_pending:
                return False
            self._pending += 1
            if self._pool is None:
                # spawn: forking a server that holds threads (uvicorn, torch) is unsafe
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init, initargs=(self.drift, self.cpu))
        try:
            future = self._pool.submit(job, model, *args)
        except Exception as exc:  # noqa: BLE001 - a broken worker turns monitoring off, never the server
            self._finished()
            log(f"[red]monitoring is off: its worker failed ({type(exc).__name__}: {exc})[/red]")
            return False
        future.add_done_callback(lambda f: self._collect(f, done, model))
        return True

    def _collect(self, future: Future, done: Callable[[str, Any], None], model: str) -> None:
        try:
            if not future.cancelled():
                done(model, future.result())
        except Exception as exc:  # noqa: BLE001 - monitoring must never take the server down
            log(f"[red]monitoring failed: {type(exc).__name__}: {exc}[/red]")
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._lock:
            self._pending -= 1

    def _scored(self, model: str, scores: list[float | None]) -> None:
        for score in scores:
            if score is not None:
                self.hallucination.labels(model).observe(score)
                if score > self.gate:
                    self.over_gate.labels(model).inc()

    def _drifted(self, model: str, means: tuple[float | None, float | None]) -> None:
        oov, dist = means
        if oov is not None:
            self.oov.labels(model).set(oov)
        if dist is not None:
            self.distance.labels(model).set(dist)

    def idle(self) -> bool:
        return self._pending == 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


# the worker process ---------------------------------------------------------------------------

_DRIFT: dict[str, Any] | None = None
_WINDOWS: dict[str, Any] = {}
_CPU = 0.1


def _worker_init(drift: dict[str, Any] | None, cpu: float) -> None:
    global _DRIFT, _CPU
    os.nice(19)  # yield to the server whenever both want the CPU
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    _DRIFT, _CPU = drift, cpu


def _within_budget(started: float) -> None:
    """Rest so that the work done since ``started`` stays within ``_CPU`` of one core."""
    if _CPU < 1:
        time.sleep((time.perf_counter() - started) * (1 / _CPU - 1))


def _score_job(model: str, context: str, answers: list[str]) -> list[float | None]:
    from nlpforge.evals.factuality import load_nlp, score_records

    load_nlp()  # once per worker, outside the budget
    started = time.perf_counter()
    scores = [row.get("hallucination_score") for row in score_records([{"source": context, "output": a} for a in answers])]
    _within_budget(started)
    return scores


def _drift_job(model: str, texts: list[str], window: int) -> tuple[float | None, float | None]:
    from nlpforge.evals.drift import DriftWindow

    if model not in _WINDOWS:
        _WINDOWS[model] = DriftWindow(_DRIFT or {"vocabulary": []}, window)
        _WINDOWS[model].load()  # the encoder, once per worker, outside the budget
    started = time.perf_counter()
    means: tuple[float | None, float | None] = (None, None)
    for text in texts:
        means = _WINDOWS[model].observe(text)
    _within_budget(started)
    return means
