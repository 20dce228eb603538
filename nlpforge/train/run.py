"""The train stage: the trainer of the recipe's task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlpforge.recipe import Recipe


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    task = recipe.train.task
    if task == "classification":
        from nlpforge.train.classify import run_train as train_classifier

        return train_classifier(recipe, prepared, out_dir)
    if task in ("dpo", "kto"):
        from nlpforge.train.preference import run_train as train_preference

        return train_preference(recipe, prepared, out_dir)
    from nlpforge.train.sft import run_train as train_sft

    return train_sft(recipe, prepared, out_dir)
