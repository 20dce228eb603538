"""Offline metrics against scikit-learn on random data and against hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from nlpforge.evals import metrics as M


def test_single_label_metrics_match_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(0)
    labels = ["billing", "shipping", "returns"]
    y = list(rng.choice(labels, 200))
    pred = [t if rng.random() < 0.6 else rng.choice(labels) for t in y]
    out = M.classification_metrics(y, pred, labels)
    assert out["accuracy"] == pytest.approx(np.mean(np.array(y) == np.array(pred)))
    assert out["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert out["f1_micro"] == pytest.approx(out["accuracy"])  # single-label: micro F1 = accuracy
    for lab in labels:  # per-class precision by counting
        tp = sum(p == lab and t == lab for t, p in zip(y, pred))
        assert out["per_class"][lab]["precision"] == pytest.approx(tp / sum(p == lab for p in pred))
        assert out["per_class"][lab]["support"] == y.count(lab)
    cm = np.array(out["confusion_matrix"])
    assert cm.sum() == 200 and np.trace(cm) == sum(t == p for t, p in zip(y, pred))
    assert cm[0, 1] == sum(t == "billing" and p == "shipping" for t, p in zip(y, pred))


def test_hand_checked_binary_case() -> None:
    y = ["neg", "neg", "pos", "pos"]
    pred = ["neg", "pos", "pos", "pos"]
    probs = [[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8]]
    out = M.classification_metrics(y, pred, ["neg", "pos"], probs)
    assert out["accuracy"] == 0.75
    assert out["per_class"]["pos"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}
    assert out["confusion_matrix"] == [[1, 1], [0, 2]]
    # pos scores 0.65, 0.8 vs neg 0.1, 0.6: every positive outranks every negative
    assert out["roc_auc"] == 1.0
    # one bin per 0.1: conf 0.9 (hit), 0.6 (miss), 0.65 (hit), 0.8 (hit)
    # bins (0.5,0.6]: {0.6 miss}, (0.6,0.7]: {0.65 hit}, (0.7,0.8]: {0.8 hit}, (0.8,0.9]: {0.9 hit}
    expected = (abs(0 - 0.6) + abs(1 - 0.65) + abs(1 - 0.8) + abs(1 - 0.9)) / 4
    assert out["ece"] == pytest.approx(expected)


def test_multilabel_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    labels = ["fraud", "urgent", "vip"]
    t = rng.random((100, 3)) < 0.4
    p = np.where(rng.random((100, 3)) < 0.8, t, ~t)
    as_lists = lambda m: [[lab for lab, on in zip(labels, row) if on] for row in m]  # noqa: E731
    probs = np.clip(p * 0.7 + rng.random((100, 3)) * 0.3, 0, 1)
    out = M.classification_metrics(as_lists(t), as_lists(p), labels, probs.tolist())
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(t, p))  # subset accuracy
    assert out["f1_micro"] == pytest.approx(skm.f1_score(t, p, average="micro"))
    assert out["f1_macro"] == pytest.approx(skm.f1_score(t, p, average="macro"))
    tn_fp_fn_tp = out["confusion_matrix"]["urgent"]
    assert tn_fp_fn_tp[1][1] == int((t[:, 1] & p[:, 1]).sum()) and tn_fp_fn_tp[0][1] == int((~t[:, 1] & p[:, 1]).sum())
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(t, probs, average="macro"))


def test_auc_undefined_with_one_class() -> None:
    assert M.roc_auc(["a", "a"], np.array([[0.9, 0.1], [0.8, 0.2]]), ["a", "b"]) is None


def test_ece_perfectly_calibrated_is_zero_and_overconfident_is_the_gap() -> None:
    assert M.expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    assert M.expected_calibration_error([1.0] * 4, [True, False, False, False]) == pytest.approx(0.75)
    assert M.expected_calibration_error([], []) is None


@pytest.mark.parametrize("target", [0.0, 0.1, 0.25, 0.5])
def test_threshold_for_fpr_is_the_best_recall_within_budget(target: float) -> None:
    rng = np.random.default_rng(2)
    y = rng.random(300) < 0.2
    s = np.where(y, rng.normal(1, 1, 300), rng.normal(0, 1, 300))
    got = M.threshold_for_fpr(y, s, target)
    # brute force over every candidate threshold
    best = None
    for thr in np.unique(s):
        pred = s >= thr
        fpr, rec = (pred & ~y).sum() / (~y).sum(), (pred & y).sum() / y.sum()
        if fpr <= target and (best is None or rec > best[1]):
            best = (thr, rec, fpr)
    if best is None or best[1] == 0:  # nothing useful meets the budget
        assert got is None
        return
    assert got is not None
    assert got["recall"] == pytest.approx(best[1])
    assert got["fpr"] <= target


def test_threshold_for_precision() -> None:
    y = [0, 0, 1, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]
    # >= 0.8: precision 1, recall 2/3; >= 0.4: 2/3 precision; >= 0.3: 3/4, recall 1
    assert M.threshold_for_precision(y, s, 0.75) == {"threshold": 0.3, "fpr": pytest.approx(1 / 3), "recall": 1.0, "precision": 0.75}
    assert M.threshold_for_precision(y, s, 0.9)["threshold"] == 0.8
    assert M.threshold_for_fpr([1, 1], [0.1, 0.2], 0.1) is None


def test_generation_metrics_hand_cases() -> None:
    assert M.token_f1("The cat sat on the mat.", "a cat sat") == pytest.approx(2 * (2 / 4) * (2 / 2) / (2 / 4 + 1))  # cat sat on mat vs cat sat
    assert M.token_f1("", "") == 1.0 and M.token_f1("x", "") == 0.0
    assert M.exact_match(["The Answer!", "no"], ["answer", "yes"]) == 0.5
    assert M.exact_match([], []) is None
    same = M.generation_metrics(["the kettle costs 49 dollars"], ["the kettle costs 49 dollars"])
    assert same["bleu"] == pytest.approx(100.0) and same["chrf"] == pytest.approx(100.0) and same["rougeL"] == 1.0
    # ROUGE-1: prediction "the kettle" vs reference "the kettle costs 49": P=1, R=1/2, F=2/3
    assert M.rouge(["the kettle"], ["the kettle costs 49"])["rouge1"] == pytest.approx(2 / 3)
    disjoint = M.generation_metrics(["alpha beta gamma delta"], ["one two three four"])
    assert disjoint["bleu"] == pytest.approx(0.0) and disjoint["rouge1"] == 0.0
    assert M.perplexity(2 * 10 * np.log(4) / 2, 10) == pytest.approx(4.0) and M.perplexity(1.0, 0) is None
