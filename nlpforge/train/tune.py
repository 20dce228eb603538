"""`nlpforge tune RECIPE --trials N`: Optuna over the ranges in the recipe's ``tune`` section.

The cleaned and prepared data are made once (the stage cache of the run directory); every
trial trains its own adapter in ``tune/trial-N`` from the recipe with the trial's values
set, and is scored by the Trainer's evaluate() on the validation split. The trials table
(``tune/trials.jsonl``) and the best recipe (``tune/best.yaml``, a full recipe that
``nlpforge run`` takes as is) are written in the run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nlpforge.atomic import atomic_write_json, atomic_write_text
from nlpforge.console import log
from nlpforge.errors import RecipeError
from nlpforge.pipeline import run_pipeline
from nlpforge.recipe import Recipe, load_recipe
from nlpforge.runs import RunDir
from nlpforge.tasks import task_for

TUNABLE_SECTIONS = ("train", "peft")


def suggest(trial: Any, key: str, spec: Any) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(key, spec.choices)
    is_int = float(spec.low).is_integer() and float(spec.high).is_integer() and not spec.log and key.split(".")[-1] in ("r", "alpha", "batch_size", "grad_accum", "warmup_steps", "num_virtual_tokens")
    if is_int:
        return trial.suggest_int(key, int(spec.low), int(spec.high))
    return trial.suggest_float(key, spec.low, spec.high, log=spec.log)


def run_tune(recipe: Recipe, recipe_path: Path, run: RunDir, trials: int, overrides: list[str]) -> dict[str, Any]:
    import optuna

    tune = recipe.tune
    if tune is None or not tune.params:
        raise RecipeError(f"{recipe_path}: no tune.params to search; add e.g.\ntune:\n  metric: eval_loss\n  params:\n    train.learning_rate: {{low: 1.0e-5, high: 1.0e-3, log: true}}")
    bad = [k for k in tune.params if k.split(".")[0] not in TUNABLE_SECTIONS]
    if bad:
        raise RecipeError(f"tune.params: {bad}: only {', '.join(TUNABLE_SECTIONS)} keys can be tuned over one prepared dataset")
    run_pipeline(recipe, recipe_path, run, ["clean", "prepare"])
    base = [*overrides]
    if recipe.train.eval_steps is None:
        base.append("train.eval_steps=1000000")  # load the validation split; the final evaluate() scores the trial
    out_dir = run.root / "tune"
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        values = {k: suggest(trial, k, spec) for k, spec in tune.params.items()}
        r = load_recipe(recipe_path, [*base, *(f"{k}={json.dumps(v)}" for k, v in values.items())])
        log(f"tune: trial {trial.number}: {values}")
        summary = task_for(r).train(r, run.stage_dir("prepare"), out_dir / f"trial-{trial.number}")
        metrics = summary.get("eval", {})
        if tune.metric not in metrics:
            raise RecipeError(f"tune.metric={tune.metric!r} is not among the evaluation metrics {sorted(metrics)}")
        rows.append({"trial": trial.number, **values, tune.metric: metrics[tune.metric], "train_loss": summary["train_loss"], "seconds": summary["seconds"]})
        return metrics[tune.metric]

    study = optuna.create_study(direction=tune.direction, sampler=optuna.samplers.TPESampler(seed=recipe.seed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    best_recipe = load_recipe(recipe_path, [*overrides, *(f"{k}={json.dumps(v)}" for k, v in best.params.items())])
    data = best_recipe.model_dump(mode="json", exclude_defaults=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = f"# best of {trials} trials by nlpforge tune: {tune.metric}={best.value} with {best.params}\n"
    atomic_write_text(out_dir / "best.yaml", header + yaml.safe_dump(data, sort_keys=False))
    atomic_write_text(out_dir / "trials.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    result = {"metric": tune.metric, "direction": tune.direction, "best_trial": best.number, "best_value": best.value, "best_params": best.params}
    result.update(trials=rows, best_recipe=str(out_dir / "best.yaml"))
    atomic_write_json(out_dir / "results.json", result)
    return result
