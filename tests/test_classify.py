"""The classification quickstart end to end through the CLI on the real MiniLM, and its
eval/export outputs in the shapes CONTRACTS.md fixes."""

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
    preds = [json.loads(x) for x in (run_dir / "eval/predictions.jsonl").read_text().splitlines()]
    assert len(preds) == res["metrics"]["samples"]
    p = preds[0]
    assert {"text", "label", "probs", "pred", "channel", "id"} <= set(p)  # the group column is kept for fairness
    assert len(p["probs"]) == 6 and abs(sum(p["probs"]) - 1) < 1e-3 and p["pred"] == res["labels"][max(range(6), key=p["probs"].__getitem__)]


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
