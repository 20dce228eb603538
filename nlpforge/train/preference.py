"""Preference tuning through TRL: DPO on (prompt, chosen, rejected) pairs and KTO on single
completions labelled desirable or not, e.g. the feedback the server exports. Rows are in
TRL's conversational shape, so TRL renders them with the same chat template as SFT and
serving. With a PEFT adapter the reference model is the base with the adapter disabled
(no second copy in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

from nlpforge.data.chat import load_tokenizer
from nlpforge.errors import DataError
from nlpforge.models import resolve_model_path
from nlpforge.recipe import Recipe
from nlpforge.train.common import args_kwargs, callbacks
from nlpforge.train.sft import build_model, finish, read_jsonl, set_threads


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    cfg, task = recipe.train, recipe.train.task
    set_threads(cfg.threads)
    tok = load_tokenizer(recipe)
    train_rows = read_jsonl(prepared / f"train_{task}.jsonl")
    if not train_rows:
        raise DataError(f"{prepared / f'train_{task}.jsonl'}: no training rows")
    eval_rows = read_jsonl(prepared / f"eval_{task}.jsonl") if cfg.eval_steps else []
    model = build_model(recipe, resolve_model_path(recipe.model.path))
    trainable, total = model.get_nb_trainable_parameters()
    kw = args_kwargs(recipe, out_dir, bool(eval_rows))
    kw.pop("remove_unused_columns")  # TRL tokenises the text columns itself
    kw.update(beta=cfg.beta, max_length=recipe.model.max_length, dataset_num_proc=None)
    config_cls, trainer_cls = (DPOConfig, DPOTrainer) if task == "dpo" else (KTOConfig, KTOTrainer)
    if task == "kto":
        n_bad = sum(1 for r in train_rows if not r["label"])
        # KTO paper / TRL: desirable_weight * n_good / (undesirable_weight * n_bad) should lie in [1, 4/3]
        kw.update(desirable_weight=1.0, undesirable_weight=(len(train_rows) - n_bad) / max(n_bad, 1) / 1.15)
    trainer = trainer_cls(
        model=model,
        args=config_cls(**kw),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tok,
        callbacks=callbacks(recipe, out_dir, bool(eval_rows)),
    )
    return finish(trainer, model, tok, recipe, out_dir, len(train_rows), None, {"trainable_params": trainable, "total_params": total, "task": task, "beta": cfg.beta})
