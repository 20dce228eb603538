"""Export: merge the LoRA adapter, write a vLLM-ready bundle, and check the train/serve
contract on it before anyone serves it (docs/architecture.md).

The bundle holds safetensors weights, the tokenizer with its chat template, a
``generation_config.json`` whose EOS list holds the template's end-of-turn token (so the
served model stops), ``nlpforge.json`` (lineage, eval summary, serve flags) and a model card.
"""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoConfig

from nlpforge import __version__
from nlpforge.artifacts import BundleMeta, EvalResults, Manifest, PrepareMeta, ServeFlags
from nlpforge.atomic import atomic_dir
from nlpforge.console import log
from nlpforge.data.chat import prompt_ids, render
from nlpforge.data.stream import training_rows
from nlpforge.engines.vllm import to_flags
from nlpforge.errors import ContractError
from nlpforge.evals.drift import build_reference, last_user_text, write_reference
from nlpforge.jsonl import iter_jsonl, read_jsonl
from nlpforge.models import load_base_as_trained, load_tokenizer, set_threads, torch_dtype
from nlpforge.recipe import Recipe
from nlpforge.runs import now, package_versions

DRIFT_PROMPTS = 50_000  # training prompts drift.json is built from


def serve_flags(recipe: Recipe, dtype: str, max_model_len: int, served_name: str) -> ServeFlags:
    """What the bundle recommends for serving: the recipe's ``serve`` section, and the vLLM flags
    (`nlpforge serve --engine vllm-server` and the printed `vllm serve` use the same)."""
    args = ["--served-model-name", served_name, "--max-model-len", str(max_model_len), "--dtype", dtype, "--generation-config", "auto"]
    args += to_flags({k: v for k, v in recipe.serve.vllm_overrides().items() if k != "max_model_len"})
    return ServeFlags(**recipe.serve.model_dump(), vllm_args=args)


def resolve_bundle_args(bundle: Path, args: list[str]) -> list[str]:
    """Adapter paths in the flags are relative to the bundle (``name=adapters/name``): anchor them."""
    return [f"{a.split('=', 1)[0]}={bundle / a.split('=', 1)[1]}" if "=adapters/" in a else a for a in args]


def vllm_serve_command(bundle: Path, args: list[str]) -> str:
    return shlex.join(["vllm", "serve", str(bundle), *resolve_bundle_args(bundle, args)])


@torch.inference_mode()
def _merge_checked(recipe: Recipe, adapter: Path, rows: list[dict]) -> Any:
    """Merge in float32, then compare merged logits with base+adapter logits."""
    peft_model = PeftModel.from_pretrained(load_base_as_trained(recipe, "float32"), str(adapter)).eval()
    ids = [torch.tensor([r["input_ids"][: recipe.model.max_length]], device=peft_model.device) for r in rows]
    before = [peft_model(input_ids=x).logits for x in ids]
    merged = peft_model.merge_and_unload().eval()
    diff = max(float((merged(input_ids=x).logits - b).abs().max()) for x, b in zip(ids, before))
    if diff > recipe.export.merge_tolerance:
        raise ContractError(f"merged model differs from base+adapter by {diff:.2e} (> export.merge_tolerance={recipe.export.merge_tolerance})")
    return merged, diff


def _write_greedy_default(path: Path) -> None:
    """Make greedy decoding the served default. vLLM takes `temperature` from
    generation_config.json (its own default is 1.0); transformers refuses to *save*
    temperature without do_sample, though it loads it, so the key is written here."""
    gen = json.loads(path.read_text(encoding="utf-8"))
    gen.update({"do_sample": False, "temperature": 0.0})
    path.write_text(json.dumps(gen, indent=2) + "\n", encoding="utf-8")


def check_contract(bundle: Path, rows: list[dict], stop_ids: list[int], eot_id: int | None, max_model_len: int) -> dict[str, Any]:
    """Re-load the written bundle as a server would and check it renders the training ids (chat
    rows) and stops where training stopped."""
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(bundle)
    for r in rows:
        if "messages" not in r:  # text runs: no template to check
            continue
        ids, _ = render(tok, r["messages"])
        if ids != r["input_ids"]:
            raise ContractError(f"{bundle}: the bundle's tokenizer renders {r.get('source')} to different ids than training did")
        prompt = prompt_ids(tok, r["messages"][:-1])
        if ids[: len(prompt)] != prompt:
            raise ContractError(f"{bundle}: the generation prompt of {r.get('source')} is not a prefix of its training ids")
    gen = GenerationConfig.from_pretrained(bundle)
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    for stop in [eot_id] if eot_id is not None else stop_ids:
        if stop not in eos:
            raise ContractError(f"{bundle}/generation_config.json: eos_token_id {eos} lacks the end-of-turn id {stop}; the served model would not stop")
    config = AutoConfig.from_pretrained(bundle)
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and max_model_len > limit:
        raise ContractError(f"serve.max_model_len={max_model_len} exceeds the model's max_position_embeddings={limit}")
    return {"samples_checked": len(rows), "stop_token_ids": stop_ids, "max_model_len": max_model_len}


def run_export(recipe: Recipe, prepared: Path, adapter: Path, eval_dir: Path, manifest: Manifest, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.export
    set_threads(recipe.train.threads)
    meta = PrepareMeta.read(prepared)
    tok = load_tokenizer(recipe, require_template=meta.format != "text")
    stop_ids = meta.stop_ids
    rows = read_jsonl(prepared / "eval.jsonl")[: cfg.check_samples]
    dtype = cfg.dtype or recipe.model.dtype
    max_model_len = recipe.serve.max_model_len or recipe.model.max_length

    log("export: merging adapter and checking merged against base+adapter")
    model, merge_diff = _merge_checked(recipe, adapter, rows)
    if cfg.format == "adapter":
        from nlpforge.export.adapters import check_adapter

        check_adapter(adapter, cfg.max_lora_rank)  # refuse before writing anything
        model = load_base_as_trained(recipe, "float32")  # the bundle holds the base the adapter was trained on; the adapter goes beside it
    model = model.to(torch_dtype(dtype))
    model.config.eos_token_id = stop_ids
    model.config.pad_token_id = tok.pad_token_id
    gen = model.generation_config
    gen.eos_token_id, gen.pad_token_id, gen.max_new_tokens = stop_ids, tok.pad_token_id, cfg.max_new_tokens
    sampled = cfg.temperature > 0
    # greedy: None, not 0 (a base that is itself a bundle, in improve, loads with the temperature 0 that transformers refuses to save; it is written back below)
    gen.do_sample, gen.temperature, gen.top_p = sampled, cfg.temperature if sampled else None, cfg.top_p if sampled else None

    results = EvalResults.read(eval_dir) if EvalResults.path_in(eval_dir).is_file() else None
    # adapter bundles: `model: NAME` picks the tuned adapter, `NAME-base` the base
    served_name = f"{recipe.name}-base" if cfg.format == "adapter" else recipe.name
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if cfg.temperature == 0:
            _write_greedy_default(tmp / "generation_config.json")
        contract = check_contract(tmp, rows, stop_ids, meta.end_of_turn_id, max_model_len)
        bundle_meta = BundleMeta(
            name=served_name, task="chat", created=now(), nlpforge_version=__version__, base_model=recipe.model.path, dtype=dtype, merged=True,
            # QLoRA: the base is the NF4 weights dequantized, not the original checkpoint
            base_weights="nf4-dequantized" if recipe.peft.method == "qlora" else "original",
            end_of_turn_token=meta.end_of_turn_token or meta.eos_token, stop_token_ids=stop_ids, max_model_len=max_model_len, merge_max_abs_diff=merge_diff,
            contract=contract, serve=serve_flags(recipe, dtype, max_model_len, served_name), eval=results.summary() if results else {},
            lineage=manifest.lineage(recipe.seed, package_versions()),
        )
        bundle_meta.write(tmp)
        if cfg.format == "adapter":
            from nlpforge.export.adapters import add_adapter

            bundle_meta.merged = False
            bundle_meta.write(tmp)
            add_adapter(tmp, recipe.name, adapter, cfg.max_lora_rank)
            bundle_meta = BundleMeta.read(tmp)
        if cfg.drift != "off":
            log("export: drift reference (drift.json) from the training prompts")
            write_reference(tmp, build_reference(_train_prompts(recipe, prepared, meta),
                                                 [last_user_text(r["messages"]) for r in read_jsonl(prepared / "eval.jsonl") if "messages" in r],
                                                 embed=cfg.drift == "embedding"))
        (tmp / "README.md").write_text(model_card(recipe, bundle_meta), encoding="utf-8")
    return {"bundle": str(out_dir), "merge_max_abs_diff": merge_diff, "samples_checked": contract["samples_checked"]}


def _train_prompts(recipe: Recipe, prepared: Path, meta: PrepareMeta) -> list[str]:
    """The last user turn of the first DRIFT_PROMPTS training rows (the prepared split, or the
    corpus rows a streamed run trained on): enough for a vocabulary and a centroid, and flat
    on a corpus of any size."""
    if meta.streaming_corpus:
        rows: Iterator[dict] = (r for r in training_rows(recipe, prepared / meta.streaming_corpus) if isinstance(r.get(recipe.data.messages_field), list))
        messages = (r[recipe.data.messages_field] for r in rows)
    else:
        messages = (r["messages"] for r in iter_jsonl(prepared / "train.jsonl") if "messages" in r)
    return [last_user_text(m) for m in itertools.islice(messages, DRIFT_PROMPTS)]


def model_card(recipe: Recipe, meta: BundleMeta) -> str:
    ev = meta.eval
    rows = "\n".join(
        f"| {k} | {ev.get('base', {}).get(k, '-')} | {ev['tuned'].get(k)} |" for k in ("loss", "perplexity", "exact_match", "stopped")
    ) if "tuned" in ev else "| (no eval) | | |"
    method = {"qlora": "QLoRA (LoRA on an NF4 4-bit base)", "lora": "LoRA"}.get(recipe.peft.method, recipe.peft.method)
    if meta.merged:
        how = "merged into the base weights"
    else:
        names = ", ".join(f"`{n}`" for n in meta.adapters)
        how = f"kept as a separate adapter ({names} in `adapters/`) beside the base weights, for vLLM multi-LoRA"
    if meta.base_weights == "nf4-dequantized":
        how += " (the base weights are the NF4-quantized ones dequantized: what the adapter was trained against)"
    return f"""# {recipe.name}

Fine-tuned from `{recipe.model.path}` with {method} (r={recipe.peft.r}, alpha={recipe.peft.alpha}), {how}, by nlpforge {__version__}.

## Held-out evaluation

| metric | base | tuned |
|---|---|---|
{rows}

## Serve

    nlpforge serve {{this folder}}
    {vllm_serve_command(Path('.'), meta.serve.vllm_args)}

Stops on `{meta.end_of_turn_token}` (ids {meta.stop_token_ids} in `generation_config.json`).
Lineage (recipe hash, input and artifact hashes, package versions, seed) is in `{BundleMeta.FILE}`.
"""
