"""The tables the CLI prints (rich): run results, clean and score reports, the model check,
tune trials and the factuality summary. Kept apart from ``cli.py`` so each verb stays a thin
function: parse, call, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from nlpforge.artifacts import BundleMeta, EvalResults
from nlpforge.console import out


def table(title: str, columns: list[str], rows: list[list[Any]], right: bool = False) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if right else "left")
    for row in rows:
        t.add_row(*[str(x) for x in row])
    out.print(t, soft_wrap=True)


def run_results(root: Path, report: list[dict]) -> None:
    summary = [[i["stage"], i["status"], i["seconds"], ", ".join(f"{k}={v}" for k, v in (i["summary"] or {}).items() if not isinstance(v, dict))] for i in report]
    table(f"run directory: {root}", ["stage", "status", "seconds", "summary"], summary)
    eval_dir = root / "eval"
    if EvalResults.path_in(eval_dir).is_file():
        res = EvalResults.read(eval_dir)
        if res.task == "classification":
            extra = res.model_dump()
            rows = [[k, extra["metrics"][k], extra["majority"][k]] for k in ("accuracy", "macro_f1", "micro_f1")]
            table(f"held-out eval ({extra['metrics']['samples']} rows, {len(extra['labels'])} labels)", ["metric", "tuned", f"majority ({extra['majority']['prediction']})"], rows, right=True)
        else:
            cols = [c for c in ("base", "tuned", "delta") if getattr(res, c) is not None]
            keys = [k for k in ("loss", "perplexity", "exact_match", "stopped", "hallucination_score") if k in res.tuned]
            table("held-out eval", ["metric", *cols], [[k, *[getattr(res, c).get(k, "") for c in cols]] for k in keys], right=True)
    bundle = root / "export"
    if BundleMeta.path_in(bundle).is_file():
        from nlpforge.export.bundle import vllm_serve_command

        meta = BundleMeta.read(bundle)
        out.print(f"\nServe it:  [bold]nlpforge serve {bundle}[/bold]")
        if meta.task == "chat":
            out.print(f"or with vLLM alone:  {vllm_serve_command(bundle, meta.serve.vllm_args)}", highlight=False)


def model_report(path: str, rep: dict[str, Any]) -> None:
    rows: list[list[Any]] = [["parameters", f"{rep['params']:,}"], ["trainable parameters", f"{rep['trainable_params']:,} ({rep['trainable_share']:.2%})"]]
    rows += [[f"GPU memory estimate: {k}", f"{v:.2f} GiB"] for k, v in rep["memory_gib"].items()]
    table(f"model: {path} ({rep['task']}, {rep['peft']}, {rep['dtype']}, batch {rep['batch_size']} x {rep['max_length']} tokens)", ["quantity", "value"], rows)


def clean_report(report: dict, written: str | None) -> None:
    rows = [[reason, item["docs"], item["chars"], (item["examples"] or [""])[0][:100]] for reason, item in report["rejected"].items()]
    title = f"clean: {report['kept_docs']} kept, {report['rejected_docs']} rejected of {report['input_docs']}" + ("" if written else " (dry run: nothing written)")
    table(title, ["reason", "docs", "chars", "example"], rows)
    if report["pii_redacted"]:
        out.print("PII (" + report["pii_operator"] + "): " + ", ".join(f"{k}={v}" for k, v in report["pii_redacted"].items()))
    if report.get("pii_audit") and report.get("pii_preset") == "hipaa-safe-harbor":
        rows = [[row["identifier"], ", ".join(row["entities"]) or "-", row["count"], row["status"]] for row in report["pii_audit"].values()]
        table("HIPAA Safe Harbor identifiers (45 CFR 164.514(b)(2))", ["identifier", "entities", "removed", "status"], rows)
    if written:
        out.print(f"wrote {written}")


def pii_train_summary(s: dict[str, Any]) -> None:
    out.print(f"fine-tuned {s['base']} NER on {s['synthetic']} synthetic + {s['annotated']} annotated texts, {s['epochs']} epochs, losses {s['losses']}")
    out.print(f"wrote {s['out']}: use it with clean.spacy_model: {s['out']}", highlight=False)


def pii_spans(spans: list[Any], redacted: str) -> None:
    table(f"{len(spans)} PII spans", ["start", "end", "entity", "text"], [[s.start, s.end, s.entity, s.text] for s in spans])
    out.print(redacted, highlight=False, markup=False)


def factuality_summary(summary: dict[str, Any], n: int, source: Path, written: Path) -> None:
    rows = [[k, "-" if v["mean"] is None else f"{v['mean']:.4f}", v["defined"]] for k, v in summary.items() if isinstance(v, dict)]
    table(f"factuality of {n} outputs ({source})", ["part", "mean", "defined for"], rows)
    out.print(f"wrote {written}")


def tune_trials(res: dict[str, Any]) -> None:
    keys, metric = list(res["best_params"]), res["metric"]
    rows = []
    for row in sorted(res["trials"], key=lambda x: x[metric], reverse=res["direction"] == "maximize"):
        mark = " *" if row["trial"] == res["best_trial"] else ""
        rows.append([f"{row['trial']}{mark}", *[f"{row[k]:.4g}" if isinstance(row[k], float) else row[k] for k in keys], f"{row[metric]:.4f}", row["train_loss"], row["seconds"]])
    table(f"tune: {len(res['trials'])} trials, {res['direction']} {metric}", ["trial", *keys, metric, "train_loss", "seconds"], rows, right=True)
    out.print(f"best recipe: {res['best_recipe']}")


def score_summary(s: dict) -> None:
    rows: list[list[Any]] = [[f"rejected: {reason}", count] for reason, count in s["error_reasons"].items()]
    for key in ("label_distribution", "finish_reasons", "status_codes"):
        rows += [[f"{key.replace('_', ' ')}: {k}", v] for k, v in s.get(key, {}).items()]
    for key in ("perplexity", "hallucination_score"):
        if key in s:
            rows.append([key, ", ".join(f"{k}={v:.4g}" for k, v in s[key].items())])
    table(f"score: {s['rows']} rows written, {s['errors']} rejected" + (f", {s['rows_per_s']} rows/s" if s.get("rows_per_s") else ""), ["item", "value"], rows)
    out.print(f"wrote {s['output']}" + (f"; rejects in {s['rejects']}" if s["errors"] else ""), highlight=False)


def models(rows: list[dict[str, Any]]) -> None:
    table("models", ["name", "version", "stages", "task", "registered"], [[r["name"], r["version"], ",".join(r["stages"]), r["task"] or f"broken: {r['error']}", r["registered"]] for r in rows])


def improve_report(rec: dict[str, Any]) -> None:
    """Candidate against production on each held-out set, one row per metric, with its gates."""
    sets = {"feedback": "feedback held-out", "recipe": "recipe held-out"}
    comp = rec.get("comparison", {})

    def num(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, int | float) else "-"

    rows = []
    for s, c in comp.items():
        gates: dict[str, list[str]] = {}
        for g in c.get("gates", []):
            gates.setdefault(g["metric"], []).append(f"{g['rule']} {g['bound']}: {'pass' if g['passed'] else 'FAIL'}")
        keys = [k for k in ("loss", "exact_match", "f1", "hallucination_score", "stopped") if k in c.get("tuned", {})]
        for k in keys + sorted(set(gates) - set(keys)):
            rows.append([sets[s], k, num((c.get("base") or {}).get(k)), num(c["tuned"].get(k)), num((c.get("delta") or {}).get(k)), "; ".join(gates.get(k, []))])
    prod = rec["production"]
    table(f"improve {prod['name']}@{prod['version']}: {rec['feedback']['train']['examples']} {rec['method']} rows",
          ["set", "metric", f"production {prod['version']}", "candidate", "delta", "gate"], rows)
    if rec.get("registered"):
        out.print(f"registered {rec['registered']}; stages now {rec.get('stages_now')}", highlight=False)
