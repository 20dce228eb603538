"""PEFT methods from the recipe's ``peft`` section: LoRA (rsLoRA, DoRA), QLoRA, IA3 and
prompt tuning, as peft configs. QLoRA needs bitsandbytes (``nlpforge[qlora]``); on a CPU it
needs a release with CPU 4-bit kernels. Without one it fails here, before any model is
loaded, with what to change."""

from __future__ import annotations

import importlib.metadata

import torch
from peft import IA3Config, LoraConfig, PeftConfig, PromptTuningConfig

from nlpforge.errors import StageError
from nlpforge.recipe import Recipe

BNB_MIN_CPU = "0.50"  # the first bitsandbytes release seen quantizing, training and dequantizing NF4 on a CPU here


def bnb_version() -> str | None:
    try:
        return importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_qlora_available() -> None:
    from packaging.version import Version

    version = bnb_version()
    if version is None:
        raise StageError("peft.method=qlora loads the base model in 4 bits with bitsandbytes, which is not installed: pip install 'nlpforge[qlora]'; or use peft.method: lora")
    if not torch.cuda.is_available() and Version(version) < Version(BNB_MIN_CPU):
        raise StageError(f"peft.method=qlora on a CPU needs bitsandbytes>={BNB_MIN_CPU} (CPU 4-bit kernels); {version} is installed: pip install 'nlpforge[qlora]', "
                         "or use peft.method: lora on a CPU")


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
