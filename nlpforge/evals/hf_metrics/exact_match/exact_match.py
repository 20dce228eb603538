"""nlpforge exact match as an ``evaluate`` module: ``nlpforge.evals.metrics.exact_match``."""

import datasets
import evaluate

from nlpforge.evals.metrics import exact_match

_DESCRIPTION = "Share of predictions equal to their reference after normalisation (squad: case, punctuation, articles ignored; whitespace; none). Higher is better, [0, 1]."
_KWARGS = """predictions: list of str; references: list of str; normalize: "squad" (default) | "whitespace" | "none".
Returns {"exact_match": float | None} (None for no rows)."""


class ExactMatch(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}))

    def _compute(self, predictions, references, normalize: str = "squad"):
        return {"exact_match": exact_match(predictions, references, normalize)}
