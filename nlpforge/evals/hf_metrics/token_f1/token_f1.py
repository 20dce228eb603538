"""nlpforge SQuAD token F1 as an ``evaluate`` module: ``nlpforge.evals.metrics.mean_token_f1``."""

import evaluate

from nlpforge.evals.hf_metrics import text_pair_info
from nlpforge.evals.metrics import mean_token_f1

_DESCRIPTION = "Mean SQuAD token F1 of predictions against references. Higher is better, [0, 1]."
_KWARGS = "predictions: list of str; references: list of str. Returns {\"token_f1\": float | None} (None for no rows)."


class TokenF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references):
        return {"token_f1": mean_token_f1(predictions, references)}
