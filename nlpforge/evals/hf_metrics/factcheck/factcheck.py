"""A checker trained with ``nlpforge.evals.checker_train.train_checker`` as an ``evaluate`` module:
``Checker.load(checker).score(sources, predictions)``. The checker path is a compute argument."""

import datasets
import evaluate

from nlpforge.evals.checker import Checker

_DESCRIPTION = ("Probability that each prediction is not supported by its source, from a MiniLM cross-encoder fine-tuned on "
                "(source, claim) pairs of the user's own corpus (MiniCheck style: sentences against source windows). Higher = more "
                "likely hallucinated, [0, 1]; None for an empty prediction or source.")
_KWARGS = """predictions: list of str; sources: list of str; checker: path written by train_checker (or its bundle).
Returns {"unsupported": mean over defined rows | None, "scores": per-row list, "defined": count}."""

_LOADED: dict = {}


class Factcheck(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": datasets.Value("string"), "sources": datasets.Value("string")}))

    def _compute(self, predictions, sources, checker=None):
        if not checker:
            raise ValueError("factcheck needs checker=PATH (the folder train_checker wrote)")
        key = str(checker)
        if key not in _LOADED:
            _LOADED[key] = Checker.load(key)
        scores = _LOADED[key].score(list(sources), list(predictions))
        defined = [s for s in scores if s is not None]
        return {"unsupported": sum(defined) / len(defined) if defined else None, "scores": scores, "defined": len(defined)}
