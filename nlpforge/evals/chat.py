"""Held-out loss/perplexity on assistant tokens, and exact match of the last assistant reply,
for the base and the tuned model, through the engine layer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from nlpforge.console import log
from nlpforge.data.chat import load_tokenizer
from nlpforge.engines.hf import HFEngine
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_file, atomic_write_json
from nlpforge.train.sft import load_base, load_tuned, read_jsonl, set_threads


def normalize_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def evaluate(engine: HFEngine, rows: list[dict], max_new_tokens: int) -> tuple[dict[str, float], list[Any]]:
    total, count = engine.nll(rows)
    mean_nll = total / max(count, 1)
    prompts = [r["messages"][:-1] for r in rows]
    outputs = engine.chat(prompts, max_new_tokens)
    matches = [normalize_answer(o.text) == normalize_answer(r["messages"][-1]["content"]) for o, r in zip(outputs, rows)]
    metrics = {
        "loss": round(mean_nll, 4),
        "perplexity": round(math.exp(min(mean_nll, 50)), 3),
        "exact_match": round(sum(matches) / len(rows), 4),
        "stopped": round(sum(o.finish_reason == "stop" for o in outputs) / len(rows), 4),
        "samples": len(rows),
    }
    return metrics, outputs


def run_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.eval
    set_threads(recipe.train.threads)
    tok = load_tokenizer(recipe)
    meta = json.loads((prepared / "meta.json").read_text())
    stop_ids = sorted({meta["end_of_turn_id"], meta["eos_token_id"]})
    rows = [r for r in read_jsonl(prepared / "eval.jsonl") if r["messages"][-1]["role"] == "assistant"][: cfg.max_samples]
    results: dict[str, Any] = {}
    outputs: dict[str, list] = {}
    models = (["base"] if cfg.compare_base else []) + ["tuned"]
    for name in models:
        log(f"eval: {name} model on {len(rows)} held-out conversations")
        model = load_base(recipe) if name == "base" else load_tuned(recipe, adapter)
        results[name], outputs[name] = evaluate(HFEngine(model, tok, stop_ids, cfg.batch_size), rows, cfg.max_new_tokens)
    if "base" in results:
        results["delta"] = {k: round(results["tuned"][k] - results["base"][k], 4) for k in ("loss", "perplexity", "exact_match", "stopped")}
    with atomic_file(out_dir / "samples.jsonl") as f:
        for i, r in enumerate(rows):
            sample = {"source": r.get("source"), "reference": r["messages"][-1]["content"]}
            sample.update({name: outputs[name][i].text for name in models})
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    atomic_write_json(out_dir / "results.json", results)
    return {f"{name}_{k}": results[name][k] for name in models for k in ("loss", "exact_match")}
