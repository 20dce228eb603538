"""One object per training task (see ``base.py``), chosen by ``train.task``."""

from __future__ import annotations

from nlpforge.recipe import Recipe
from nlpforge.tasks.base import TrainingTask
from nlpforge.tasks.chat import ChatSFT, TextSFT
from nlpforge.tasks.classification import Classification
from nlpforge.tasks.preference import METHODS, Preference

__all__ = ["TrainingTask", "task_for"]


def task_for(recipe: Recipe) -> TrainingTask:
    """The task of a validated recipe (``train.task`` is filled from ``data.format`` when unset)."""
    name = recipe.train.task
    if name == "classification":
        return Classification()
    if name in METHODS:
        return Preference(name)
    return TextSFT() if recipe.data.format == "text" else ChatSFT()
