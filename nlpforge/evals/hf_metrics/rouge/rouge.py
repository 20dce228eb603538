"""nlpforge ROUGE as an ``evaluate`` module: ``nlpforge.evals.metrics.rouge`` (rouge_score, Porter stemming, mean F-measure)."""

import evaluate

from nlpforge.evals.hf_metrics import text_pair_info
from nlpforge.evals.metrics import rouge

_DESCRIPTION = "Mean ROUGE F-measure per type (rouge_score with Porter stemming). Higher is better, [0, 1]."
_KWARGS = """predictions: list of str; references: list of str; rouge_types: list of str (default rouge1, rouge2, rougeL).
Returns {type: float} (empty dict for no rows)."""


class Rouge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references, rouge_types=("rouge1", "rouge2", "rougeL")):
        return rouge(predictions, references, tuple(rouge_types)) or {}
