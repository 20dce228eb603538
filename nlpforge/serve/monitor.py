"""What the served model answers, as Prometheus series to alert on: finish reasons, empty answers
and refusals, generation latency and feedback ratings per model or adapter, and online
factuality: a chat answer that comes with grounding (``metadata.context``, or messages named
``context``) is scored against it with the model-free ``hallucination_score`` in a worker
thread, off the request path, into a histogram and a count of answers above the gate.

The scoring queue is bounded: when answers arrive faster than one thread scores them, the
surplus is counted as dropped rather than slowing the server down."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CollectorRegistry, Counter, Histogram

from nlpforge.console import log

# an answer that declines: the opening phrases instruction-tuned models use
REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can ?not|can'?t|won'?t|am unable|'m unable|am not able|'m not able)|"
                     r"as an ai\b|i apologi[sz]e)", re.IGNORECASE)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Monitor:
    def __init__(self, registry: CollectorRegistry, gate: float = 0.5, max_pending: int = 64, factuality: bool = True):
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
        """Score ``answers`` against ``context`` later, in the scoring thread."""
        if not self.factuality:
            return
        with self._lock:
            if self._pending >= self.max_pending:
                self.dropped.inc(len(answers))
                return
            self._pending += 1
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="nlpforge-factuality")
        self._pool.submit(self._score, model, context, answers)

    def _score(self, model: str, context: str, answers: list[str]) -> None:
        try:
            from nlpforge.evals.factuality import score_records

            for row in score_records([{"source": context, "output": a} for a in answers]):
                score = row.get("hallucination_score")
                if score is not None:
                    self.hallucination.labels(model).observe(score)
                    if score > self.gate:
                        self.over_gate.labels(model).inc()
        except Exception as exc:  # noqa: BLE001 - monitoring must never take the server down
            log(f"[red]factuality monitoring failed: {type(exc).__name__}: {exc}[/red]")
        finally:
            with self._lock:
                self._pending -= 1

    def idle(self) -> bool:
        return self._pending == 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
