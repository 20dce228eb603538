"""``eval/report.html``: one self-contained page (plots embedded as base64 PNG) rendered from a run
directory's artifacts, for chat and classification runs.

Reads ``eval/results.json`` (required), and where present ``eval/samples.jsonl`` (chat answers with
their factuality parts), ``eval/predictions.jsonl`` (classification rows with ``probs``),
``train/log.jsonl`` (training loss) and ``clean/lengths.png``. Missing pieces are left out, never
fatal: a report is most needed when something went wrong.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from nlpforge.artifacts import EvalResults
from nlpforge.atomic import atomic_write_text
from nlpforge.jsonl import read_jsonl

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.fail{color:#b00020;font-weight:bold}.pass{color:#137333}
figure{display:inline-block;margin:0 1rem 1rem 0}figcaption{font-size:.9rem;color:#555}img{max-width:520px}
.sample{font-size:.85rem}.sample td{text-align:left;vertical-align:top}
"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure(b64: str, caption: str) -> str:
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _read_jsonl(path: Path) -> list[dict]:
    """An optional input of the report: absent is no plot, not an error."""
    return read_jsonl(path) if path.is_file() else []


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v)) if v is not None else "-"


def metrics_table(results: dict[str, Any]) -> str:
    cols = [c for c in ("base", "tuned", "delta") if isinstance(results.get(c), dict)]
    if not cols:  # classification: one flat metrics dict
        flat = {k: v for k, v in results.get("metrics", {}).items() if isinstance(v, int | float)}
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in flat.items())
        return f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table>"
    keys = [k for k, v in results.get("tuned", {}).items() if isinstance(v, int | float)]
    head = "".join(f"<th>{c}</th>" for c in cols)
    rows = "".join(f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{_fmt(results[c].get(k))}</td>" for c in cols) + "</tr>" for k in keys)
    return f"<table><tr><th>metric</th>{head}</tr>{rows}</table>"


def gates_table(gates: list[dict[str, Any]]) -> str:
    if not gates:
        return "<p>No release gates in the recipe (<code>eval.gates</code>).</p>"
    rows = "".join(
        f"<tr><td>{html.escape(g['metric'])}</td><td>{g['rule']}</td><td>{_fmt(g['bound'])}</td><td>{_fmt(g['value'])}</td>"
        f"<td class=\"{'pass' if g['passed'] else 'fail'}\">{'pass' if g['passed'] else 'FAIL'}</td></tr>"
        for g in gates
    )
    return f"<table><tr><th>metric</th><th>rule</th><th>bound</th><th>value</th><th>result</th></tr>{rows}</table>"


def plot_loss(log_rows: list[dict]) -> str | None:
    import matplotlib.pyplot as plt

    pts = [(r["step"], r["loss"]) for r in log_rows if "loss" in r and "step" in r]
    evals = [(r["step"], r["eval_loss"]) for r in log_rows if "eval_loss" in r]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(*zip(*pts), marker="o", ms=3, label="train loss")
    if evals:
        ax.plot(*zip(*evals), marker="s", ms=3, label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    return _png(fig)


def plot_hallucination(samples: list[dict]) -> str | None:
    import matplotlib.pyplot as plt

    series = {name: [s[f"{name}_factuality"].get("hallucination_score") for s in samples if f"{name}_factuality" in s] for name in ("base", "tuned")}
    series = {k: [x for x in v if x is not None] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(list(series.values()), bins=10, range=(0, 1), label=[f"{k} (mean {sum(v) / len(v):.3f})" for k, v in series.items()])
    ax.set_xlabel("hallucination_score (higher = more likely hallucinated)")
    ax.set_ylabel("answers")
    ax.legend()
    return _png(fig)


def plot_confusion(cm: list[list[int]], labels: list[str]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(row) for row in cm) or 1
    for i, row in enumerate(cm):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black")
    return _png(fig)


def plot_calibration(confidence: list[float], correct: list[bool]) -> str:
    import matplotlib.pyplot as plt

    from nlpforge.evals.metrics import calibration_points, expected_calibration_error

    pts = calibration_points(confidence, correct)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect")
    ax.plot(pts["confidence"], pts["accuracy"], marker="o", label=f"model (ECE {expected_calibration_error(confidence, correct):.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend()
    return _png(fig)


def plot_groups(per_group: dict[str, dict[str, float]], metric: str) -> str | None:
    import matplotlib.pyplot as plt

    groups = [g for g, m in per_group.items() if isinstance(m.get(metric), int | float)]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(groups), 3.2))
    ax.bar(groups, [per_group[g][metric] for g in groups], color="#4c72b0")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def _classification_figures(results: dict[str, Any], eval_dir: Path) -> list[str]:
    figs = []
    labels = [str(x) for x in results.get("labels", [])]
    cm = results.get("metrics", {}).get("confusion_matrix")
    if isinstance(cm, list) and labels:
        figs.append(_figure(plot_confusion(cm, labels), "confusion matrix"))
    preds = _read_jsonl(eval_dir / "predictions.jsonl")
    if preds and labels and all(isinstance(p.get("probs"), list) for p in preds) and not isinstance(preds[0].get("label"), list):
        conf = [max(p["probs"]) for p in preds]
        correct = [labels[p["probs"].index(max(p["probs"]))] == str(p["label"]) for p in preds]
        figs.append(_figure(plot_calibration(conf, correct), "calibration (reliability) curve"))
    fair = results.get("fairness", {})
    for col, block in (fair.get("groups") or {}).items():
        for metric in ("accuracy", "positive_rate", "tpr"):
            b64 = plot_groups(block.get("per_group", {}), metric)
            if b64:
                figs.append(_figure(b64, f"{metric} per {col}"))
    return figs


def _fairness_table(fair: dict[str, Any]) -> str:
    if not fair:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(col)}</td><td>{_fmt(b.get('demographic_parity_difference'))}</td><td>{_fmt(b.get('equalized_odds_difference'))}</td></tr>"
        for col, b in (fair.get("groups") or {}).items()
    )
    out = f"<h2>Fairness</h2><table><tr><th>group column</th><th>demographic parity diff.</th><th>equalised odds diff.</th></tr>{rows}</table>" if rows else "<h2>Fairness</h2>"
    cf = fair.get("counterfactual")
    if cf:
        out += f"<p>Counterfactual swaps: {cf['variants']} variants, prediction flip rate {_fmt(cf['flip_rate'])}, mean probability shift {_fmt(cf['mean_prob_shift'])}.</p>"
    return out


def _samples_table(samples: list[dict], n: int = 8) -> str:
    if not samples:
        return ""
    names = [k for k in ("base", "tuned") if k in samples[0]]
    head = "<tr><th>reference</th>" + "".join(f"<th>{k}</th>" for k in names) + "</tr>"
    rows = ""
    for s in samples[:n]:
        cells = ""
        for k in names:
            score = s.get(f"{k}_factuality", {}).get("hallucination_score")
            cells += f"<td>{html.escape(s[k])}<br><small>hallucination_score {_fmt(score)}</small></td>"
        rows += f"<tr><td>{html.escape(s.get('reference', ''))}</td>{cells}</tr>"
    return f"<h2>Sample answers</h2><table class=\"sample\">{head}{rows}</table>"


def _lm_eval_table(lm: dict[str, Any]) -> str:
    rows = ""
    for task, metrics in lm.items():
        for k, v in metrics.items():
            if isinstance(v, int | float):
                rows += f"<tr><td>{html.escape(task)}</td><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
    return f"<h2>lm-evaluation-harness</h2><table><tr><th>task</th><th>metric</th><th>value</th></tr>{rows}</table>" if rows else ""


def render(run_root: Path) -> str:
    eval_dir = run_root / "eval"
    results = EvalResults.read(eval_dir).model_dump(mode="json")
    task = results["task"]
    figs: list[str] = []
    samples: list[dict] = []
    if task == "classification":
        figs += _classification_figures(results, eval_dir)
    else:
        samples = _read_jsonl(eval_dir / "samples.jsonl")
        b64 = plot_hallucination(samples)
        if b64:
            figs.append(_figure(b64, "hallucination_score of the answers, base vs tuned"))
    b64 = plot_loss(_read_jsonl(run_root / "train" / "log.jsonl"))
    if b64:
        figs.append(_figure(b64, "training loss"))
    lengths = run_root / "clean" / "lengths.png"
    if lengths.is_file():
        figs.append(_figure(base64.b64encode(lengths.read_bytes()).decode(), "document lengths before/after cleaning"))
    gates = results.get("gates", [])
    verdict = "no gates" if not gates else ("all gates passed" if all(g["passed"] for g in gates) else "GATES FAILED: export blocked")
    cls = "pass" if all(g["passed"] for g in gates) else "fail"
    body = (
        f"<h1>Evaluation: {html.escape(run_root.name)} ({task})</h1><p class=\"{cls}\">{verdict}</p>"
        f"<h2>Metrics</h2>{metrics_table(results)}<h2>Release gates</h2>{gates_table(gates)}"
        f"<h2>Plots</h2>{''.join(figs) or '<p>No plots (no data for them).</p>'}"
        f"{_fairness_table(results.get('fairness', {}))}{_lm_eval_table(results.get('lm_eval', {}))}{_samples_table(samples)}"
    )
    return f"<!doctype html><html><head><meta charset=\"utf-8\"><title>nlpforge eval: {html.escape(run_root.name)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"


def write_report(run_root: Path, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    atomic_write_text(path, render(run_root))
    return path
