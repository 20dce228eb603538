"""PEFT methods from the recipe's ``peft`` section: LoRA (rsLoRA, DoRA), QLoRA, IA3 and
prompt tuning, as peft configs. QLoRA needs bitsandbytes and CUDA; on a CPU it fails here,
before any model is loaded, with what to change."""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from peft import IA3Config, LoraConfig, PeftConfig, PromptTuningConfig

from nlpforge.errors import StageError
from nlpforge.recipe import Recipe


def check_qlora_available() -> None:
    if not torch.cuda.is_available():
        raise StageError("peft.method=qlora loads the base model in 4 bits with bitsandbytes, which needs a CUDA GPU; none is visible here. Use peft.method: lora on a CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise StageError("peft.method=qlora needs the bitsandbytes package (pip install bitsandbytes); or use peft.method: lora")


def quantization_config(recipe: Recipe) -> Any:
    """4-bit NF4 with double quantisation, computing in the recipe's dtype (QLoRA paper)."""
    from transformers import BitsAndBytesConfig

    from nlpforge.train.sft import DTYPES

    check_qlora_available()
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=DTYPES[recipe.model.dtype]
    )


def peft_config(recipe: Recipe, task_type: str, modules_to_save: list[str] | None = None, tokenizer_path: str | None = None) -> PeftConfig:
    p = recipe.peft
    save = (p.modules_to_save or []) + [m for m in modules_to_save or [] if m not in (p.modules_to_save or [])] or None
    if p.method in ("lora", "qlora"):
        return LoraConfig(
            task_type=task_type,
            r=p.r,
            lora_alpha=p.alpha,
            lora_dropout=p.dropout,
            target_modules=p.target_modules,
            use_rslora=p.use_rslora,
            use_dora=p.use_dora,
            modules_to_save=save,
        )
    if p.method == "ia3":
        # "all-linear" -> peft's per-architecture defaults (attention k/v and the MLP output)
        target = None if p.target_modules == "all-linear" else p.target_modules
        return IA3Config(task_type=task_type, target_modules=target, feedforward_modules=None if target is None else [], modules_to_save=save)
    if p.method == "prompt_tuning":
        init = {"prompt_tuning_init": "TEXT", "prompt_tuning_init_text": p.prompt_init_text, "tokenizer_name_or_path": tokenizer_path} if p.prompt_init_text else {}
        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=p.num_virtual_tokens, modules_to_save=save, **init)
    raise StageError(f"peft.method={p.method}: not supported")
