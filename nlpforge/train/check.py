"""`nlpforge check`: parameters, trainable parameters and a GPU memory estimate for the
recipe's model, PEFT method, dtype, batch and sequence length, computed on an empty
("meta") model so no weights are loaded and no GPU is needed.

The activation term follows Korthikanti et al. 2022 ("Reducing Activation Recomputation in
Large Transformer Models"): per layer, s*b*h*(34 + 5*a*s/h) bytes in 16-bit without
recomputation, about 2*s*b*h with gradient checkpointing; plus logits in float32. It is an
estimate (allocator fragmentation, kernels' workspaces and the CUDA context add more)."""

from __future__ import annotations

from typing import Any

from nlpforge.models import resolve_model_path
from nlpforge.recipe import Recipe
from nlpforge.tasks import task_for

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def model_report(recipe: Recipe) -> dict[str, Any]:
    import torch
    from accelerate import init_empty_weights
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from nlpforge.train.peft_methods import peft_config

    path = resolve_model_path(recipe.model.path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=recipe.model.trust_remote_code)
    classify = task_for(recipe).model_kind == "classifier"
    if classify:
        config.num_labels = 2
    with init_empty_weights():
        auto = AutoModelForSequenceClassification if classify else AutoModelForCausalLM
        model = auto.from_config(config, trust_remote_code=recipe.model.trust_remote_code)
        total_base = sum(p.numel() for p in model.parameters())
        out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
        tied = getattr(config.get_text_config(), "tie_word_embeddings", False)
        if tied and out_emb is not None and in_emb is not None and out_emb.weight is not in_emb.weight:
            total_base -= out_emb.weight.numel()  # on the meta device the tie is not made: count it once
        heads = [n for n in ("classifier", "score") if hasattr(model, n)] if classify else None
        peft_model = get_peft_model(model, peft_config(recipe, "SEQ_CLS" if classify else "CAUSAL_LM", modules_to_save=heads, tokenizer_path=path if recipe.peft.method != "prompt_tuning" else None))
        trainable, _ = peft_model.get_nb_trainable_parameters()
    del torch  # imported for the meta device only

    cfg = recipe.train
    weight_bytes = 0.55 if recipe.peft.method == "qlora" else BYTES[recipe.model.dtype]  # NF4 + double-quant constants
    b, s = cfg.batch_size, recipe.model.max_length
    h = getattr(config, "hidden_size", 0) or getattr(config, "d_model", 0)
    layers = getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0)
    heads_n = getattr(config, "num_attention_heads", 1) or 1
    vocab = getattr(config, "vocab_size", 0)
    act_bytes = BYTES[recipe.model.dtype] / 2  # the formula counts 16-bit activations
    per_layer = s * b * h * 2 if cfg.gradient_checkpointing else s * b * h * (34 + 5 * heads_n * s / max(h, 1))
    estimate = {
        "weights": total_base * weight_bytes,
        "trainable_weights_grads_adam": trainable * 16,  # fp32 master weight + grad + 2 Adam moments
        "activations": layers * per_layer * act_bytes,
        "logits": 0 if classify else b * s * vocab * 4 * 2,
    }
    estimate["total"] = sum(estimate.values()) * 1.1 + 0.5e9  # ~10% allocator slack + CUDA context
    return {
        "model": path,
        "task": recipe.train.task,
        "peft": recipe.peft.method,
        "params": total_base,
        "trainable_params": trainable,
        "trainable_share": trainable / max(total_base, 1),
        "dtype": recipe.model.dtype,
        "batch_size": b,
        "max_length": s,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "memory_gib": {k: v / 2**30 for k, v in estimate.items()},
    }
