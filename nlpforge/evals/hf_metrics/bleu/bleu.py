"""nlpforge corpus BLEU as an ``evaluate`` module: ``nlpforge.evals.metrics.bleu`` (sacrebleu, 13a)."""

import datasets
import evaluate

from nlpforge.evals.metrics import bleu

_DESCRIPTION = "Corpus BLEU (sacrebleu defaults, one reference per prediction). Higher is better, [0, 100]."
_KWARGS = "predictions: list of str; references: list of str. Returns {\"bleu\": float | None} (None for no rows)."


class Bleu(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        return {"bleu": bleu(predictions, references)}
