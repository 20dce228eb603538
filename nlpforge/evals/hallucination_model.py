"""The fitted combination behind ``hallucination_score``: a small, readable logistic model.

Why fitted: the old hand-set noisy-OR of parts did no better than plain word overlap on real text
(the independent sets of data/factsets). The weights here are fitted by ``fit`` on labelled real text (the dev split of
``data/factsets``; ``scripts/fit_hallucination_model.py``) and shipped in
``hallucination_model.json`` with the feature list, what they were fitted on and the dev AUROC.

Shape (transparent on purpose: every weight is a log-odds per unit of a named feature):

- **Regimes.** An output copied from the source (``copied``: every word bigram is in the source)
  gets the copied rate of the fit data. Otherwise an output with a long copied run
  (``longest_copy >= 0.5``: an edited copy, where any novelty is suspicious) and a freely
  written one (a summary, where novelty is normal and only names, numbers, negation and topic
  drift count) each have their own logistic regression: one shared model must trade the two off
  and does worse on both.
- **Features** (``feature_values``): the parts of ``check_against_source`` turned "higher = worse"
  (fact errors pooled over entity/name/number/date/version, with an indicator when the output has
  no fact; unanchored facts, negation mismatch, unsupported content, each with an indicator when
  undefined), the lexical parts (n-gram novelty, the longest copied run, novel names, numbers and
  negation cues) and, in the ``embedding`` variant, the MiniLM ``embedding_distance``. The main
  continuous features are split into ramps at their fit-data quartiles (``x@0 + x@1 + ... = x``),
  so the model can bend there: an additive, GAM-like logistic model. Weights of error evidence
  (fact errors, unanchored facts, negation, novel names/numbers/negation cues, embedding distance)
  are bounded at >= 0, so more of it never lowers the score.
- **Calibration.** The output is the logistic probability, which is calibrated on the fit mix
  (half hallucinated): 0.7 means about 70% of such outputs were hallucinated there; the
  reliability table in the JSON says how well that held out of fold. A variant fitted with some
  error kinds weighted up (``kind_weights_background`` in the JSON) carries a Platt scaling
  (``platt``) fitted on its out-of-fold scores, which brings it back to the unweighted mix.
- **Background variants** (``default+background``, ``embedding+background``): the same with the
  set's background parts (``factuality.background_parts``: does another source of the set fit the
  output better?), used when a whole set is scored at once.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODEL_FILE = Path(__file__).with_name("hallucination_model.json")
FACT_KINDS = ("entity", "name", "number", "date", "version")
RATE_PARTS = ("unanchored_facts", "negation_mismatch", "unsupported_content")  # None when there is nothing to check: indicator
LEXICAL = ("unigram_novelty", "bigram_novelty", "longest_copy")
COUNTS = {"novel_names": 3.0, "novel_numbers": 3.0, "novel_negation": 2.0, "novel_antonym": 2.0}  # counts, capped
BACKGROUND = ("idf_unsupported", "better_source_margin")  # factuality.background_parts: only in the "+background" variants
HINGED = ("unigram_novelty", "bigram_novelty", "longest_copy", "unsupported_content", "fact_error", "embedding_distance", *BACKGROUND)
# evidence of an error: the score may never fall as these grow (their weights are bounded at 0). The
# n-gram novelties and unsupported content are left free: they measure one thing together with the
# longest copied run, and bounding them cost 0.06 dev AUROC on the abstractive set.
MONOTONE = ("fact_error", "unanchored_facts", "negation_mismatch", "novel_names", "novel_numbers", "novel_negation", "novel_antonym", "embedding_distance", "better_source_margin")
NEAR_COPY = 0.5


def base_features(parts: dict[str, Any], embedding: bool, background: bool = False) -> dict[str, float]:
    """The named features before hinges; undefined parts become 0 plus an indicator."""
    f: dict[str, float] = {}
    errs = [1.0 - float(parts[f"{k}_precision"]) for k in FACT_KINDS if parts.get(f"{k}_precision") is not None]
    f["fact_error"] = max(errs) if errs else 0.0
    f["facts_undefined"] = float(not errs)
    for name in RATE_PARTS:
        v = parts.get(name)
        f[name] = 0.0 if v is None else float(v)
        f[f"{name}_undefined"] = float(v is None)
    for name in LEXICAL:
        v = parts.get(name)
        f[name] = 0.0 if v is None else float(v)
    f["bigram_novelty_undefined"] = float(parts.get("bigram_novelty") is None)  # one-word outputs
    for name, cap in COUNTS.items():
        f[name] = min(float(parts.get(name) or 0.0), cap)
    if embedding:
        f["embedding_distance"] = float(parts.get("embedding_distance") or 0.0)
    if background:  # the margin (about [-1.4, 1.4]) moved into [0, 1]: the ramps start at 0
        f["idf_unsupported"] = float(parts.get("idf_unsupported") or 0.0)
        f["better_source_margin"] = min(max((float(parts.get("better_source_margin") or 0.0) + 2.0) / 4.0, 0.0), 1.0)
    return f


def feature_values(parts: dict[str, Any], knots: dict[str, list[float]], embedding: bool, background: bool = False) -> dict[str, float]:
    """Base features; a knotted one is replaced by its ramps ``name@k`` (the part of x inside the
    k-th segment between knots), which sum to x: with non-negative weights the score can bend at
    each knot and still never fall as x grows."""
    f = base_features(parts, embedding, background)
    for name, ks in knots.items():
        if name in f:
            x = f.pop(name)
            edges = [0.0, *ks]
            for i, lo in enumerate(edges):
                hi = edges[i + 1] if i + 1 < len(edges) else math.inf
                f[f"{name}@{i}"] = min(max(x - lo, 0.0), hi - lo)
    return f


def is_monotone(feature: str) -> bool:
    return feature.split("@")[0] in MONOTONE


def regime(parts: dict[str, Any]) -> str:
    if parts.get("copied"):
        return "copied"
    return "near_copy" if (parts.get("longest_copy") or 0.0) >= NEAR_COPY else "free"


def has_evidence(parts: dict[str, Any]) -> bool:
    """The fitted model needs the source checks (``check_against_source``) of the record."""
    return parts.get("unigram_novelty") is not None


def predict(parts: dict[str, Any], variant: dict[str, Any]) -> float:
    reg = variant["regimes"][regime(parts)]
    if "rate" in reg:
        p = float(reg["rate"])
    else:
        f = feature_values(parts, variant["knots"], variant["embedding"], variant.get("background", False))
        z = reg["intercept"]
        for name, w, mean, scale in zip(variant["features"], reg["coef"], reg["mean"], reg["scale"]):
            z += w * (f.get(name, mean) - mean) / scale
        p = _sigmoid(z)
    # fitted with weighted kinds: recalibrated to the unweighted mix
    return apply_platt(p, variant["platt"]) if "platt" in variant else p


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def apply_platt(p: float, ab: Sequence[float]) -> float:
    q = min(max(p, 1e-6), 1 - 1e-6)
    return _sigmoid(ab[0] * math.log(q / (1 - q)) + ab[1])


def platt(probs: Sequence[float], labels: Sequence[int]) -> list[float]:
    """Platt scaling ``[a, b]`` of out-of-fold probabilities: P = sigmoid(a * logit(p) + b),
    so a variant fitted on a weighted mix of kinds is calibrated on the real one."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    p = np.clip(np.asarray(probs, dtype=float), 1e-6, 1 - 1e-6)
    lr = LogisticRegression(C=1e6).fit(np.log(p / (1 - p))[:, None], np.asarray(labels))
    return [round(float(lr.coef_[0][0]), 6), round(float(lr.intercept_[0]), 6)]


@functools.cache
def load_model(path: str | None = None) -> dict[str, Any]:
    return json.loads(Path(path or MODEL_FILE).read_text())


def variant_name(embedding: bool, background: bool) -> str:
    return ("embedding" if embedding else "default") + ("+background" if background else "")


def variant_for(parts: dict[str, Any], model: dict[str, Any] | None = None) -> dict[str, Any]:
    """The variant for the parts held: ``embedding`` when they hold an embedding distance,
    ``+background`` when they hold the set's background parts, else ``default``."""
    variants = (model or load_model())["variants"]
    name = variant_name(parts.get("embedding_distance") is not None, parts.get("better_source_margin") is not None)
    return variants.get(name) or variants[variant_name(parts.get("embedding_distance") is not None, False)]


# --- fitting --------------------------------------------------------------------------------------


def _quartiles(values: Sequence[float]) -> list[float]:
    import numpy as np

    qs = sorted({round(float(x), 6) for x in np.percentile(np.asarray(values, dtype=float), [25, 50, 75])})
    return qs


def _logistic(X: Any, y: Any, C: float, nonneg: Sequence[bool], sample_weight: Any = None) -> tuple[float, Any]:
    """L2 logistic regression (sklearn's objective: C * sum of (sample-weighted) log losses +
    |w|^2 / 2) with the weights of ``nonneg`` columns bounded at 0 (L-BFGS-B)."""
    import numpy as np
    from scipy.optimize import minimize

    n, d = X.shape
    ys = 2.0 * np.asarray(y, dtype=float) - 1.0
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[:d], theta[d]
        m = ys * (X @ w + b)
        value = C * (sw * np.logaddexp(0.0, -m)).sum() + 0.5 * w @ w
        g = -C * sw * ys * (1.0 / (1.0 + np.exp(m)))
        return float(value), np.concatenate([X.T @ g + w, [g.sum()]])

    bounds = [(0.0, None) if nn else (None, None) for nn in nonneg] + [(None, None)]
    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000})
    return float(res.x[d]), res.x[:d]


def fit_variant(
    parts: Sequence[dict[str, Any]], labels: Sequence[int], embedding: bool, C: float = 1.0, background: bool = False, sample_weight: Sequence[float] | None = None
) -> dict[str, Any]:
    """One variant: knots from the data, then one standardised L2 logistic regression per regime
    (``C``: inverse regularisation strength, as in sklearn), error evidence bounded to weights >= 0."""
    import numpy as np

    base = [base_features(p, embedding, background) for p in parts]
    knots = {name: _quartiles([b[name] for b in base]) for name in HINGED if name in base[0]}
    feats = [feature_values(p, knots, embedding, background) for p in parts]
    names = list(feats[0])
    X = np.array([[f[n] for n in names] for f in feats])
    y = np.asarray(labels)
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    regs = np.array([regime(p) for p in parts])
    out: dict[str, Any] = {"embedding": embedding, "background": background, "features": names, "knots": knots, "regimes": {}, "C": C}
    for r in ("copied", "near_copy", "free"):
        idx = regs == r
        n = int(idx.sum())
        if r == "copied" or n < 20 or len(set(y[idx])) < 2:
            pos = int(y[idx].sum())
            out["regimes"][r] = {"rate": round((pos + 0.5) / (n + 1.0), 6), "n": n, "positives": pos}  # smoothed rate
            continue
        mean = X[idx].mean(0)
        scale = X[idx].std(0)
        scale[scale < 1e-4] = 1.0  # a (nearly) constant column: no weight to speak of, and no division by ~0
        intercept, coef = _logistic((X[idx] - mean) / scale, y[idx], C, [is_monotone(nm) for nm in names], sw[idx])
        out["regimes"][r] = {
            "intercept": round(intercept, 6), "coef": [round(float(c), 6) for c in coef],
            "mean": [round(float(m), 6) for m in mean], "scale": [round(float(s), 6) for s in scale], "n": n, "positives": int(y[idx].sum()),
        }
    return out


def reliability(probs: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error of P(hallucinated) and the table behind it (equal-width bins)."""
    bins = []
    total, ece = len(probs), 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i, p in enumerate(probs) if lo <= p < hi or (b == n_bins - 1 and p == 1.0)]
        if not idx:
            continue
        mean_p = sum(probs[i] for i in idx) / len(idx)
        rate = sum(labels[i] for i in idx) / len(idx)
        ece += len(idx) / total * abs(mean_p - rate)
        bins.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(idx), "mean_score": round(mean_p, 4), "hallucinated": round(rate, 4)})
    return {"ece": round(ece, 4), "bins": bins}
