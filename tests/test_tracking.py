"""`track.mlflow: true`: a real MLflow store (a local folder) receives one run per `nlpforge run`
with the recipe's params, every stage's summary numbers, the loss curve step by step, the eval
results and the report, manifest and recipe as artifacts; a rerun with cached stages is a
complete MLflow run too, and the manifest names the latest one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nlpforge, support_sample

from nlpforge.tracking import flatten, numbers


def test_flatten_and_numbers_keep_what_mlflow_accepts() -> None:
    assert flatten({"train": {"max_steps": 4, "report_to": ["mlflow"]}, "seed": 1}) == {"train.max_steps": 4, "train.report_to": ["mlflow"], "seed": 1}
    got = numbers({"a": {"b": 1, "ok": True, "nan": float("nan"), "s": "x", "by group[en]": 0.5}}, "eval/")
    assert got == {"eval/a.b": 1.0, "eval/a.ok": 1.0, "eval/a.by group_en_": 0.5}


@pytest.mark.slow
def test_a_run_is_logged_to_mlflow(tiny_model: Path, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    support_sample(tmp_path, 80)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: tracked\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\nmodel:\n  path: {tiny_model}\n"
        "train:\n  threads: 1\n  max_steps: 4\n  batch_size: 2\n  logging_steps: 1\n"
        "eval:\n  compare_base: false\n  max_samples: 4\n  factuality:\n    enabled: false\n"
        "track:\n  mlflow: true\n  experiment: nlpforge-test\n"
    )
    # MLflow's default store, in the working directory: ./mlflow.db and ./mlruns
    env = {"MLFLOW_TRACKING_URI": "", "GIT_PYTHON_REFRESH": "quiet"}
    run = tmp_path / "run"
    for _ in range(2):  # the second run finds every stage cached
        nlpforge("run", str(recipe), "--quiet", "--stages", "clean,prepare,train,eval", "--run-dir", str(run), env=env, cwd=tmp_path, timeout=900)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nlpforge-test")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    first, second = runs
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["tracking"]["mlflow_run_id"] == second.info.run_id

    assert first.data.params["train.max_steps"] == "4" and first.data.params["model.path"] == str(tiny_model)
    assert first.data.tags["nlpforge.stage.train"] == "ran" and second.data.tags["nlpforge.stage.train"] == "cached"
    clean = json.loads((run / "clean/report.json").read_text())
    for r in runs:  # the cached rerun carries the same stage numbers
        m = r.data.metrics
        assert m["train.steps"] == 4 and m["clean.kept"] == clean["kept_docs"] and m["prepare.train_rows"] > 0
    results = json.loads((run / "eval/results.json").read_text())
    some = next((k, v) for k, v in flatten(results).items() if isinstance(v, float))
    assert first.data.metrics["eval/" + some[0]] == pytest.approx(some[1])

    curve = client.get_metric_history(first.info.run_id, "train/loss")
    logged = [json.loads(x) for x in (run / "train/log.jsonl").read_text().splitlines() if "loss" in json.loads(x)]
    assert [(p.step, p.value) for p in sorted(curve, key=lambda p: p.step)] == [(x["step"], pytest.approx(x["loss"])) for x in logged]

    arts = {a.path for a in client.list_artifacts(first.info.run_id)} | {a.path for a in client.list_artifacts(first.info.run_id, "eval")}
    assert {"manifest.json", "recipe", "eval/results.json", "eval/report.html"} <= arts
