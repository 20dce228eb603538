"""A checker trained with ``nlpforge.evals.checker_train.train_checker`` as an ``evaluate`` module:
``Checker.load(checker).score(sources, predictions)``. The checker path is a compute argument."""

import evaluate

from nlpforge.evals.checker import Checker
from nlpforge.evals.hf_metrics import per_row, text_pair_info

_DESCRIPTION = ("Probability that each prediction is not supported by its source, from a MiniLM cross-encoder fine-tuned on "
                "(source, claim) pairs of the user's own corpus (MiniCheck style: sentences against source windows). Higher = more "
                "likely hallucinated, [0, 1]; None for an empty prediction or source.")
_KWARGS = """predictions: list of str; sources: list of str; checker: path written by train_checker (or its bundle).
Returns {"unsupported": mean over defined rows | None, "scores": per-row list, "defined": count}."""

_LOADED: dict = {}


class Factcheck(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return text_pair_info(_DESCRIPTION, _KWARGS, "sources")

    def _compute(self, predictions, sources, checker=None):
        if not checker:
            raise ValueError("factcheck needs checker=PATH (the folder train_checker wrote)")
        key = str(checker)
        if key not in _LOADED:
            _LOADED[key] = Checker.load(key)
        scores = _LOADED[key].score(list(sources), list(predictions))
        return per_row("unsupported", scores)
