"""The eval stage of chat runs: held-out loss and perplexity on assistant tokens, exact match and
overlap metrics of the last assistant reply, and the factuality of the generated answers
(against the reference and the prompt), for the base and the tuned model, through the engine
layer that serves them; then the recipe's gates and the HTML report. Text runs (continued
pretraining) get held-out loss and perplexity only."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from nlpforge.artifacts import EvalResults, PrepareMeta
from nlpforge.console import log
from nlpforge.engines.base import Completion, Sampling
from nlpforge.engines.bundle import BundleInfo
from nlpforge.engines.hf import HFEngine
from nlpforge.evals.gates import GateError, check_gates, gate_message
from nlpforge.evals.metrics import generation_metrics
from nlpforge.jsonl import read_jsonl, write_jsonl
from nlpforge.models import load_base, load_tokenizer, load_tuned, set_threads
from nlpforge.recipe import EvalConfig, GateConfig, Recipe


def evaluate(engine: HFEngine, rows: list[dict], max_new_tokens: int) -> tuple[dict[str, float], list[Completion]]:
    total, count = engine.nll(rows)
    mean_nll = total / max(count, 1)
    outputs = engine.chat([r["messages"][:-1] for r in rows], max_new_tokens)
    references = [r["messages"][-1]["content"] for r in rows]
    metrics = {
        "loss": round(mean_nll, 4),
        "perplexity": round(math.exp(min(mean_nll, 50)), 3),
        "stopped": round(sum(o.finish_reason == "stop" for o in outputs) / len(rows), 4),
        "samples": len(rows),
    }
    overlap = generation_metrics([o.text for o in outputs], references)
    metrics.update({k: round(v, 4) for k, v in overlap.items() if v is not None})
    return metrics, outputs


def factuality(engine: HFEngine, cfg: EvalConfig, rows: list[dict], texts: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-answer factuality parts and their means. The source an answer is checked against is its
    reference answer, the conversation so far (facts the user gave are not hallucinations) and the
    recipe's ``eval.factuality.context_files``."""
    from nlpforge.evals import factuality as F

    fc = cfg.factuality
    prompts = [r["messages"][:-1] for r in rows]
    context = [Path(f).read_text(encoding="utf-8") for f in fc.context_files]  # what every answer must stay true to (a product sheet)
    records = [
        {"source": "\n".join([m["content"] for m in p] + [r["messages"][-1]["content"]] + context), "output": t, "reference": r["messages"][-1]["content"]}
        for r, p, t in zip(rows, prompts, texts)
    ]
    if fc.samples:
        sampled = engine.chat_generate(prompts, Sampling(max_tokens=cfg.max_new_tokens, n=fc.samples, temperature=fc.temperature, seed=0))
        for rec, s in zip(records, sampled):
            rec["samples"] = [c.text for c in s]
    per = F.score_records(records, "source", "output", "reference", samples_field="samples" if fc.samples else None, background=True)
    if fc.samples and fc.embedding:
        for rec, parts in zip(records, per):
            parts["selfcheck_embedding"] = F.selfcheck_embedding(F.split_sentences(rec["output"]), rec["samples"])
    if fc.token_uncertainty:
        greedy = engine.chat_generate(prompts, Sampling(max_tokens=cfg.max_new_tokens, logprobs=0))
        for g, parts in zip(greedy, per):
            c = g[0]
            parts.update(F.token_uncertainty([lp.logprob for lp in c.logprobs or []], c.entropies))
    if fc.judge is not None:
        key = os.environ.get(fc.judge.api_key_env, "") if fc.judge.api_key_env else "EMPTY"
        verdicts = F.llm_judge([(rec["source"], rec["output"]) for rec in records], fc.judge.base_url, fc.judge.model, key or "EMPTY")
        for v, parts in zip(verdicts, per):
            parts.update(v)
    checked: list[float | None] = [None] * len(per)
    if fc.checker:
        from nlpforge.evals.checker import Checker

        checked = Checker.load(fc.checker).score_records(records)
    for parts, ck in zip(per, checked):
        if not parts.get("empty_output"):
            parts["hallucination_score"] = F.hallucination_score(parts)
            if fc.checker:
                from nlpforge.evals.checker import combine_scores

                parts["checker_unsupported"] = ck
                parts["hallucination_score"] = combine_scores(ck, parts["hallucination_score"])
    summary = {k: v["mean"] for k, v in F.summarize(per).items() if isinstance(v, dict) and v["mean"] is not None}
    summary.pop("answer_exact", None)  # exact_match already says it
    # an empty answer has no defined score; count it so a model that says nothing cannot look faithful
    summary["hallucination_defined"] = round(sum(p.get("hallucination_score") is not None for p in per) / max(len(per), 1), 4)
    return summary, per


def _models(recipe: Recipe, adapter: Path) -> list[tuple[str, Any]]:
    """(name, loader) of the models to evaluate: the base when compared, then the tuned one."""
    loaders = [("base", lambda: load_base(recipe))] if recipe.eval.compare_base else []
    return [*loaders, ("tuned", lambda: load_tuned(recipe, adapter))]


def judge(results: dict[str, Any], gates: dict[str, GateConfig]) -> dict[str, Any]:
    """``delta`` (tuned - base, when the base was evaluated), the gate rows and ``passed``, added to ``results``."""
    if results.get("base"):
        shared = [k for k in results["tuned"] if k != "samples" and isinstance(results["base"].get(k), int | float)]
        results["delta"] = {k: round(results["tuned"][k] - results["base"][k], 4) for k in shared}
    results["gates"] = check_gates(gates, results)
    results["passed"] = all(g["passed"] for g in results["gates"])
    return results


def _finish(recipe: Recipe, results: dict[str, Any], out_dir: Path) -> EvalResults:
    """Deltas, lm-eval, gates; write results.json and the report; raise if a gate failed."""
    cfg = recipe.eval
    res = EvalResults.model_validate(judge(results, cfg.gates))
    res.write(out_dir)
    if cfg.report:
        from nlpforge.evals.report import write_report

        write_report(out_dir.parent, out_dir / "report.html")
    if not res.passed:
        raise GateError(gate_message(results["gates"]))
    return res


def run_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    cfg = recipe.eval
    set_threads(recipe.train.threads)
    tok = load_tokenizer(recipe)
    info = BundleInfo.for_model("chat", PrepareMeta.read(prepared).stop_ids, max_length=recipe.model.max_length)
    rows = [r for r in read_jsonl(prepared / "eval.jsonl") if r["messages"][-1]["role"] == "assistant"][: cfg.max_samples]
    results: dict[str, Any] = {"task": "chat"}
    outputs: dict[str, list[Completion]] = {}
    facts: dict[str, list[dict]] = {}
    for name, load in _models(recipe, adapter):
        log(f"eval: {name} model on {len(rows)} held-out conversations")
        engine = HFEngine.from_model(load(), tok, info, cfg.batch_size)
        results[name], outputs[name] = evaluate(engine, rows, cfg.max_new_tokens)
        if cfg.factuality.enabled:
            log(f"eval: factuality of the {name} model's answers")
            summary, facts[name] = factuality(engine, cfg, rows, [o.text for o in outputs[name]])
            results[name].update({k: round(v, 4) for k, v in summary.items()})
    if cfg.lm_eval is not None:
        from nlpforge.evals.harness import run_lm_eval

        results["lm_eval"] = run_lm_eval(cfg.lm_eval, recipe.model.path, adapter, recipe.model.dtype)
    samples = []
    for i, r in enumerate(rows):
        sample = {"source": r.get("source"), "reference": r["messages"][-1]["content"], **{name: out[i].text for name, out in outputs.items()}}
        sample.update({f"{name}_factuality": f[i] for name, f in facts.items()})
        samples.append(sample)
    write_jsonl(out_dir / "samples.jsonl", samples)
    res = _finish(recipe, results, out_dir)
    keys = ["loss", "exact_match"] + (["hallucination_score"] if "hallucination_score" in res.tuned else [])
    return {f"{name}_{k}": getattr(res, name)[k] for name in outputs for k in keys}


def compare_bundles(cfg: EvalConfig, rows: list[dict], bundles: dict[str, Path], threads: int | None = None) -> tuple[dict[str, Any], list[dict]]:
    """The chat eval (loss, overlap metrics, factuality) of exported bundles on the same rows,
    each loaded the way the hf engine serves it; ``({name: metrics}, samples)``."""
    from nlpforge.engines.bundle import read_bundle

    set_threads(threads)
    results: dict[str, Any] = {"task": "chat"}
    texts: dict[str, list[str]] = {}
    for name, path in bundles.items():
        log(f"eval: {name} ({path}) on {len(rows)} held-out conversations")
        engine = HFEngine.from_bundle(read_bundle(path), cfg.batch_size, threads)
        results[name], outputs = evaluate(engine, rows, cfg.max_new_tokens)
        texts[name] = [o.text for o in outputs]
        if cfg.factuality.enabled:
            summary, _ = factuality(engine, cfg, rows, texts[name])
            results[name].update({k: round(v, 4) for k, v in summary.items()})
    samples = [{"source": r.get("source"), "reference": r["messages"][-1]["content"], **{n: t[i] for n, t in texts.items()}} for i, r in enumerate(rows)]
    return results, samples


def run_text_eval(recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
    """Continued pretraining: held-out loss and perplexity per token, base against tuned."""
    set_threads(recipe.train.threads)
    tok = load_tokenizer(recipe, require_template=False)
    info = BundleInfo.for_model("chat", PrepareMeta.read(prepared).stop_ids, max_length=recipe.model.max_length)
    rows = read_jsonl(prepared / "eval.jsonl")[: recipe.eval.max_samples]
    results: dict[str, Any] = {"task": "chat"}
    for name, load in _models(recipe, adapter):
        log(f"eval: {name} model on {len(rows)} held-out windows")
        total, count = HFEngine.from_model(load(), tok, info, recipe.eval.batch_size).nll(rows)
        mean = total / max(count, 1)
        results[name] = {"loss": round(mean, 4), "perplexity": round(math.exp(min(mean, 50)), 3), "samples": len(rows)}
    res = _finish(recipe, results, out_dir)
    return {f"{name}_loss": getattr(res, name)["loss"] for name in ("base", "tuned") if getattr(res, name)}
