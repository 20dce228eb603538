"""The eval stage of a classification recipe: the tuned classifier on the held-out split,
against the majority-class baseline. Writes ``eval/results.json`` and
``eval/predictions.jsonl`` in the shape CONTRACTS.md fixes (eval's fairness and report read them).

``classification_metrics`` is the one place the numbers are computed (scikit-learn); the
integrator may point it at evals/metrics.py later without touching the callers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from nlpforge.console import log, track
from nlpforge.data.chat import load_tokenizer
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_file, atomic_write_json
from nlpforge.train.sft import read_jsonl, set_threads


def classification_metrics(y_true: list, y_pred: list, labels: list[str], multi_label: bool) -> dict[str, float]:
    """accuracy (exact set match for multi-label), macro/micro F1, macro precision/recall."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
    from sklearn.preprocessing import MultiLabelBinarizer

    if multi_label:
        mlb = MultiLabelBinarizer(classes=labels)
        t, p = mlb.fit_transform(y_true), mlb.transform(y_pred)
    else:
        t, p = y_true, y_pred
    kw = {"labels": None if multi_label else labels, "zero_division": 0}
    return {
        "accuracy": round(float(accuracy_score(t, p)), 4),
        "macro_f1": round(float(f1_score(t, p, average="macro", **kw)), 4),
        "micro_f1": round(float(f1_score(t, p, average="micro", **kw)), 4),
        "macro_precision": round(float(precision_score(t, p, average="macro", **kw)), 4),
        "macro_recall": round(float(recall_score(t, p, average="macro", **kw)), 4),
        "samples": len(y_true),
    }


def per_label_report(y_true: list, y_pred: list, labels: list[str], multi_label: bool) -> dict[str, dict[str, float]]:
    from sklearn.metrics import classification_report
    from sklearn.preprocessing import MultiLabelBinarizer

    if multi_label:
        mlb = MultiLabelBinarizer(classes=labels)
        y_true, y_pred = mlb.fit_transform(y_true), mlb.transform(y_pred)
    rep = classification_report(y_true, y_pred, labels=None if multi_label else labels, target_names=labels, output_dict=True, zero_division=0)
    return {lab: {k: round(float(v), 4) for k, v in rep[lab].items()} for lab in labels}


def decide(probs: list[list[float]], labels: list[str], multi_label: bool, threshold: float) -> list:
    if multi_label:
        return [[lab for lab, p in zip(labels, row) if p >= threshold] for row in probs]
    return [labels[max(range(len(row)), key=row.__getitem__)] for row in probs]


def majority_baseline(train_labels: list, y_true: list, labels: list[str], multi_label: bool) -> dict[str, Any]:
    """Always predict the most frequent training label (multi-label: the most frequent label set)."""
    key = Counter(json.dumps(sorted(x) if multi_label else x) for x in train_labels).most_common(1)[0][0]
    guess = json.loads(key)
    return {"prediction": guess, **classification_metrics(y_true, [guess] * len(y_true), labels, multi_label)}


def predictor(model: Any, tok: Any, max_length: int, multi_label: bool, batch_size: int = 32) -> Any:
    """``predict_proba(texts) -> probs per label`` (the callable eval's counterfactual tests take)."""

    @torch.inference_mode()
    def predict_proba(texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            logits = model(**enc).logits.float()
            out += (torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).tolist()
        return out

    return predict_proba


def run_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    from nlpforge.train.classify import load_tuned_classifier

    set_threads(recipe.train.threads)
    meta = json.loads((prepared / "meta.json").read_text())
    labels, multi = meta["labels"], meta["multi_label"]
    tok = load_tokenizer(recipe, require_template=False)
    rows = read_jsonl(prepared / "eval.jsonl")
    log(f"eval: classifier on {len(rows)} held-out rows")
    model = load_tuned_classifier(recipe, adapter, labels, multi, "float32").eval()
    predict = predictor(model, tok, recipe.model.max_length, multi, recipe.eval.batch_size)
    probs: list[list[float]] = []
    texts = [r[recipe.data.text_field] for r in rows]
    bs = recipe.eval.batch_size
    for i in track(range(0, len(texts), bs), (len(texts) + bs - 1) // bs, "eval classify"):
        probs += predict(texts[i : i + bs])
    threshold = recipe.train.threshold if multi else None
    preds = decide(probs, labels, multi, recipe.train.threshold)
    y_true = [r["label"] for r in rows]
    metrics = classification_metrics(y_true, preds, labels, multi)
    train_labels = [r["label"] for r in read_jsonl(prepared / "train.jsonl")]
    majority = majority_baseline(train_labels, y_true, labels, multi)
    per_label = per_label_report(y_true, preds, labels, multi)
    results = {
        "task": "classification",
        "labels": labels,
        "multi_label": multi,
        "threshold": threshold,
        "metrics": metrics,
        "majority": majority,
        "per_label": per_label,
        "text_field": recipe.data.text_field,
    }
    skip = {"input_ids", "label_ids", "source"}
    with atomic_file(out_dir / "predictions.jsonl") as f:
        for r, p, pred in zip(rows, probs, preds):
            extra = {k: v for k, v in r.items() if k not in skip and k not in ("label", recipe.data.text_field)}
            line = {"text": r[recipe.data.text_field], "label": r["label"], "probs": [round(x, 6) for x in p], "pred": pred, "source": r.get("source"), **extra}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    atomic_write_json(out_dir / "results.json", results)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "majority_accuracy": majority["accuracy"], "majority_macro_f1": majority["macro_f1"]}
