"""Experiment tracking: one MLflow run per ``nlpforge run`` (``track.mlflow: true``).

It logs the recipe (as flattened params and as the file), each stage's summary numbers (for a
cached stage too, so every MLflow run is complete), the training loss curve from
``train/log.jsonl``, the eval results, and ``manifest.json`` and ``eval/report.html`` as
artifacts. The store: ``$MLFLOW_TRACKING_URI`` (a team server), else ``track.tracking_uri``,
else MLflow's own default (MLflow 3: ``./mlflow.db``, artifacts under ``./mlruns``). MLflow does the storing; this module
only decides what a run is worth recording, because no library maps a run directory to it.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from nlpforge.console import log
from nlpforge.errors import StageError
from nlpforge.recipe import Recipe
from nlpforge.runs import RunDir

PARAM_CHARS = 500  # MLflow rejects longer param values (its limit is 6000; shorter keeps the table readable)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"max_steps": 4}}`` -> ``{"train.max_steps": 4}`` (lists stay values)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj
    return out


def numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested summary (booleans as 0/1), by dotted key in the characters
    MLflow accepts."""
    out = {}
    for key, value in flatten(obj, prefix).items():
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(value):
            out[re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)] = float(value)
    return out


class Tracker:
    """The MLflow run of one ``nlpforge run``; a no-op when ``track.mlflow`` is off."""

    def __init__(self, recipe: Recipe, recipe_path: Path, run: RunDir):
        self.on = recipe.track.mlflow
        self.run = run
        self.run_id: str | None = None
        if not self.on:
            return
        try:
            import mlflow
        except ImportError:
            raise StageError("track.mlflow: true needs MLflow: pip install 'nlpforge[track]' (or mlflow-skinny)") from None
        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI") and recipe.track.tracking_uri:
            mlflow.set_tracking_uri(recipe.track.tracking_uri)
        uri = mlflow.get_tracking_uri()  # else MLflow's default: ./mlflow.db, artifacts in ./mlruns
        mlflow.set_experiment(recipe.track.experiment or recipe.name)
        active = mlflow.start_run(run_name=run.root.name, tags={
            "nlpforge.recipe": str(recipe_path), "nlpforge.recipe_sha256": recipe.digest(), "nlpforge.run_dir": str(run.root.resolve()),
            "nlpforge.model": recipe.model.path, "nlpforge.task": str(recipe.train.task),
        })
        self.run_id = active.info.run_id
        params = {k: str(v)[:PARAM_CHARS] for k, v in flatten(recipe.model_dump(mode="json")).items()}
        items = sorted(params.items())
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per call
            mlflow.log_params(dict(items[i:i + 100]))
        if Path(recipe_path).is_file():
            mlflow.log_artifact(str(recipe_path), artifact_path="recipe")
        log(f"[dim]tracking to MLflow {uri}, experiment {recipe.track.experiment or recipe.name}, run {self.run_id}[/dim]")

    def stage(self, name: str, status: str, seconds: float | None, summary: dict[str, Any] | None) -> None:
        if not self.on:
            return
        metrics = numbers(summary or {}, f"{name}.")
        if seconds is not None:
            metrics[f"{name}.seconds"] = float(seconds)
        self._log(metrics)
        self.mlflow.set_tag(f"nlpforge.stage.{name}", status)
        if name == "train":
            self._loss_curve()
        if name == "eval":
            self._eval()

    def _log(self, metrics: dict[str, float], step: int | None = None) -> None:
        items = sorted(metrics.items())
        for i in range(0, len(items), 1000):  # MLflow takes at most 1,000 metrics per call
            self.mlflow.log_metrics(dict(items[i:i + 1000]), step=step)

    def _loss_curve(self) -> None:
        path = self.run.stage_dir("train") / "log.jsonl"
        if not path.is_file():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            step = int(row.get("step") or 0)
            vals = numbers({k: v for k, v in row.items() if k not in ("step", "epoch")}, "train/")
            if vals:
                self._log(vals, step=step)

    def _eval(self) -> None:
        folder = self.run.stage_dir("eval")
        results = folder / "results.json"
        if results.is_file():
            self._log(numbers(json.loads(results.read_text(encoding="utf-8")), "eval/"))
            self.mlflow.log_artifact(str(results), artifact_path="eval")
        if (folder / "report.html").is_file():
            self.mlflow.log_artifact(str(folder / "report.html"), artifact_path="eval")

    def finish(self, failed: BaseException | None = None) -> None:
        if not self.on:
            return
        manifest = self.run.root / "manifest.json"
        if manifest.is_file():
            self.mlflow.log_artifact(str(manifest))
        self.mlflow.end_run(status="FAILED" if failed else "FINISHED")
