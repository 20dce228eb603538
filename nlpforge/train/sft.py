"""Train: causal-LM SFT (chat or continued pretraining) with a PEFT method and the HF Trainer,
which runs on Accelerate (one process, or data-parallel under ``accelerate launch``).
Checkpoints every ``train.save_steps``; a killed run resumes from the last one with
optimizer, scheduler, RNG and data position restored (the Trainer's own resume).

Batches are either packed (``train.packing``: the samples of a batch are concatenated into
one padding-free row; per-sample ``position_ids`` make transformers' attention mask block
diagonal, so no token attends across samples) or padded, with similar lengths grouped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, DataCollatorWithFlattening, PreTrainedModel, Trainer, set_seed

from nlpforge.console import log
from nlpforge.data.chat import load_tokenizer
from nlpforge.errors import DataError, StageError
from nlpforge.models import resolve_model_path
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_dir, atomic_write_json
from nlpforge.train.common import JsonlLog, best_checkpoint_summary, callbacks, last_complete_checkpoint, training_args  # noqa: F401 (re-exported)
from nlpforge.train.peft_methods import peft_config, quantization_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def set_threads(threads: int | None) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_base(recipe: Recipe, dtype: str | None = None, quantize: bool = False) -> PreTrainedModel:
    path = resolve_model_path(recipe.model.path)
    extra: dict[str, Any] = {}
    if quantize:
        extra["quantization_config"] = quantization_config(recipe)  # raises on CPU before loading
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype or recipe.model.dtype], trust_remote_code=recipe.model.trust_remote_code, **extra)
    except (OSError, ValueError) as exc:
        raise StageError(f"model.path: cannot load a causal LM from {recipe.model.path!r}: {exc}") from None


def load_base_as_trained(recipe: Recipe, dtype: str | None = None) -> PreTrainedModel:
    """The base weights the adapter was trained against. For QLoRA those are the NF4-quantized
    weights dequantized (what every training matmul used), not the original full-precision
    ones: merging into those would give a model that differs from the trained one by the
    quantization error (REFERENCE.md, known failure modes)."""
    if recipe.peft.method != "qlora":
        return load_base(recipe, dtype)
    # dequantize() also drops config.quantization_config: what comes out is plain weights
    return load_base(recipe, quantize=True).dequantize().to(DTYPES[dtype or recipe.model.dtype])


def load_tuned(recipe: Recipe, adapter: Path, dtype: str | None = None) -> PreTrainedModel:
    """Base plus adapter, merged (the same weights export writes)."""
    return PeftModel.from_pretrained(load_base_as_trained(recipe, dtype), str(adapter)).merge_and_unload()


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


class CountingCollator:
    """Wraps a collator to count real and padded token slots (padding share, tokens/s)."""

    def __init__(self, inner: Any):
        self.inner, self.real, self.slots = inner, 0, 0

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.inner(rows)
        self.real += sum(len(r["input_ids"]) for r in rows)
        self.slots += batch["input_ids"].numel()
        return batch


def packed_collator() -> DataCollatorWithFlattening:
    # -100 on each sample's first label: no sample learns to predict across the boundary
    return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)


def build_model(recipe: Recipe, tok_path: str) -> Any:
    set_seed(recipe.seed)  # adapter weights are initialised from the global RNG: seed it first
    qlora = recipe.peft.method == "qlora"
    model = load_base(recipe, quantize=qlora)
    if qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.train.gradient_checkpointing)
    if recipe.train.packing:
        # a KV cache makes transformers skip the packed-sequence mask (masking_utils): off for training
        model.config.use_cache = False
    return get_peft_model(model, peft_config(recipe, "CAUSAL_LM", tokenizer_path=tok_path))


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.train
    set_threads(cfg.threads)
    tok = load_tokenizer(recipe, require_template=recipe.data.format != "text")
    if tok.pad_token_id is None:
        raise StageError(f"{recipe.model.path}: the tokenizer has no pad token; give it one distinct from eos")
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in read_jsonl(prepared / "train.jsonl")]
    if not rows:
        raise DataError(f"{prepared / 'train.jsonl'}: no training rows")
    eval_rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in read_jsonl(prepared / "eval.jsonl")] if cfg.eval_steps else []

    model = build_model(recipe, resolve_model_path(recipe.model.path))
    trainable, total = model.get_nb_trainable_parameters()
    collator = CountingCollator(packed_collator() if cfg.packing else PadCollator(tok.pad_token_id))
    group = cfg.group_by_length and not cfg.packing
    args = training_args(recipe, out_dir, bool(eval_rows), **({"train_sampling_strategy": "group_by_length"} if group else {}))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        eval_dataset=eval_rows or None,
        data_collator=collator,
        callbacks=callbacks(recipe, out_dir, bool(eval_rows)),
    )
    return finish(trainer, model, tok, recipe, out_dir, len(rows), collator, {"trainable_params": trainable, "total_params": total, "packing": cfg.packing})


def finish(trainer: Any, model: Any, tok: Any, recipe: Recipe, out_dir: Path, n_rows: int, collator: CountingCollator | None, extra: dict[str, Any]) -> dict[str, Any]:
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
    summary.update(best_checkpoint_summary(trainer))
    if final_eval is not None:
        summary["eval"] = final_eval  # the saved adapter's scores (the best checkpoint's with early stopping)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
