"""What the served model answers, as Prometheus series to alert on: finish reasons, empty answers
and refusals, generation latency and feedback ratings per model or adapter; online
factuality: a chat answer that comes with grounding (``metadata.context``, or messages named
``context``) is scored against it with the model-free ``hallucination_score``; and input drift:
each prompt against the training prompts' reference in the bundle (``drift.json``: rolling
out-of-vocabulary rate and MiniLM distance to the training centroid).

Scoring and drift run in one worker thread, off the request path, behind a bounded queue: when
work arrives faster than the thread does it, the surplus is counted as dropped rather than
slowing the server down."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nlpforge.console import log

# an answer that declines: the opening phrases instruction-tuned models use
REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can ?not|can'?t|won'?t|am unable|'m unable|am not able|'m not able)|"
                     r"as an ai\b|i apologi[sz]e)", re.IGNORECASE)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Monitor:
    def __init__(self, registry: CollectorRegistry, gate: float = 0.5, max_pending: int = 64, factuality: bool = True,
                 drift: dict[str, Any] | None = None, drift_window: int = 200):
        r = registry
        self.gate, self.max_pending, self.factuality = gate, max_pending, factuality
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
        self._windows: dict[str, Any] = {}
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
        self._pool: ThreadPoolExecutor | None = None
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
        """Score ``answers`` against ``context`` later, in the worker thread."""
        if self.factuality and not self._submit(self._score, model, context, answers):
            self.dropped.inc(len(answers))

    def prompted(self, model: str, texts: list[str]) -> None:
        """Measure the drift of prompts later, in the worker thread (a bundle with ``drift.json``)."""
        if self.drift is not None and texts and not self._submit(self._drift, model, texts):
            self.drift_dropped.inc(len(texts))

    def _submit(self, fn: Callable[..., None], *args: Any) -> bool:
        with self._lock:
            if self._pending >= self.max_pending:
                return False
            self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="nlpforge-monitor")
        self._pool.submit(self._guarded, fn, *args)
        return True

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - monitoring must never take the server down
            log(f"[red]monitoring failed: {type(exc).__name__}: {exc}[/red]")
        finally:
            with self._lock:
                self._pending -= 1

    def _score(self, model: str, context: str, answers: list[str]) -> None:
        from nlpforge.evals.factuality import score_records

        for row in score_records([{"source": context, "output": a} for a in answers]):
            score = row.get("hallucination_score")
            if score is not None:
                self.hallucination.labels(model).observe(score)
                if score > self.gate:
                    self.over_gate.labels(model).inc()

    def _drift(self, model: str, texts: list[str]) -> None:
        from nlpforge.evals.drift import DriftWindow

        window = self._windows.get(model)
        if window is None:
            window = self._windows[model] = DriftWindow(self.drift, self.drift_window)  # type: ignore[arg-type]
        for text in texts:
            oov, dist = window.observe(text)
            if oov is not None:
                self.oov.labels(model).set(oov)
            if dist is not None:
                self.distance.labels(model).set(dist)

    def idle(self) -> bool:
        return self._pending == 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
