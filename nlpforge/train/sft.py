"""Train: causal-LM SFT (chat or continued pretraining) with a PEFT method and the HF Trainer,
which runs on Accelerate (one process, or data-parallel under ``accelerate launch``).
Checkpoints every ``train.save_steps``; a killed run resumes from the last one with
optimizer, scheduler, RNG and data position restored (the Trainer's own resume).

Batches are either packed (``train.packing``: the samples of a batch are concatenated into
one padding-free row; per-sample ``position_ids`` make transformers' attention mask block
diagonal, so no token attends across samples) or padded, with similar lengths grouped. With
``data.streaming`` the rows come from the corpus as an ``IterableDataset`` (nlpforge.data.stream)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import get_peft_model
from transformers import DataCollatorWithFlattening, Trainer, set_seed

from nlpforge.artifacts import PrepareMeta
from nlpforge.data.arrow import token_rows
from nlpforge.data.stream import train_stream
from nlpforge.errors import DataError, StageError
from nlpforge.models import load_base, load_tokenizer, resolve_model_path, set_threads
from nlpforge.recipe import Recipe
from nlpforge.train.common import callbacks, finish, training_args
from nlpforge.train.peft_methods import peft_config


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


def build_model(recipe: Recipe) -> Any:
    set_seed(recipe.seed)  # adapter weights are initialised from the global RNG: seed it first
    qlora = recipe.peft.method == "qlora"
    model = load_base(recipe, quantize=qlora)
    if qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.train.gradient_checkpointing)
    if recipe.train.packing:
        # a KV cache makes transformers skip the packed-sequence mask (masking_utils): off for training
        model.config.use_cache = False
    return get_peft_model(model, peft_config(recipe, "CAUSAL_LM", tokenizer_path=resolve_model_path(recipe.model.path)))


def run_train(recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.train
    set_threads(cfg.threads)
    tok = load_tokenizer(recipe, require_template=recipe.data.format != "text")
    if tok.pad_token_id is None:
        raise StageError(f"{recipe.model.path}: the tokenizer has no pad token; give it one distinct from eos")
    meta = PrepareMeta.read(prepared)
    if meta.streaming_corpus:  # data.streaming: rendered from the corpus as training reads it
        rows = train_stream(recipe, prepared / meta.streaming_corpus, tok)
    else:
        rows = token_rows(prepared, "train")  # memory-mapped Arrow: the split is not held in RAM
        if not len(rows):
            raise DataError(f"{prepared / 'train.jsonl'}: no training rows")
    eval_rows = token_rows(prepared, "eval") if cfg.eval_steps else []

    model = build_model(recipe)
    trainable, total = model.get_nb_trainable_parameters()
    collator = CountingCollator(packed_collator() if cfg.packing else PadCollator(tok.pad_token_id))
    group = cfg.group_by_length and not cfg.packing and not meta.streaming_corpus  # a stream has no lengths to sort by
    args = training_args(recipe, out_dir, bool(len(eval_rows)), **({"train_sampling_strategy": "group_by_length"} if group else {}))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        eval_dataset=eval_rows if len(eval_rows) else None,
        data_collator=collator,
        callbacks=callbacks(recipe, out_dir, bool(len(eval_rows))),
    )
    return finish(trainer, model, tok, recipe, out_dir, meta.train_rows, collator,
                  {"trainable_params": trainable, "total_params": total, "packing": cfg.packing, "streaming": bool(meta.streaming_corpus)})
