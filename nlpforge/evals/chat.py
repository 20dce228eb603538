"""Held-out loss/perplexity on assistant tokens, exact match and overlap metrics of the last
assistant reply, and the factuality of the generated answers (against the reference and the
prompt), for the base and the tuned model, through the engine layer; then the recipe's gates
and the HTML report."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from nlpforge.console import log
from nlpforge.data.chat import load_tokenizer
from nlpforge.engines.hf import HFEngine
from nlpforge.evals.gates import GateError, check_gates, gate_message
from nlpforge.evals.metrics import generation_metrics
from nlpforge.recipe import EvalConfig, Recipe
from nlpforge.runs import atomic_file, atomic_write_json
from nlpforge.train.sft import load_base, load_tuned, read_jsonl, set_threads


def normalize_answer(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def evaluate(engine: HFEngine, rows: list[dict], max_new_tokens: int) -> tuple[dict[str, float], list[Any]]:
    total, count = engine.nll(rows)
    mean_nll = total / max(count, 1)
    prompts = [r["messages"][:-1] for r in rows]
    outputs = engine.chat(prompts, max_new_tokens)
    references = [r["messages"][-1]["content"] for r in rows]
    matches = [normalize_answer(o.text) == normalize_answer(ref) for o, ref in zip(outputs, references)]
    metrics = {
        "loss": round(mean_nll, 4),
        "perplexity": round(math.exp(min(mean_nll, 50)), 3),
        "exact_match": round(sum(matches) / len(rows), 4),
        "stopped": round(sum(o.finish_reason == "stop" for o in outputs) / len(rows), 4),
        "samples": len(rows),
    }
    overlap = generation_metrics([o.text for o in outputs], references)
    metrics.update({k: round(v, 4) for k, v in overlap.items() if k != "exact_match" and v is not None})
    return metrics, outputs


def factuality(engine: HFEngine, cfg: EvalConfig, rows: list[dict], texts: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-answer factuality parts and their means. The source an answer is checked against is its
    reference answer plus the conversation so far (facts the user gave are not hallucinations)."""
    from nlpforge.evals import factuality as F

    fc = cfg.factuality
    prompts = [r["messages"][:-1] for r in rows]
    records = [
        {"source": "\n".join([m["content"] for m in p] + [r["messages"][-1]["content"]]), "output": t, "reference": r["messages"][-1]["content"]}
        for r, p, t in zip(rows, prompts, texts)
    ]
    if fc.samples:
        sampled = engine.generate_scored(prompts, cfg.max_new_tokens, n=fc.samples, temperature=fc.temperature, seed=0)
        for rec, s in zip(records, sampled):
            rec["samples"] = [x["text"] for x in s]
    per = F.score_records(records, "source", "output", "reference", samples_field="samples" if fc.samples else None)
    if fc.samples and fc.embedding:
        for rec, parts in zip(records, per):
            parts["selfcheck_embedding"] = F.selfcheck_embedding(F.split_sentences(rec["output"]), rec["samples"])
    if fc.token_uncertainty:
        greedy = engine.generate_scored(prompts, cfg.max_new_tokens)
        for g, parts in zip(greedy, per):
            parts.update(F.token_uncertainty(g[0]["logprobs"], g[0]["entropies"]))
    if fc.judge is not None:
        key = os.environ.get(fc.judge.api_key_env, "") if fc.judge.api_key_env else "EMPTY"
        verdicts = F.llm_judge([(rec["source"], rec["output"]) for rec in records], fc.judge.base_url, fc.judge.model, key or "EMPTY")
        for v, parts in zip(verdicts, per):
            parts.update(v)
    for parts in per:
        if not parts.get("empty_output"):
            parts["hallucination_score"] = F.hallucination_score(parts)
    summary = {k: v["mean"] for k, v in F.summarize(per).items() if isinstance(v, dict) and v["mean"] is not None}
    summary.pop("answer_exact", None)  # exact_match already says it
    # an empty answer has no defined score; count it so a model that says nothing cannot look faithful
    summary["hallucination_defined"] = round(sum(p.get("hallucination_score") is not None for p in per) / max(len(per), 1), 4)
    return summary, per


def run_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.eval
    set_threads(recipe.train.threads)
    tok = load_tokenizer(recipe)
    meta = json.loads((prepared / "meta.json").read_text())
    stop_ids = sorted({meta["end_of_turn_id"], meta["eos_token_id"]})
    rows = [r for r in read_jsonl(prepared / "eval.jsonl") if r["messages"][-1]["role"] == "assistant"][: cfg.max_samples]
    results: dict[str, Any] = {"task": "chat"}
    outputs: dict[str, list] = {}
    facts: dict[str, list[dict]] = {}
    models = (["base"] if cfg.compare_base else []) + ["tuned"]
    for name in models:
        log(f"eval: {name} model on {len(rows)} held-out conversations")
        model = load_base(recipe) if name == "base" else load_tuned(recipe, adapter)
        engine = HFEngine(model, tok, stop_ids, cfg.batch_size)
        results[name], outputs[name] = evaluate(engine, rows, cfg.max_new_tokens)
        if cfg.factuality.enabled:
            log(f"eval: factuality of the {name} model's answers")
            summary, facts[name] = factuality(engine, cfg, rows, [o.text for o in outputs[name]])
            results[name].update({k: round(v, 4) for k, v in summary.items()})
    if "base" in results:
        shared = [k for k in results["tuned"] if k != "samples" and isinstance(results["base"].get(k), int | float)]
        results["delta"] = {k: round(results["tuned"][k] - results["base"][k], 4) for k in shared}
    if cfg.lm_eval is not None:
        from nlpforge.evals.harness import run_lm_eval

        results["lm_eval"] = run_lm_eval(cfg.lm_eval, recipe.model.path, adapter, recipe.model.dtype)
    results["gates"] = check_gates(cfg.gates, results)
    results["passed"] = all(g["passed"] for g in results["gates"])
    with atomic_file(out_dir / "samples.jsonl") as f:
        for i, r in enumerate(rows):
            sample = {"source": r.get("source"), "reference": r["messages"][-1]["content"]}
            sample.update({name: outputs[name][i].text for name in models})
            for name in facts:
                sample[f"{name}_factuality"] = facts[name][i]
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    atomic_write_json(out_dir / "results.json", results)
    if cfg.report:
        from nlpforge.evals.report import write_report

        write_report(out_dir.parent, out_dir / "report.html")
    if not results["passed"]:
        raise GateError(gate_message(results["gates"]))
    keys = ["loss", "exact_match"] + (["hallucination_score"] if "hallucination_score" in results["tuned"] else [])
    return {f"{name}_{k}": results[name][k] for name in models for k in keys}
