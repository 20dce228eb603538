"""What every trainer of nlpforge shares: TrainingArguments from the recipe, the JSONL log,
early stopping with best-checkpoint selection, resume from the last complete checkpoint,
and writing the adapter atomically."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from nlpforge.atomic import atomic_dir, atomic_write_json
from nlpforge.console import log
from nlpforge.recipe import Recipe
from nlpforge.train.launch import is_main_process


class JsonlLog(TrainerCallback):
    """Loss and metrics as JSON lines in the run directory (appends across resumes); only the
    main process writes when several run data-parallel."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer's signature)
        if logs and state.is_world_process_zero:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint that was fully written. A kill during a save can leave a
    checkpoint folder without ``trainer_state.json`` (written last); such a folder is
    moved aside rather than resumed from."""
    if not is_main_process():  # data-parallel workers only read; the main process renames
        done = sorted((p for p in ckpt_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()), key=lambda p: int(p.name.split("-")[1]))
        return str(done[-1]) if done else None
    while ckpt_dir.is_dir():
        last = get_last_checkpoint(str(ckpt_dir))
        if last is None or (Path(last) / "trainer_state.json").is_file():
            return last
        Path(last).rename(Path(last).with_name(f"incomplete-{Path(last).name}"))
    return None


def args_kwargs(recipe: Recipe, out_dir: Path, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments of TrainingArguments (and of TRL's configs, which extend it)."""
    cfg = recipe.train
    kw: dict[str, Any] = dict(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to=list(cfg.report_to),
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=recipe.model.dtype == "bfloat16" and torch.cuda.is_available(),
        fp16=recipe.model.dtype == "float16" and torch.cuda.is_available(),
        dataloader_num_workers=0,
        gradient_checkpointing=cfg.gradient_checkpointing,
        ddp_find_unused_parameters=False,
    )
    if cfg.eval_steps and has_eval:
        kw.update(eval_strategy="steps", eval_steps=cfg.eval_steps)
    if cfg.early_stopping is not None and has_eval:
        es = cfg.early_stopping
        kw.update(
            load_best_model_at_end=True,
            metric_for_best_model=es.metric,
            greater_is_better=es.greater_is_better if es.greater_is_better is not None else not es.metric.endswith("loss"),
            # the best checkpoint must be on disk when training ends: save on the eval schedule
            save_steps=cfg.eval_steps,
            save_total_limit=max(cfg.save_total_limit, 2),
        )
    return kw


def training_args(recipe: Recipe, out_dir: Path, has_eval: bool, **extra: Any) -> TrainingArguments:
    return TrainingArguments(**{**args_kwargs(recipe, out_dir, has_eval), **extra})


def callbacks(recipe: Recipe, out_dir: Path, has_eval: bool) -> list[TrainerCallback]:
    out: list[TrainerCallback] = [JsonlLog(out_dir / "log.jsonl")]
    es = recipe.train.early_stopping
    if es is not None and has_eval:
        out.append(EarlyStoppingCallback(early_stopping_patience=es.patience, early_stopping_threshold=es.threshold))
    return out


def finish(trainer: Any, model: Any, tok: Any, recipe: Recipe, out_dir: Path, n_rows: int, collator: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """Train (resuming from the last complete checkpoint), save the adapter, write the summary."""
    last = last_complete_checkpoint(out_dir / "checkpoints")
    if last:
        log(f"[yellow]train: resuming from {last}[/yellow]")
    start = time.time()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - start
    final_eval = {k: round(v, 6) if isinstance(v, float) else v for k, v in trainer.evaluate().items()} if trainer.eval_dataset is not None else None
    if not trainer.is_world_process_zero():
        return {}
    with atomic_dir(out_dir / "adapter") as tmp:
        trainer.model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    summary = {
        "train_loss": round(result.training_loss, 4),
        "steps": result.global_step,
        "resumed_from": Path(last).name if last else None,
        **extra,
        "train_rows": n_rows,
        "seconds": round(seconds, 1),
        "processes": trainer.args.world_size,
    }
    if collator is not None and collator.slots:
        summary.update(
            tokens_seen=collator.real, padding_share=round(1 - collator.real / collator.slots, 4), tokens_per_second=round(collator.real / max(seconds, 1e-9), 1)
        )
    if trainer.state.best_model_checkpoint:
        summary.update(best_checkpoint=Path(trainer.state.best_model_checkpoint).name, best_metric=trainer.state.best_metric)
    if final_eval is not None:
        summary["eval"] = final_eval  # the saved adapter's scores (the best checkpoint's with early stopping)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
