"""Sequence classification: an encoder (or any AutoModelForSequenceClassification) with a
PEFT adapter; the new head is trained in full and saved with the adapter (modules_to_save).
The label map comes from the prepared data; single-label uses cross-entropy, multi-label
per-label sigmoid (BCE), both optionally weighted by inverse class frequency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import get_peft_model
from transformers import DataCollatorWithPadding, PreTrainedModel, Trainer, set_seed

from nlpforge.artifacts import PrepareMeta
from nlpforge.data.arrow import token_rows
from nlpforge.engines.base import decide
from nlpforge.errors import DataError, StageError
from nlpforge.evals.metrics import classification_summary
from nlpforge.models import load_classifier, load_tokenizer, resolve_model_path, set_threads
from nlpforge.recipe import Recipe
from nlpforge.train.common import callbacks, finish, training_args
from nlpforge.train.peft_methods import peft_config


def head_modules(model: PreTrainedModel) -> list[str]:
    """Names of the freshly initialised head, which must be trained in full and saved."""
    names = [n for n in ("classifier", "score") if hasattr(model, n)]
    if not names:
        raise StageError(f"{type(model).__name__}: no 'classifier' or 'score' head found; set peft.modules_to_save to the head's module name")
    return names


def class_weights(meta: PrepareMeta, n_rows: int) -> torch.Tensor:
    counts = np.array([meta.label_counts[lab] for lab in meta.labels], dtype=np.float64)
    if meta.multi_label:
        return torch.tensor((n_rows - counts) / np.maximum(counts, 1), dtype=torch.float32)  # BCE pos_weight
    return torch.tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)  # sklearn's "balanced"


def loss_function(weights: torch.Tensor | None, multi_label: bool) -> Any:
    def compute(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"]
        w = weights.to(logits.device) if weights is not None else None
        if multi_label:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=w)
        return torch.nn.functional.cross_entropy(logits, labels, weight=w)

    return compute


def metrics_function(meta: PrepareMeta, threshold: float) -> Any:
    def compute(pred: Any) -> dict[str, float]:
        logits = torch.tensor(pred.predictions)
        probs = torch.sigmoid(logits) if meta.multi_label else torch.softmax(logits, -1)
        y_pred = [decide(row, meta.labels, meta.multi_label, threshold) for row in probs.tolist()]
        y_true = [[lab for lab, v in zip(meta.labels, row) if v] for row in pred.label_ids] if meta.multi_label else [meta.labels[i] for i in pred.label_ids]
        m = classification_summary(y_true, y_pred, meta.labels)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

    return compute


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.train
    set_threads(cfg.threads)
    tok = load_tokenizer(recipe, require_template=False)
    meta = PrepareMeta.read(prepared)

    train_rows = token_rows(prepared, "train")  # memory-mapped Arrow, as for causal LMs
    if not len(train_rows):
        raise DataError(f"{prepared / 'train.jsonl'}: no training rows")
    eval_rows = token_rows(prepared, "eval") if cfg.eval_steps else []
    if recipe.peft.method == "qlora":
        raise StageError("peft.method=qlora is for causal LMs here; use lora for classification")
    set_seed(recipe.seed)
    model = load_classifier(recipe, meta.labels, meta.multi_label)
    model = get_peft_model(model, peft_config(recipe, "SEQ_CLS", modules_to_save=head_modules(model), tokenizer_path=resolve_model_path(recipe.model.path)))
    trainable, total = model.get_nb_trainable_parameters()
    weights = class_weights(meta, len(train_rows)) if cfg.class_weights else None
    group = cfg.group_by_length
    trainer = Trainer(
        model=model,
        args=training_args(recipe, out_dir, bool(len(eval_rows)), **({"train_sampling_strategy": "group_by_length"} if group else {})),
        train_dataset=train_rows,
        eval_dataset=eval_rows if len(eval_rows) else None,
        data_collator=DataCollatorWithPadding(tok),
        compute_loss_func=loss_function(weights, meta.multi_label),
        compute_metrics=metrics_function(meta, cfg.threshold) if len(eval_rows) else None,
        callbacks=callbacks(recipe, out_dir, bool(len(eval_rows))),
    )
    extra = {"trainable_params": trainable, "total_params": total, "labels": len(meta.labels), "multi_label": meta.multi_label, "class_weights": cfg.class_weights}
    return finish(trainer, model, tok, recipe, out_dir, len(train_rows), None, extra)
