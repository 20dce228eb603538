"""Fairness: group gaps on hand-checkable predictions, term/name swaps, and the counterfactual
flip rate of a deliberately biased scorer and of the real MiniLM classifier bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlpforge.evals import fairness as FA


def test_group_gaps_hand_checked() -> None:
    y = ["approve", "reject", "approve", "reject", "approve", "reject", "approve", "reject"]
    p = ["approve", "approve", "approve", "reject", "reject", "reject", "approve", "reject"]
    g = ["north"] * 4 + ["south"] * 4
    out = FA.group_metrics(y, p, g, positive="approve")
    north, south = out["per_group"]["north"], out["per_group"]["south"]
    # north: predicted positive 3/4, tpr 2/2, fpr 1/2; south: 1/4, tpr 1/2, fpr 0/2
    assert (north["positive_rate"], north["tpr"], north["fpr"], north["accuracy"]) == (0.75, 1.0, 0.5, 0.75)
    assert (south["positive_rate"], south["tpr"], south["fpr"], south["accuracy"]) == (0.25, 0.5, 0.0, 0.75)
    assert out["demographic_parity_difference"] == 0.5
    assert out["equalized_odds_difference"] == 0.5  # max(tpr gap 0.5, fpr gap 0.5)
    rows = [{"label": a, "pred": b, "region": c} for a, b, c in zip(y, p, g)]
    assert FA.fairness_from_predictions(rows, ["region"], "approve")["groups"]["region"]["demographic_parity_difference"] == 0.5
    one = FA.group_metrics(["a"], ["a"], ["x"], positive="a")
    assert one["demographic_parity_difference"] is None and one["equalized_odds_difference"] is None


def test_term_and_name_swaps() -> None:
    assert FA.swap_terms("He paid his loan; Mr Smith is a father.") == "She paid her loan; Ms Smith is a mother."
    assert FA.swap_terms("The invoice is overdue.") is None
    swapped = FA.swap_names(["Emily Walsh asked for a refund.", "No names here."])
    assert swapped[1] is None and swapped[0].endswith(" Walsh asked for a refund.") and not swapped[0].startswith("Emily")


def test_flip_rate_of_a_biased_and_a_fair_scorer() -> None:
    texts = ["He asked for a credit line increase.", "She asked for a credit line increase.", "The payment failed twice."]

    def biased(batch: list[str]) -> list[list[float]]:  # rejects whenever "she" appears
        return [[0.2, 0.8] if " she " in f" {t.lower()} " else [0.7, 0.3] for t in batch]

    def fair(batch: list[str]) -> list[list[float]]:
        return [[0.7, 0.3] for _ in batch]

    bad = FA.counterfactual_flips(texts, biased, ["approve", "reject"], names=False)
    assert bad["variants"] == 2 and bad["flip_rate"] == 1.0 and bad["mean_prob_shift"] == pytest.approx(0.5)
    assert bad["examples"][0]["from"] == "approve" and bad["examples"][0]["to"] == "reject"
    assert FA.counterfactual_flips(texts, fair, ["approve", "reject"], names=False)["flip_rate"] == 0.0
    assert FA.counterfactual_flips(["The payment failed."], fair, ["a", "b"], names=False)["flip_rate"] is None


def test_counterfactuals_on_the_minilm_classifier_bundle(classifier_bundle: Path) -> None:
    predict, labels = FA.bundle_predict_proba(classifier_bundle)
    texts = ["Emily Walsh says he was charged twice for his order.", "My husband cannot log in to his account.", "Refund the broken kettle please."]
    out = FA.counterfactual_flips(texts, predict, labels)
    assert out["by_kind"]["terms"]["variants"] == 2 and out["by_kind"]["names"]["variants"] == 1
    assert 0.0 <= out["flip_rate"] <= 1.0 and out["mean_prob_shift"] > 0  # the real model's probabilities move
    probs = predict(texts)
    assert len(probs) == 3 and all(abs(sum(p) - 1) < 1e-5 for p in probs)


def test_fairness_block_from_prediction_rows() -> None:
    from nlpforge.recipe import FairnessConfig

    rows = [{"text": "He wants a refund.", "label": "yes", "pred": "yes", "region": "n"}, {"text": "She wants a refund.", "label": "yes", "pred": "no", "region": "s"}]
    flip = lambda batch: [[0.9, 0.1] if "She" in t else [0.1, 0.9] for t in batch]  # noqa: E731
    out = FA.fairness_block(rows, ["no", "yes"], FairnessConfig(group_fields=["region"]), flip)
    assert out["groups"]["region"]["demographic_parity_difference"] == 1.0
    assert out["counterfactual"]["by_kind"]["terms"]["flip_rate"] == 1.0
