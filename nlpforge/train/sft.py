"""Train: LoRA (peft) on the prepared chat samples with the HF Trainer, which runs on
Accelerate. Checkpoints every ``train.save_steps``; a killed run resumes from the last one
with optimizer, scheduler, RNG and data position restored (the Trainer's own resume)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, PreTrainedModel, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from nlpforge.console import log
from nlpforge.data.chat import load_tokenizer
from nlpforge.errors import DataError, StageError
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_dir, atomic_write_json

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def set_threads(threads: int | None) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_base(recipe: Recipe, dtype: str | None = None) -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_pretrained(
            recipe.model.path, dtype=DTYPES[dtype or recipe.model.dtype], trust_remote_code=recipe.model.trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise StageError(f"model.path: cannot load a causal LM from {recipe.model.path!r}: {exc}") from None


def load_tuned(recipe: Recipe, adapter: Path, dtype: str | None = None) -> PreTrainedModel:
    """Base plus adapter, merged (the same weights export writes)."""
    return PeftModel.from_pretrained(load_base(recipe, dtype), str(adapter)).merge_and_unload()


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise StageError(f"{path}: missing; run the stage that writes it first")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class PadCollator:
    """Right-pad ids with the pad token and labels with -100. Labels come from the template
    mask, so the end-of-turn and EOS tokens keep their loss whatever the pad token is."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id)
        labels = torch.full((len(rows), width), -100)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            attn[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": attn}


class JsonlLog(TrainerCallback):
    """Loss and learning rate as JSON lines in the run directory (appends across resumes)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 (Trainer's signature)
        if logs:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint that was fully written. A kill during a save can leave a
    checkpoint folder without ``trainer_state.json`` (written last); such a folder is
    moved aside rather than resumed from."""
    while ckpt_dir.is_dir():
        last = get_last_checkpoint(str(ckpt_dir))
        if last is None or (Path(last) / "trainer_state.json").is_file():
            return last
        Path(last).rename(Path(last).with_name(f"incomplete-{Path(last).name}"))
    return None


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.train
    set_threads(cfg.threads)
    tok = load_tokenizer(recipe)
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in read_jsonl(prepared / "train.jsonl")]
    if not rows:
        raise DataError(f"{prepared / 'train.jsonl'}: no training rows")

    set_seed(recipe.seed)  # LoRA weights are initialised from the global RNG: seed it first
    model = load_base(recipe)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=recipe.peft.r,
        lora_alpha=recipe.peft.alpha,
        lora_dropout=recipe.peft.dropout,
        target_modules=recipe.peft.target_modules,
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()

    ckpt_dir = out_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
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
        report_to=[],
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=recipe.model.dtype == "bfloat16" and torch.cuda.is_available(),
        fp16=recipe.model.dtype == "float16" and torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=PadCollator(tok.pad_token_id),
        callbacks=[JsonlLog(out_dir / "log.jsonl")],
    )
    last = last_complete_checkpoint(ckpt_dir)
    if last:
        log(f"[yellow]train: resuming from {last}[/yellow]")
    start = time.time()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - start

    with atomic_dir(out_dir / "adapter") as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    summary = {
        "train_loss": round(result.training_loss, 4),
        "steps": result.global_step,
        "resumed_from": Path(last).name if last else None,
        "trainable_params": trainable,
        "total_params": total,
        "train_rows": len(rows),
        "train_tokens_per_epoch": n_tokens,
        "seconds": round(seconds, 1),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
