"""Offline task metrics: classification, calibration, generation overlap, perplexity, and
threshold selection.

The hub is unreachable here, so nothing calls ``evaluate.load(name)``: classification
metrics come from scikit-learn, ROUGE from ``rouge_score``, BLEU/chrF from ``sacrebleu``.
Hand-written only where no library offers the measure (expected calibration error, SQuAD-style
token F1, the threshold rules), each said so where it is defined.

Every function documents its direction (higher or lower is better), range, and what it
returns on empty input.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import MultiLabelBinarizer

Label = str | int


# --- classification -----------------------------------------------------------------------


def _is_multilabel(y: Sequence[Any]) -> bool:
    return len(y) > 0 and isinstance(y[0], list | tuple | set)


def classification_metrics(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    labels: Sequence[Label],
    probs: Sequence[Sequence[float]] | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro, micro, per class), confusion matrix, and with
    ``probs`` (one column per label, in ``labels`` order) ROC-AUC and expected calibration error.

    Single-label: ``y_true``/``y_pred`` hold one label each. Multi-label: each holds a list of
    labels; accuracy is then subset accuracy (every label right) and the confusion matrix is one
    2x2 ``[[tn, fp], [fn, tp]]`` per label. All scores: higher is better, in [0, 1], except
    ``ece`` (lower is better, [0, 1]). Empty input: ValueError (nothing to score is a caller bug).
    """
    if len(y_true) == 0:
        raise ValueError("classification_metrics: no rows to score")
    if len(y_true) != len(y_pred):
        raise ValueError(f"classification_metrics: {len(y_true)} labels but {len(y_pred)} predictions")
    labels = list(labels)
    multi = _is_multilabel(y_true)
    if multi:
        mlb = MultiLabelBinarizer(classes=labels)
        t, p = mlb.fit_transform(y_true), mlb.transform(y_pred)
        cm: Any = {str(lab): m.tolist() for lab, m in zip(labels, skm.multilabel_confusion_matrix(t, p))}
    else:
        t, p = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
        cm = skm.confusion_matrix(t, p, labels=labels).tolist()
    out: dict[str, Any] = {"accuracy": float(skm.accuracy_score(t, p))}
    for avg in ("macro", "micro"):
        pr, rc, f1, _ = skm.precision_recall_fscore_support(t, p, labels=None if multi else labels, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(pr), f"recall_{avg}": float(rc), f"f1_{avg}": float(f1)})
    pr, rc, f1, sup = skm.precision_recall_fscore_support(t, p, labels=None if multi else labels, average=None, zero_division=0)
    out["per_class"] = {str(lab): {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(d)} for lab, a, b, c, d in zip(labels, pr, rc, f1, sup)}
    out["confusion_matrix"] = cm
    if probs is not None:
        P = np.asarray(probs, dtype=float)
        if P.shape != (len(y_true), len(labels)):
            raise ValueError(f"classification_metrics: probs has shape {P.shape}, expected ({len(y_true)}, {len(labels)})")
        out["roc_auc"] = roc_auc(y_true, P, labels)
        if multi:
            out["ece"] = expected_calibration_error(P.ravel(), np.asarray(t).ravel().astype(bool), n_bins)
        else:
            idx = {lab: i for i, lab in enumerate(labels)}
            correct = P.argmax(1) == np.array([idx[y] for y in y_true])
            out["ece"] = expected_calibration_error(P.max(1), correct, n_bins)
    return out


def classification_summary(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Label], probs: Sequence[Sequence[float]] | None = None) -> dict[str, Any]:
    """:func:`classification_metrics` plus the short names the train summary, eval and CLI print."""
    m = classification_metrics(y_true, y_pred, labels, probs)
    return {**m, "macro_f1": m["f1_macro"], "micro_f1": m["f1_micro"], "macro_precision": m["precision_macro"], "macro_recall": m["recall_macro"], "samples": len(y_true)}


def roc_auc(y_true: Sequence[Any], probs: np.ndarray, labels: Sequence[Label]) -> float | None:
    """ROC-AUC: binary on the positive (second) label's column; multi-class one-vs-rest macro;
    multi-label macro over labels. Higher is better, [0, 1], 0.5 = chance. None when only one
    class is present (AUC is undefined there, not 0.5)."""
    labels = list(labels)
    try:
        if _is_multilabel(y_true):
            t = MultiLabelBinarizer(classes=labels).fit_transform(y_true)
            keep = [j for j in range(len(labels)) if 0 < t[:, j].sum() < len(t)]
            return float(skm.roc_auc_score(t[:, keep], probs[:, keep], average="macro")) if keep else None
        if len(set(y_true)) < 2:
            return None
        if len(labels) == 2:
            return float(skm.roc_auc_score([y == labels[1] for y in y_true], probs[:, 1]))
        return float(skm.roc_auc_score(list(y_true), probs, multi_class="ovr", average="macro", labels=labels))
    except ValueError:
        return None


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float | None:
    """ECE (Guo et al. 2017): the bin-weighted mean |accuracy - mean confidence| over
    ``n_bins`` equal-width confidence bins. Lower is better, [0, 1]; None for no rows.

    Hand-written: scikit-learn has ``calibration_curve`` (per-bin points) but no ECE."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return None
    # bin i holds (i/n, (i+1)/n]; confidence 0 goes to the first bin
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(ece)


def calibration_points(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> dict[str, list[float]]:
    """Reliability-diagram points (mean confidence, accuracy) per non-empty bin, via scikit-learn."""
    from sklearn.calibration import calibration_curve

    acc, conf = calibration_curve(np.asarray(correct, dtype=int), np.asarray(confidence, dtype=float), n_bins=n_bins, strategy="uniform")
    return {"confidence": conf.tolist(), "accuracy": acc.tolist()}


# --- thresholds (fraud-style operating points) ----------------------------------------------


def threshold_for_fpr(y_true: Sequence[bool | int], scores: Sequence[float], max_fpr: float) -> dict[str, float] | None:
    """The lowest score threshold (predict positive when ``score >= threshold``) whose false-positive
    rate is at most ``max_fpr``: the highest recall that keeps false alarms within budget.
    Returns ``{threshold, fpr, recall, precision}``; None when no threshold meets the target or a
    class is missing. Built on scikit-learn's ``roc_curve``."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if y.all() or not y.any():
        return None
    fpr, tpr, thr = skm.roc_curve(y, s)
    ok = np.where((fpr <= max_fpr) & np.isfinite(thr))[0]
    if ok.size == 0:
        return None
    i = ok[np.argmax(tpr[ok])]  # roc_curve's thresholds fall as tpr rises: max tpr = lowest threshold
    return _operating_point(y, s, float(thr[i]))


def threshold_for_precision(y_true: Sequence[bool | int], scores: Sequence[float], min_precision: float) -> dict[str, float] | None:
    """The threshold with the highest recall among those whose precision is at least
    ``min_precision`` (ties: the higher threshold). Returns ``{threshold, fpr, recall, precision}``;
    None when no threshold meets the target. Built on ``precision_recall_curve``."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if not y.any():
        return None
    prec, rec, thr = skm.precision_recall_curve(y, s)
    prec, rec = prec[:-1], rec[:-1]  # the last point has no threshold
    ok = np.where(prec >= min_precision)[0]
    if ok.size == 0:
        return None
    best = rec[ok].max()
    i = max(ok[rec[ok] == best], key=lambda j: thr[j])
    return _operating_point(y, s, float(thr[i]))


def _operating_point(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    pred = s >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    return {
        "threshold": threshold,
        "fpr": fp / max(int((~y).sum()), 1),
        "recall": tp / max(int(y.sum()), 1),
        "precision": tp / max(tp + fp, 1),
    }


# --- generation -----------------------------------------------------------------------------


def normalize_squad(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def normalize_whitespace(text: str) -> str:
    """Runs of whitespace as one space, trimmed: the strict answer comparison of the chat eval."""
    return re.sub(r"\s+", " ", text).strip()


NORMALIZERS = {"squad": normalize_squad, "whitespace": normalize_whitespace, "none": lambda s: s}


def exact_match(predictions: Sequence[str], references: Sequence[str], normalize: str = "squad") -> float | None:
    """Share of predictions equal to their reference after ``normalize`` (``squad``: case,
    punctuation and articles ignored; ``whitespace``: only spacing ignored; ``none``).
    Higher is better, [0, 1]; None for no rows."""
    if not predictions:
        return None
    norm = NORMALIZERS[normalize]
    return sum(norm(p) == norm(r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of one answer (hand-written: it is SQuAD's ten-line definition, not in a
    library we ship). Higher is better, [0, 1]; both empty = 1, one empty = 0."""
    p, r = normalize_squad(prediction).split(), normalize_squad(reference).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def mean_token_f1(predictions: Sequence[str], references: Sequence[str]) -> float | None:
    if not predictions:
        return None
    return sum(token_f1(p, r) for p, r in zip(predictions, references, strict=True)) / len(predictions)


def rouge(predictions: Sequence[str], references: Sequence[str], types: Sequence[str] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float] | None:
    """Mean ROUGE F-measure per type (``rouge_score``, Porter stemming). Higher is better,
    [0, 1]; None for no rows."""
    from rouge_score import rouge_scorer

    if not predictions:
        return None
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=True)
    sums = dict.fromkeys(types, 0.0)
    for p, r in zip(predictions, references, strict=True):
        for k, v in scorer.score(r, p).items():
            sums[k] += v.fmeasure
    return {k: v / len(predictions) for k, v in sums.items()}


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float | None:
    """Corpus BLEU (sacrebleu defaults, 13a tokenisation). Higher is better, [0, 100]; None for no rows."""
    import sacrebleu

    if not predictions:
        return None
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def chrf(predictions: Sequence[str], references: Sequence[str]) -> float | None:
    """Corpus chrF (sacrebleu). Higher is better, [0, 100]; None for no rows."""
    import sacrebleu

    if not predictions:
        return None
    return float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score)


def perplexity(nll_sum: float, tokens: int) -> float | None:
    """exp(mean negative log-likelihood per token). Lower is better, [1, inf); None for no tokens.
    The exponent is capped at 50 so an untrained model reports a huge number, not inf."""
    if tokens <= 0:
        return None
    return math.exp(min(nll_sum / tokens, 50.0))


def generation_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Exact match (strict: only whitespace ignored; and SQuAD-normalised), token F1,
    ROUGE-1/2/L, BLEU and chrF in one dict (None values when empty)."""
    r = rouge(predictions, references) or {}
    return {
        "exact_match": exact_match(predictions, references, "whitespace"),
        "exact_match_squad": exact_match(predictions, references, "squad"),
        "token_f1": mean_token_f1(predictions, references),
        **{k: r.get(k) for k in ("rouge1", "rouge2", "rougeL")},
        "bleu": bleu(predictions, references),
        "chrf": chrf(predictions, references),
    }
