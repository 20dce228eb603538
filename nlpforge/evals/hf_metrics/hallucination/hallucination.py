"""nlpforge's fitted model-free hallucination score as an ``evaluate`` module:
``nlpforge.evals.factuality.score_records(...)[i]["hallucination_score"]``."""

import evaluate

from nlpforge.evals.factuality import score_records
from nlpforge.evals.hf_metrics import per_row, text_pair_info

_DESCRIPTION = ("Model-free hallucination score of each prediction against its source (a logistic model fitted on labelled real text "
                "over entity/number/date/version precision, negation, unsupported content and n-gram novelty). Higher = more likely "
                "hallucinated, [0, 1], calibrated on its fit data; None where nothing can be checked (empty prediction or source).")
_KWARGS = """predictions: list of str (generated text); sources: list of str (what it must be faithful to);
embedding: bool (default False) also use the MiniLM embedding distance (the fitted variant with that feature).
The predictions of one compute() are scored as a set: each is also checked against the other sources (background_parts).
Returns {"hallucination_score": mean over defined rows | None, "scores": per-row list, "defined": count}."""


class Hallucination(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS, "sources")

    def _compute(self, predictions, sources, embedding: bool = False):
        rows = score_records([{"source": s, "output": p} for p, s in zip(predictions, sources, strict=True)], embedding=embedding, background=True)
        scores = [r["hallucination_score"] for r in rows]
        return per_row("hallucination_score", scores)
