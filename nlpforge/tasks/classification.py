"""Sequence classification (format classification): an encoder with a PEFT adapter and a new
head; the label map comes from the data, multi-hot targets for multi-label; evaluated
against the majority class with fairness, exported as a classification bundle."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from nlpforge.artifacts import Manifest, PrepareMeta
from nlpforge.console import track
from nlpforge.data.arrow import arrow_path, write_token_rows
from nlpforge.data.splits import read_corpus, split_and_weight
from nlpforge.errors import DataError
from nlpforge.jsonl import write_jsonl
from nlpforge.models import load_tokenizer
from nlpforge.recipe import Recipe
from nlpforge.tasks.base import TrainingTask


def _as_list(label: Any) -> list:
    return label if isinstance(label, list) else [label]


class Classification(TrainingTask):
    name = "classification"
    formats = ("classification",)
    model_kind = "classifier"
    eval_outputs: ClassVar[tuple[str, ...]] = ("eval/results.json", "eval/predictions.jsonl")

    def prepare(self, recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
        tok = load_tokenizer(recipe, require_template=False)
        field = recipe.data.text_field
        rows = read_corpus(corpus)  # read on demand: prepare never holds the corpus
        multi = any(isinstance(r["label"], list) for r in rows)
        labels = sorted({lab for r in rows for lab in _as_list(r["label"])})
        if len(labels) < 2:
            raise DataError(f"{corpus}: classification needs at least two labels, found {labels}")
        index = {lab: i for i, lab in enumerate(labels)}
        splits = split_and_weight(recipe, rows, stratify_on=None if multi else "label")
        truncated = 0
        for split, items in splits.items():

            def encoded(items: list[dict[str, Any]] = items, split: str = split) -> Any:  # streamed to the file
                nonlocal truncated
                for r in track(items, len(items), f"prepare {split}"):
                    if multi:
                        r["label"] = _as_list(r["label"])
                    ids = tok(r[field], truncation=False)["input_ids"]
                    if len(ids) > recipe.model.max_length:
                        truncated += 1  # an encoder reads the head of a ticket; truncation is the norm, counted in meta
                        ids = tok(r[field], truncation=True, max_length=recipe.model.max_length)["input_ids"]
                    target = [1.0 if lab in r["label"] else 0.0 for lab in labels] if multi else index[r["label"]]
                    yield {**r, "input_ids": ids, "label_ids": target}

            write_jsonl(out_dir / f"{split}.jsonl", encoded())
            write_token_rows(out_dir / f"{split}.jsonl", arrow_path(out_dir, split), "multi_label" if multi else "class")
        counts = Counter(lab for r in splits["train"] for lab in _as_list(r["label"]))
        missing = [lab for lab in labels if not counts.get(lab)]
        if missing:
            raise DataError(f"labels {missing} occur only in the eval split; add training rows for them or drop them")
        meta = PrepareMeta(task="classification", format="classification", labels=labels, multi_label=multi, label_counts={lab: counts[lab] for lab in labels},
                           rows={s: len(v) for s, v in splits.items()}, truncated=truncated, pad_token_id=tok.pad_token_id)
        meta.write(out_dir)
        return {"train_rows": meta.rows["train"], "eval_rows": meta.rows["eval"], "labels": len(labels), "multi_label": multi}

    def train(self, recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
        from nlpforge.train.classify import run_train

        return run_train(recipe, prepared, out_dir)

    def evaluate(self, recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
        from nlpforge.evals.classify import run_eval

        return run_eval(recipe, prepared, adapter, out_dir)

    def export(self, recipe: Recipe, prepared: Path, adapter: Path, eval_dir: Path, manifest: Manifest, out_dir: Path) -> dict[str, Any]:
        from nlpforge.export.classifier import run_export

        return run_export(recipe, prepared, adapter, eval_dir, manifest, out_dir)
