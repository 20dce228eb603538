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

HERE = Path(__file__).resolve().parent
NAMES = ("exact_match", "token_f1", "rouge", "bleu", "chrf", "hallucination", "factcheck")


def metric_path(name: str) -> str:
    """The folder of the local ``evaluate`` module ``name`` (one of ``NAMES``)."""
    if name not in NAMES:
        raise KeyError(f"no nlpforge evaluate module {name!r}; valid: {', '.join(NAMES)}")
    return str(HERE / name)
