"""nlpforge exact match as an ``evaluate`` module: ``nlpforge.evals.metrics.exact_match``."""

import evaluate

from nlpforge.evals.hf_metrics import text_pair_info
from nlpforge.evals.metrics import exact_match

_DESCRIPTION = "Share of predictions equal to their reference after normalisation (squad: case, punctuation, articles ignored; whitespace; none). Higher is better, [0, 1]."
_KWARGS = """predictions: list of str; references: list of str; normalize: "squad" (default) | "whitespace" | "none".
Returns {"exact_match": float | None} (None for no rows)."""


class ExactMatch(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references, normalize: str = "squad"):
        return {"exact_match": exact_match(predictions, references, normalize)}
