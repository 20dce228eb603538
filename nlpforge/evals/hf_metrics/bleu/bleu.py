"""nlpforge corpus BLEU as an ``evaluate`` module: ``nlpforge.evals.metrics.bleu`` (sacrebleu, 13a)."""

import evaluate

from nlpforge.evals.hf_metrics import text_pair_info
from nlpforge.evals.metrics import bleu

_DESCRIPTION = "Corpus BLEU (sacrebleu defaults, one reference per prediction). Higher is better, [0, 100]."
_KWARGS = "predictions: list of str; references: list of str. Returns {\"bleu\": float | None} (None for no rows)."


class Bleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS)

    def _compute(self, predictions, references):
        return {"bleu": bleu(predictions, references)}
