"""The eval stage of a classification recipe: the tuned classifier on the held-out split,
through the engine layer that serves it, against the majority-class baseline, with fairness
and a selectable decision threshold. Writes ``eval/results.json`` and ``eval/predictions.jsonl``
(the report and fairness read them)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from nlpforge.artifacts import EvalResults, PrepareMeta
from nlpforge.console import log
from nlpforge.engines.base import decide
from nlpforge.engines.bundle import BundleInfo
from nlpforge.engines.hf import HFEngine
from nlpforge.errors import RecipeError, StageError
from nlpforge.evals.fairness import fairness_block
from nlpforge.evals.gates import GateError, check_gates, gate_message
from nlpforge.evals.metrics import classification_summary, threshold_for_fpr, threshold_for_precision
from nlpforge.jsonl import read_jsonl, write_jsonl
from nlpforge.models import load_tokenizer, load_tuned_classifier, set_threads
from nlpforge.recipe import Recipe


def majority_baseline(train_labels: list, y_true: list, labels: list[str], multi_label: bool) -> dict[str, Any]:
    """Always predict the most frequent training label (multi-label: the most frequent label set)."""
    key = Counter(json.dumps(sorted(x) if multi_label else x) for x in train_labels).most_common(1)[0][0]
    guess = json.loads(key)
    m = classification_summary(y_true, [guess] * len(y_true), labels)
    return {"prediction": guess, **{k: m[k] for k in ("accuracy", "macro_f1", "micro_f1", "macro_precision", "macro_recall", "samples")}}


def select_threshold(recipe: Recipe, y_true: list, probs: list[list[float]], labels: list[str], multi_label: bool) -> dict[str, Any] | None:
    """The operating point ``eval.threshold`` asks for (target FPR or precision) on the positive
    label's probability, or None when not asked. Raises when the target cannot be met."""
    cfg = recipe.eval.threshold
    if cfg is None:
        return None
    positive = cfg.positive_label or recipe.eval.fairness.positive_label or labels[min(1, len(labels) - 1)]
    if positive not in labels:
        raise RecipeError(f"eval.threshold.positive_label: {positive!r} is not a label of this data (labels: {', '.join(labels)})")
    if not multi_label and len(labels) != 2:
        raise RecipeError(f"eval.threshold: a decision threshold needs a binary or multi-label classifier; this one has {len(labels)} exclusive labels")
    k = labels.index(positive)
    y = [positive in t if multi_label else t == positive for t in y_true]
    scores = [row[k] for row in probs]
    point = threshold_for_fpr(y, scores, cfg.max_fpr) if cfg.max_fpr is not None else threshold_for_precision(y, scores, cfg.min_precision)
    target = f"max_fpr={cfg.max_fpr}" if cfg.max_fpr is not None else f"min_precision={cfg.min_precision}"
    if point is None:
        raise StageError(f"eval.threshold: no threshold on the held-out split meets {target} for label {positive!r}")
    return {"positive_label": positive, "target": target, **{key: round(float(v), 6) for key, v in point.items()}}


def run_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    set_threads(recipe.train.threads)
    meta = PrepareMeta.read(prepared)
    labels, multi = meta.labels, meta.multi_label
    tok = load_tokenizer(recipe, require_template=False)
    rows = read_jsonl(prepared / "eval.jsonl")
    log(f"eval: classifier on {len(rows)} held-out rows")
    model = load_tuned_classifier(recipe, adapter, labels, multi, "float32")
    # the tuned classifier behind the shared engine layer: eval's probabilities are computed by the code that serves the bundle
    engine = HFEngine.from_model(model, tok, BundleInfo.for_model("classification", labels=labels, multi_label=multi, max_length=recipe.model.max_length),
                                 recipe.eval.batch_size)
    texts = [r[recipe.data.text_field] for r in rows]
    probs = engine.classify(texts)
    y_true = [r["label"] for r in rows]
    selected = select_threshold(recipe, y_true, probs, labels, multi)
    threshold = selected["threshold"] if selected else (recipe.train.threshold if multi else None)
    preds = [decide(p, labels, multi, threshold) for p in probs]
    metrics = classification_summary(y_true, preds, labels, probs)
    majority = majority_baseline([r["label"] for r in read_jsonl(prepared / "train.jsonl")], y_true, labels, multi)
    results: dict[str, Any] = {
        "task": "classification", "labels": labels, "multi_label": multi, "threshold": threshold, "threshold_selection": selected,
        "metrics": metrics, "majority": majority, "per_label": metrics["per_class"], "text_field": recipe.data.text_field,
    }
    skip = {"input_ids", "label_ids", "source"}
    pred_rows = []
    for r, p, pred in zip(rows, probs, preds):
        extra = {k: v for k, v in r.items() if k not in skip and k not in ("label", recipe.data.text_field)}
        pred_rows.append({"text": r[recipe.data.text_field], "label": r["label"], "probs": [round(x, 6) for x in p], "pred": pred, "source": r.get("source"), **extra})
    fair = recipe.eval.fairness
    if fair.group_fields or fair.counterfactual:
        log("eval: fairness (per-group gaps, counterfactual swaps)")
        missing = [g for g in fair.group_fields if pred_rows and g not in pred_rows[0]]
        if missing:
            raise RecipeError(f"eval.fairness.group_fields: {', '.join(missing)} not in the eval rows (columns: {', '.join(sorted(pred_rows[0]))})")
        engine.progress = False
        results["fairness"] = fairness_block(pred_rows, labels, fair, engine.classify if fair.counterfactual else None, text_field="text")
    # gates read the tuned model's numbers (there is no base classifier to compare with)
    results["tuned"] = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    results["gates"] = check_gates(recipe.eval.gates, results)
    results["passed"] = all(g["passed"] for g in results["gates"])
    write_jsonl(out_dir / "predictions.jsonl", pred_rows)
    EvalResults.model_validate(results).write(out_dir)
    if recipe.eval.report:
        from nlpforge.evals.report import write_report

        write_report(out_dir.parent, out_dir / "report.html")
    if not results["passed"]:
        raise GateError(gate_message(results["gates"]))
    out = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "majority_accuracy": majority["accuracy"], "majority_macro_f1": majority["macro_f1"]}
    if selected:
        out.update({"threshold": selected["threshold"], "threshold_recall": selected["recall"]})
    return out
