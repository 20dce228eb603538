"""A training task: what differs between chat SFT, continued pretraining, classification and
preference tuning at each stage (prepare, train, eval, export and the files each writes).
The pipeline asks the recipe's task instead of switching on ``train.task``; adding a task is
one module here plus its name in the recipe schema.

Stage code is imported inside the methods: torch, transformers, peft and TRL load only when a
stage runs (``nlpforge check`` and the CLI stay fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from nlpforge.artifacts import Manifest
from nlpforge.recipe import Recipe


class TrainingTask:
    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # the data.format values this task trains on
    model_kind: ClassVar[Literal["causal_lm", "classifier"]] = "causal_lm"
    prepare_outputs: ClassVar[tuple[str, ...]] = ("prepare/train.jsonl", "prepare/eval.jsonl", "prepare/meta.json")
    eval_outputs: ClassVar[tuple[str, ...]] = ("eval/results.json", "eval/samples.jsonl")

    def prepare(self, recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
        raise NotImplementedError

    def prepared_files(self, recipe: Recipe) -> tuple[str, ...]:
        """What prepare writes for this recipe (the pipeline checks they exist)."""
        return self.prepare_outputs

    def train(self, recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
        raise NotImplementedError

    def evaluate(self, recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
        from nlpforge.evals.chat import run_eval

        return run_eval(recipe, prepared, adapter, out_dir)

    def export(self, recipe: Recipe, prepared: Path, adapter: Path, eval_dir: Path, manifest: Manifest, out_dir: Path) -> dict[str, Any]:
        from nlpforge.export.bundle import run_export

        return run_export(recipe, prepared, adapter, eval_dir, manifest, out_dir)
