"""Export of a classification run: the adapter and its trained head merged into the encoder, as a
classification bundle: ``config.json`` with id2label / label2id / problem_type, the tokenizer,
and ``nlpforge.json`` with task, labels, multi_label, threshold and max_length. The merged model
is checked against base+adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel

from nlpforge import __version__
from nlpforge.artifacts import BundleMeta, EvalResults, Manifest, PrepareMeta
from nlpforge.atomic import atomic_dir
from nlpforge.console import log
from nlpforge.errors import ContractError
from nlpforge.jsonl import read_jsonl
from nlpforge.models import load_classifier, load_tokenizer, set_threads, torch_dtype
from nlpforge.recipe import Recipe
from nlpforge.runs import now, package_versions


@torch.inference_mode()
def run_export(recipe: Recipe, prepared: Path, adapter: Path, eval_dir: Path, manifest: Manifest, out_dir: Path) -> dict[str, Any]:
    set_threads(recipe.train.threads)
    meta = PrepareMeta.read(prepared)
    labels, multi = meta.labels, meta.multi_label
    tok = load_tokenizer(recipe, require_template=False)
    rows = read_jsonl(prepared / "eval.jsonl")[: recipe.export.check_samples]
    enc = tok([r[recipe.data.text_field] for r in rows], padding=True, truncation=True, max_length=recipe.model.max_length, return_tensors="pt")

    log("export: merging adapter and head, checking merged against base+adapter")
    peft_model = PeftModel.from_pretrained(load_classifier(recipe, labels, multi, "float32"), str(adapter)).eval()
    before = peft_model(**enc).logits
    model = peft_model.merge_and_unload().eval()
    diff = float((model(**enc).logits - before).abs().max())
    if diff > recipe.export.merge_tolerance:
        raise ContractError(f"merged classifier differs from base+adapter by {diff:.2e} (> export.merge_tolerance={recipe.export.merge_tolerance})")
    dtype = recipe.export.dtype or recipe.model.dtype
    model = model.to(torch_dtype(dtype))
    results = EvalResults.read(eval_dir) if EvalResults.path_in(eval_dir).is_file() else None
    # the operating point eval selected (eval.threshold), else the training threshold for multi-label
    threshold = getattr(results, "threshold", None) if results else None
    bundle_meta = BundleMeta(
        task="classification", name=recipe.name, labels=labels, multi_label=multi, threshold=threshold if threshold is not None else (recipe.train.threshold if multi else None),
        max_length=recipe.model.max_length, created=now(), nlpforge_version=__version__, base_model=recipe.model.path, dtype=dtype, merged=True,
        merge_max_abs_diff=diff, eval=results.summary() if results else {}, lineage=manifest.lineage(recipe.seed, package_versions()),
    )
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        config = json.loads((tmp / "config.json").read_text())
        if config.get("id2label", {}).get("0") != labels[0] or config.get("problem_type") is None:
            raise ContractError(f"{tmp}/config.json lacks the label map or problem_type")
        bundle_meta.write(tmp)
        m = bundle_meta.eval.get("metrics", {})
        (tmp / "README.md").write_text(
            f"# {recipe.name}\n\nText classifier ({'multi-label' if multi else 'single-label'}, {len(labels)} labels: {', '.join(labels)}) "
            f"fine-tuned from `{recipe.model.path}` with {recipe.peft.method}, merged, by nlpforge {__version__}.\n\n"
            f"Held-out accuracy {m.get('accuracy', '-')}, macro-F1 {m.get('macro_f1', '-')} "
            f"(majority class: accuracy {bundle_meta.eval.get('majority', {}).get('accuracy', '-')}).\n",
            encoding="utf-8",
        )
    return {"bundle": str(out_dir), "merge_max_abs_diff": diff, "labels": len(labels)}
