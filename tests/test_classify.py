"""The classification quickstart end to end through the CLI on the real MiniLM, and its
eval/export outputs in the shapes the artifacts module (nlpforge/artifacts.py) fixes."""

import json
from pathlib import Path

import pytest
import torch
from conftest import nlpforge


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("runs") / "quickstart-classify"
    proc = nlpforge("run", "recipes/quickstart-classify.yaml", "--quiet", "--run-dir", str(run_dir), "--set", "train.threads=2")
    return run_dir, proc.stdout


@pytest.mark.slow
def test_quickstart_classify_beats_the_majority_class(classify_run: tuple[Path, str]) -> None:
    run_dir, stdout = classify_run
    res = json.loads((run_dir / "eval/results.json").read_text())
    assert res["task"] == "classification" and len(res["labels"]) == 6
    maj = res["majority"]
    assert maj["prediction"] == "shipping"
    assert res["metrics"]["accuracy"] >= maj["accuracy"] + 0.4, res
    assert res["metrics"]["macro_f1"] >= 0.7 > maj["macro_f1"], res
    assert "majority (shipping)" in stdout and "macro_f1" in stdout
    from nlpforge.data.arrow import token_rows  # training read the class indices from the memory-mapped Arrow split

    prepared = [json.loads(x) for x in (run_dir / "prepare/train.jsonl").read_text().splitlines()]
    assert token_rows(run_dir / "prepare", "train").to_list() == [{"input_ids": r["input_ids"], "labels": r["label_ids"]} for r in prepared]
    preds = [json.loads(x) for x in (run_dir / "eval/predictions.jsonl").read_text().splitlines()]
    assert len(preds) == res["metrics"]["samples"]
    p = preds[0]
    assert {"text", "label", "probs", "pred", "channel", "id"} <= set(p)  # the group column is kept for fairness
    assert len(p["probs"]) == 6 and abs(sum(p["probs"]) - 1) < 1e-3 and p["pred"] == res["labels"][max(range(6), key=p["probs"].__getitem__)]


@pytest.mark.slow
def test_quickstart_classify_eval_has_fairness_gates_and_report(classify_run: tuple[Path, str]) -> None:
    run_dir, _ = classify_run
    res = json.loads((run_dir / "eval/results.json").read_text())
    preds = [json.loads(x) for x in (run_dir / "eval/predictions.jsonl").read_text().splitlines()]
    # per-channel accuracy recomputed from the predictions file
    per_group = res["fairness"]["groups"]["channel"]["per_group"]
    channels = {p["channel"] for p in preds}
    assert set(per_group) == channels and len(channels) >= 2
    for ch in channels:
        rows = [p for p in preds if p["channel"] == ch]
        assert abs(per_group[ch]["accuracy"] - sum(p["pred"] == p["label"] for p in rows) / len(rows)) < 1e-9
    cf = res["fairness"]["counterfactual"]
    assert cf["variants"] > 0 and 0.0 <= cf["flip_rate"] <= 1.0
    assert res["gates"] == [{"metric": "accuracy", "rule": "min", "bound": 0.8, "value": res["metrics"]["accuracy"], "passed": True}]
    assert 0.0 <= res["metrics"]["ece"] <= 1.0 and res["metrics"]["roc_auc"] > 0.9
    html = (run_dir / "eval/report.html").read_text()
    assert "confusion matrix" in html and "data:image/png;base64," in html and "channel" in html


def test_threshold_selection_meets_the_target_fpr_with_the_best_recall() -> None:
    import random

    from nlpforge.evals.classify import select_threshold
    from nlpforge.recipe import load_recipe

    rng = random.Random(3)
    y = ["fraud" if rng.random() < 0.3 else "ok" for _ in range(400)]
    scores = [min(1.0, max(0.0, rng.gauss(0.7 if t == "fraud" else 0.35, 0.15))) for t in y]
    probs = [[1 - s, s] for s in scores]
    recipe = load_recipe("recipes/quickstart-classify.yaml", ["eval.threshold.max_fpr=0.05", "eval.threshold.positive_label=fraud"])
    sel = select_threshold(recipe, y, probs, ["ok", "fraud"], False)

    def point(th: float) -> tuple[float, float]:
        fp = sum(s >= th and t == "ok" for s, t in zip(scores, y))
        tp = sum(s >= th and t == "fraud" for s, t in zip(scores, y))
        return fp / y.count("ok"), tp / y.count("fraud")

    fpr, recall = point(sel["threshold"])
    assert fpr <= 0.05 and abs(fpr - sel["fpr"]) < 1e-6 and abs(recall - sel["recall"]) < 1e-6
    # brute force over every candidate threshold: none meeting the target has a higher recall
    assert all(point(th)[1] <= recall + 1e-12 for th in set(scores) if point(th)[0] <= 0.05)


@pytest.mark.slow
def test_classification_bundle_loads_and_predicts_like_eval(classify_run: tuple[Path, str]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run_dir, _ = classify_run
    bundle = run_dir / "export"
    meta = json.loads((bundle / "nlpforge.json").read_text())
    assert meta["task"] == "classification" and meta["multi_label"] is False and meta["threshold"] is None and meta["max_length"] == 128
    config = json.loads((bundle / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(6)] == meta["labels"] and config["problem_type"] == "single_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(bundle).eval()
    tok = AutoTokenizer.from_pretrained(bundle)
    preds = [json.loads(x) for x in (run_dir / "eval/predictions.jsonl").read_text().splitlines()][:8]
    with torch.no_grad():
        probs = torch.softmax(model(**tok([p["text"] for p in preds], padding=True, truncation=True, max_length=128, return_tensors="pt")).logits, -1)
    assert torch.allclose(probs, torch.tensor([p["probs"] for p in preds]), atol=1e-4)
