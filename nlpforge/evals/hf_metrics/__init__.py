"""nlpforge's metrics as local Hugging Face ``evaluate`` modules (``evaluate.load(name)`` needs the
hub; ``evaluate.load(metric_path(name))`` works offline). Each module calls nlpforge's own function,
so its value equals the one in nlpforge's reports:

- ``exact_match``, ``token_f1``, ``rouge``, ``bleu``, ``chrf``: ``nlpforge.evals.metrics``;
- ``hallucination``: the fitted model-free ``hallucination_score`` (``nlpforge.evals.factuality``);
- ``factcheck``: a checker trained with ``nlpforge.evals.checker_train.train_checker`` (``checker=PATH``).

    import evaluate
    from nlpforge.evals.hf_metrics import metric_path
    evaluate.load(metric_path("token_f1")).compute(predictions=["a b"], references=["a c"])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import evaluate

HERE = Path(__file__).resolve().parent
NAMES = ("exact_match", "token_f1", "rouge", "bleu", "chrf", "hallucination", "factcheck")


def metric_path(name: str) -> str:
    """The folder of the local ``evaluate`` module ``name`` (one of ``NAMES``)."""
    if name not in NAMES:
        raise KeyError(f"no nlpforge evaluate module {name!r}; valid: {', '.join(NAMES)}")
    return str(HERE / name)


def text_pair_info(description: str, inputs_description: str, second: str = "references") -> evaluate.MetricInfo:
    """The ``MetricInfo`` every module here shares: string ``predictions`` against string
    ``references`` (or ``sources``). One place, so the modules differ only in what they compute."""
    import datasets
    import evaluate

    return evaluate.MetricInfo(description=description, citation="", inputs_description=inputs_description,
                               features=datasets.Features({"predictions": datasets.Value("string"), second: datasets.Value("string")}))


def per_row(key: str, scores: list[float | None]) -> dict:
    """``{key: mean over defined rows | None, "scores": the per-row list, "defined": count}``."""
    defined = [x for x in scores if x is not None]
    return {key: sum(defined) / len(defined) if defined else None, "scores": scores, "defined": len(defined)}

