"""nlpforge corpus chrF as an ``evaluate`` module: ``nlpforge.evals.metrics.chrf`` (sacrebleu)."""

import evaluate

from nlpforge.evals.hf_metrics import text_pair_info
from nlpforge.evals.metrics import chrf

_DESCRIPTION = "Corpus chrF (sacrebleu, one reference per prediction). Higher is better, [0, 100]."
_KWARGS = "predictions: list of str; references: list of str. Returns {\"chrf\": float | None} (None for no rows)."


class Chrf(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references):
        return {"chrf": chrf(predictions, references)}
