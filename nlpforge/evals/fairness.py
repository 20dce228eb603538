"""Fairness of classifiers: per-group metrics from a group column, demographic-parity and
equalised-odds differences, and counterfactual identity-term / name swaps.

Definitions (as in fairlearn, which is not a dependency here):
- demographic parity difference: max - min over groups of the positive-prediction rate.
  Lower is better, [0, 1]; None with fewer than two groups.
- equalised odds difference: the larger of the max - min gaps in true-positive rate and in
  false-positive rate over groups. Lower is better, [0, 1]; None when no group has both classes.
- counterfactual flip rate: share of swapped texts (identity terms from a term list, PERSON names
  found by spaCy) whose predicted label differs from the original's. Lower is better, [0, 1];
  None when no text holds a swappable term.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nlpforge.engines import load_engine
from nlpforge.errors import DataError

PredictProba = Callable[[list[str]], list[list[float]]]

# Pairs swapped both ways, whole words, case kept. Short on purpose: extend per domain via term_pairs.
TERM_PAIRS: list[tuple[str, str]] = [
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"), ("men", "women"),
    ("male", "female"), ("boy", "girl"), ("father", "mother"), ("son", "daughter"), ("husband", "wife"),
    ("brother", "sister"), ("mr", "ms"), ("gentleman", "lady"),
    ("christian", "muslim"), ("church", "mosque"), ("black", "white"), ("african", "european"),
    ("young", "old"), ("gay", "straight"),
]
# Replacement names: a PERSON is swapped with a name from another list (first name only changes).
NAME_SETS: dict[str, list[str]] = {
    "a": ["Emily", "Greg", "Anne", "Jay", "Molly", "Brad"],
    "b": ["Lakisha", "Jamal", "Aisha", "Darnell", "Keisha", "Tyrone"],
    "c": ["Mei", "Hiroshi", "Priya", "Arjun", "Minh", "Seo-yeon"],
    "d": ["Maria", "José", "Fatima", "Mohammed", "Olga", "Dmitri"],
}


def _rate(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def group_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], groups: Sequence[Any], positive: Any) -> dict[str, Any]:
    """Per group: ``n``, ``accuracy``, ``positive_rate`` (predicted ``positive``), ``tpr``, ``fpr``;
    and the two gaps. Rows with a missing group (None/"") are left out and counted."""
    per: dict[str, dict[str, Any]] = {}
    missing = 0
    for g in dict.fromkeys(groups):
        if g is None or g == "":
            continue
        idx = [i for i, x in enumerate(groups) if x == g]
        t = [y_true[i] == positive for i in idx]
        p = [y_pred[i] == positive for i in idx]
        per[str(g)] = {
            "n": len(idx),
            "accuracy": _rate([y_true[i] == y_pred[i] for i in idx]),
            "positive_rate": _rate(p),
            "tpr": _rate([pp for tt, pp in zip(t, p) if tt]),
            "fpr": _rate([pp for tt, pp in zip(t, p) if not tt]),
        }
    missing = sum(1 for g in groups if g is None or g == "")
    return {
        "positive_label": positive,
        "per_group": per,
        "rows_without_group": missing,
        "demographic_parity_difference": _gap(per, "positive_rate"),
        "equalized_odds_difference": _max_none(_gap(per, "tpr"), _gap(per, "fpr")),
    }


def _gap(per: dict[str, dict[str, Any]], key: str) -> float | None:
    vals = [m[key] for m in per.values() if m[key] is not None]
    return max(vals) - min(vals) if len(vals) >= 2 else None


def _max_none(*vals: float | None) -> float | None:
    real = [v for v in vals if v is not None]
    return max(real) if real else None


def fairness_from_predictions(rows: list[dict], group_fields: Sequence[str], positive: Any) -> dict[str, Any]:
    """``groups`` block for results.json from eval/predictions.jsonl rows (single-label)."""
    out = {}
    for field in group_fields:
        if not any(field in r for r in rows):
            raise DataError(f"eval.fairness: group field '{field}' is in no prediction row (fields: {', '.join(sorted(rows[0])) if rows else 'none'})")
        out[field] = group_metrics([r["label"] for r in rows], [r["pred"] for r in rows], [r.get(field) for r in rows], positive)
    return {"groups": out}


# --- counterfactual swaps ---------------------------------------------------------------------


def _case_like(src: str, word: str) -> str:
    if src.isupper() and len(src) > 1:
        return word.upper()
    return word.capitalize() if src[:1].isupper() else word


def swap_terms(text: str, pairs: Sequence[tuple[str, str]] = TERM_PAIRS) -> str | None:
    """Every listed term swapped with its pair (both directions at once); None if none occurs.
    "her" maps back to "his"/"him" ambiguously: the first pair listing it wins."""
    mapping: dict[str, str] = {}
    for a, b in pairs:
        mapping.setdefault(a, b)
        mapping.setdefault(b, a)
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, mapping), key=len, reverse=True)) + r")\b", re.IGNORECASE)
    if not pattern.search(text):
        return None
    return pattern.sub(lambda m: _case_like(m.group(0), mapping[m.group(0).lower()]), text)


def swap_names(texts: Sequence[str], name_sets: dict[str, list[str]] = NAME_SETS, seed: int = 0) -> list[str | None]:
    """PERSON names (spaCy NER) replaced by a name from another set; None where no name is found."""
    import random

    from nlpforge.evals.factuality import load_nlp

    rng = random.Random(seed)
    home = {n: k for k, names in name_sets.items() for n in names}
    out: list[str | None] = []
    for doc in load_nlp().pipe(texts, batch_size=64):
        persons = [e for e in doc.ents if e.label_ == "PERSON"]
        if not persons:
            out.append(None)
            continue
        text = doc.text
        for ent in reversed(persons):  # right to left keeps earlier offsets valid
            first = ent.text.split()[0]
            other = [k for k in name_sets if k != home.get(first)]
            new = rng.choice(name_sets[rng.choice(other)])
            text = text[: ent.start_char] + new + ent.text[len(first) :] + text[ent.end_char :]
        out.append(text)
    return out


def counterfactual_flips(
    texts: Sequence[str],
    predict_proba: PredictProba,
    labels: Sequence[str],
    term_pairs: Sequence[tuple[str, str]] = TERM_PAIRS,
    names: bool = True,
    max_examples: int = 5,
) -> dict[str, Any]:
    """Predict each text and its term-swapped and name-swapped variants; report how often the
    predicted label flips (``flip_rate``) and the mean absolute change of the original label's
    probability (``mean_prob_shift``), per kind of swap and overall, with a few flipped examples."""
    variants: list[tuple[int, str, str]] = []  # (text index, kind, swapped text)
    for i, t in enumerate(texts):
        s = swap_terms(t, term_pairs)
        if s is not None and s != t:
            variants.append((i, "terms", s))
    if names:
        for i, s in enumerate(swap_names(list(texts))):
            if s is not None and s != texts[i]:
                variants.append((i, "names", s))
    if not variants:
        return {"variants": 0, "flip_rate": None, "mean_prob_shift": None, "by_kind": {}, "examples": []}
    used = sorted({i for i, _, _ in variants})
    base = dict(zip(used, predict_proba([texts[i] for i in used])))
    swapped = predict_proba([v for _, _, v in variants])
    flips, shifts, examples = [], [], []
    by_kind: dict[str, dict[str, list]] = {}
    for (i, kind, text), probs in zip(variants, swapped):
        orig = base[i]
        top = max(range(len(orig)), key=orig.__getitem__)
        new_top = max(range(len(probs)), key=probs.__getitem__)
        flip, shift = top != new_top, abs(probs[top] - orig[top])
        flips.append(flip)
        shifts.append(shift)
        k = by_kind.setdefault(kind, {"flips": [], "shifts": []})
        k["flips"].append(flip)
        k["shifts"].append(shift)
        if flip and len(examples) < max_examples:
            examples.append({"original": texts[i], "swapped": text, "from": labels[top], "to": labels[new_top]})
    return {
        "variants": len(variants),
        "flip_rate": sum(flips) / len(flips),
        "mean_prob_shift": sum(shifts) / len(shifts),
        "by_kind": {k: {"variants": len(v["flips"]), "flip_rate": sum(v["flips"]) / len(v["flips"]), "mean_prob_shift": sum(v["shifts"]) / len(v["shifts"])} for k, v in by_kind.items()},
        "examples": examples,
    }


def bundle_predict_proba(bundle: Path, batch_size: int = 32) -> tuple[PredictProba, list[str]]:
    """``predict_proba`` of a classification bundle through the shared engine layer (softmax, or
    sigmoid when multi-label), and its labels."""
    engine = load_engine(bundle, "hf", batch_size=batch_size)
    return engine.classify, list(engine.info.labels)


def fairness_block(rows: list[dict], labels: Sequence[str], cfg: Any, predict_proba: PredictProba | None = None, text_field: str = "text") -> dict[str, Any]:
    """The ``fairness`` block of a classification run's results.json (read by the report), from
    eval/predictions.jsonl rows and the recipe's ``eval.fairness`` (a FairnessConfig)."""
    positive = cfg.positive_label or (labels[1] if len(labels) > 1 else labels[0])
    out: dict[str, Any] = fairness_from_predictions(rows, cfg.group_fields, positive) if cfg.group_fields else {"groups": {}}
    if cfg.counterfactual and predict_proba is not None:
        pairs = [tuple(p) for p in cfg.term_pairs] if cfg.term_pairs else TERM_PAIRS
        out["counterfactual"] = counterfactual_flips([r[text_field] for r in rows], predict_proba, labels, pairs)
    return out
