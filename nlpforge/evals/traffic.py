"""`nlpforge monitor DIR`: what the served model did, from the traffic a server recorded under its
``--feedback-dir`` (every chat completion: prompt, answers, grounding context, the version that
answered, when; redacted with ``--redact-pii``) and the feedback on it.

Everything the live ``/metrics`` series show in the moment is recomputed here over the whole
record, by the same scorers: input drift against the bundle's ``drift.json`` per time window,
the hallucination score of grounded answers (the model-free checker the server runs), feedback
rates per window and per version, and the worst answers by score. One self-contained HTML page
and the numbers as JSON.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from nlpforge.atomic import atomic_write_json, atomic_write_text
from nlpforge.console import log
from nlpforge.errors import DataError
from nlpforge.evals.drift import last_user_text, oov_rate
from nlpforge.evals.report import STYLE, _figure, _fmt, _png
from nlpforge.serve.feedback import COMPLETIONS_DB, FEEDBACK_FILE, iter_feedback

WINDOWS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800}


def read_traffic(folder: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The recorded completions, oldest first (the newest ``limit`` with a limit)."""
    db = folder / COMPLETIONS_DB
    if not db.is_file():
        raise DataError(f"{folder}: no recorded traffic ({COMPLETIONS_DB}); the server records it with `nlpforge serve --feedback-dir {folder}`")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(completions)")}
        pick = ", ".join(c if c in cols else f"NULL AS {c}" for c in ("id", "model", "messages", "answers", "created", "version", "context"))
        order = f"ORDER BY rowid DESC LIMIT {int(limit)}" if limit else "ORDER BY rowid"
        rows = con.execute(f"SELECT {pick} FROM completions {order}").fetchall()  # noqa: S608 - column names from a fixed list
    finally:
        con.close()
    out = []
    for rid, model, messages, answers, created, version, context in rows:
        out.append({"id": rid, "model": model, "messages": json.loads(messages), "answers": json.loads(answers), "created": created,
                    "version": version or model, "context": context})
    out.sort(key=lambda r: r["created"] or "")
    return out


def pick_window(times: list[datetime], wanted: str | None) -> tuple[str, int]:
    if wanted:
        if wanted not in WINDOWS:
            raise DataError(f"--window {wanted}: valid windows are {', '.join(WINDOWS)}")
        return wanted, WINDOWS[wanted]
    span = (max(times) - min(times)).total_seconds() if times else 0
    for name, seconds in WINDOWS.items():  # the finest window that gives at most 48 of them
        if span / seconds <= 48:
            return name, seconds
    return "7d", WINDOWS["7d"]


def analyse(traffic: list[dict[str, Any]], feedback: list[dict[str, Any]], reference: dict[str, Any] | None, gate: float = 0.5,
            window: str | None = None, worst: int = 20, encoder: Any = None) -> dict[str, Any]:
    """Per window, per version and per answer: drift, hallucination scores, feedback."""
    from nlpforge.evals.factuality import score_records

    if not traffic:
        raise DataError("no recorded completions to report on")
    times = [datetime.fromisoformat(r["created"]) for r in traffic]
    wname, wsec = pick_window(times, window)
    start = min(times)
    prompts = [last_user_text(r["messages"]) for r in traffic]
    oov: list[float | None] = [None] * len(traffic)
    dist: list[float | None] = [None] * len(traffic)
    if reference is not None:
        vocab = set(reference["vocabulary"])
        oov = [oov_rate(p, vocab) for p in prompts]
        if reference.get("centroid") is not None:
            from nlpforge.evals.drift import _encoder

            enc = encoder or _encoder()
            if enc is not None:
                import numpy as np

                keep = [i for i, p in enumerate(prompts) if p.strip()]
                emb = enc.encode([prompts[i] for i in keep], normalize_embeddings=True, convert_to_numpy=True)
                for i, d in zip(keep, 1 - emb @ np.asarray(reference["centroid"])):
                    dist[i] = float(d)
    grounded = [(i, c, a) for i, r in enumerate(traffic) if r["context"] for c, a in enumerate(r["answers"])]
    log(f"monitor: scoring {len(grounded)} grounded answers against their context")
    scored = score_records([{"source": traffic[i]["context"], "output": a} for i, _, a in grounded]) if grounded else []
    score = {(i, c): s.get("hallucination_score") for (i, c, _), s in zip(grounded, scored)}
    votes = {(f.get("id"), f.get("choice", 0)): f for f in feedback}
    index = {r["id"]: i for i, r in enumerate(traffic)}

    def empty() -> dict[str, Any]:
        return {"completions": 0, "oov": [], "dist": [], "scores": [], "up": 0, "down": 0, "preferred": 0, "versions": Counter()}

    windows: dict[int, dict[str, Any]] = defaultdict(empty)
    versions: dict[str, dict[str, Any]] = defaultdict(empty)
    for i, (r, t) in enumerate(zip(traffic, times)):
        for bucket in (windows[int((t - start).total_seconds() // wsec)], versions[r["version"]]):
            bucket["completions"] += 1
            bucket["versions"][r["version"]] += 1
            for key, value in (("oov", oov[i]), ("dist", dist[i])):
                if value is not None:
                    bucket[key].append(value)
            bucket["scores"] += [s for c in range(len(r["answers"])) if (s := score.get((i, c))) is not None]
    for (rid, _), f in votes.items():
        i = index.get(rid)
        if i is None:
            continue  # feedback on a completion no longer kept (retention)
        t = times[i]
        for bucket in (windows[int((t - start).total_seconds() // wsec)], versions[traffic[i]["version"]]):
            if f.get("rating") in ("up", "down"):
                bucket[f["rating"]] += 1
            bucket["preferred"] += bool(f.get("preferred"))

    def summary(b: dict[str, Any]) -> dict[str, Any]:
        rated = b["up"] + b["down"]
        return {"completions": b["completions"], "oov_rate": _mean(b["oov"]), "embedding_distance": _mean(b["dist"]),
                "grounded_answers": len(b["scores"]), "hallucination_score": _mean(b["scores"]),
                "over_gate": round(sum(s > gate for s in b["scores"]) / len(b["scores"]), 4) if b["scores"] else None,
                "up": b["up"], "down": b["down"], "preferred": b["preferred"], "up_rate": round(b["up"] / rated, 4) if rated else None,
                "versions": dict(b["versions"])}

    answers = [{"id": traffic[i]["id"], "choice": c, "created": traffic[i]["created"], "version": traffic[i]["version"], "prompt": prompts[i],
                "context": traffic[i]["context"], "answer": a, "hallucination_score": score.get((i, c)),
                "rating": (votes.get((traffic[i]["id"], c)) or {}).get("rating")} for i, c, a in grounded]
    ranked = sorted((a for a in answers if a["hallucination_score"] is not None), key=lambda a: -a["hallucination_score"])
    all_scores = [a["hallucination_score"] for a in ranked]
    ref_held = (reference or {}).get("held_out") or {}
    return {
        "completions": len(traffic), "from": traffic[0]["created"], "to": traffic[-1]["created"], "window": wname, "gate": gate,
        "drift_reference": {"oov_rate": ref_held.get("oov_rate"), "embedding_distance": ref_held.get("embedding_distance")} if reference else None,
        "overall": summary({**empty(), "completions": len(traffic), "oov": [x for x in oov if x is not None], "dist": [x for x in dist if x is not None],
                            "scores": all_scores, "up": sum(w["up"] for w in windows.values()), "down": sum(w["down"] for w in windows.values()),
                            "preferred": sum(w["preferred"] for w in windows.values()), "versions": Counter(r["version"] for r in traffic)}),
        "windows": [{"start": (start + timedelta(seconds=k * wsec)).isoformat(), **summary(windows[k])} for k in sorted(windows)],
        "versions": {v: summary(b) for v, b in versions.items()},
        "worst": ranked[:worst],
        "histogram": _histogram(all_scores),
    }


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _histogram(scores: list[float], bins: int = 10) -> list[int]:
    counts = [0] * bins
    for s in scores:
        counts[min(int(s * bins), bins - 1)] += 1
    return counts


def _plots(rep: dict[str, Any]) -> list[str]:
    import matplotlib.pyplot as plt

    figs = []
    wins = rep["windows"]
    x = list(range(len(wins)))
    ticks = [w["start"][5:16].replace("T", " ") for w in wins]
    fig, ax = plt.subplots(figsize=(6.5, 3))
    drew = False
    ref = rep.get("drift_reference") or {}
    for key, label, color in (("oov_rate", "out-of-vocabulary rate", "tab:blue"), ("embedding_distance", "embedding distance", "tab:orange")):
        ys = [w[key] if w[key] is not None else math.nan for w in wins]
        if any(not math.isnan(y) for y in ys):
            ax.plot(x, ys, marker="o", label=label, color=color)
            drew = True
            if ref.get(key) is not None:
                ax.axhline(ref[key], ls="--", color=color, alpha=0.6, label=f"{label}, held-out reference")
    if drew:
        ax.set_xticks(x, ticks, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("mean per window")
        ax.legend(fontsize=7)
        figs.append(_figure(_png(fig), f"input drift per {rep['window']} window against the training prompts"))
    else:
        plt.close(fig)
    if rep["histogram"] and sum(rep["histogram"]):
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.bar([i / 10 + 0.05 for i in range(10)], rep["histogram"], width=0.09, color="tab:red")
        ax.axvline(rep["gate"], ls="--", color="k", label=f"gate {rep['gate']}")
        ax.set_xlabel("hallucination_score of grounded answers")
        ax.set_ylabel("answers")
        ax.legend(fontsize=7)
        figs.append(_figure(_png(fig), "hallucination_score distribution"))
    if any(w["up"] + w["down"] for w in wins):
        fig, ax = plt.subplots(figsize=(6.5, 3))
        ax.bar(x, [w["up"] for w in wins], color="tab:green", label="up")
        ax.bar(x, [-w["down"] for w in wins], color="tab:red", label="down")
        ax.set_xticks(x, ticks, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("ratings")
        ax.legend(fontsize=7)
        figs.append(_figure(_png(fig), f"feedback per {rep['window']} window"))
    return figs


COLUMNS = ("completions", "oov_rate", "embedding_distance", "grounded_answers", "hallucination_score", "over_gate", "up", "down", "preferred", "up_rate")


def _table(first: str, rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (first, *COLUMNS))
    body = "".join("<tr>" + f"<td>{html.escape(name)}</td>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in COLUMNS) + "</tr>" for name, r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(rep: dict[str, Any], title: str) -> str:
    worst = "".join(
        f"<tr><td>{_fmt(a['hallucination_score'])}</td><td>{html.escape(a['version'] or '')}</td><td>{html.escape(a['prompt'])}</td>"
        f"<td>{html.escape(a['context'] or '')}</td><td>{html.escape(a['answer'])}</td><td>{html.escape(a['rating'] or '')}</td></tr>" for a in rep["worst"])
    ref = rep.get("drift_reference")
    note = "" if ref else "<p>No drift reference (the bundle has no drift.json, or none was given with --bundle): drift columns are empty.</p>"
    body = (
        f"<h1>Traffic: {html.escape(title)}</h1><p>{rep['completions']} completions from {html.escape(rep['from'])} to {html.escape(rep['to'])}; "
        f"window {rep['window']}; hallucination gate {rep['gate']}</p>{note}"
        f"<h2>Overall</h2>{_table('', [('all', rep['overall'])])}"
        f"<h2>Per version</h2>{_table('version', sorted(rep['versions'].items()))}"
        f"<h2>Plots</h2>{''.join(_plots(rep)) or '<p>No plots (no data for them).</p>'}"
        f"<h2>Per window</h2>{_table('window start', [(w['start'], w) for w in rep['windows']])}"
        f"<h2>Worst grounded answers by hallucination_score</h2><table class=\"sample\"><tr><th>score</th><th>version</th><th>prompt</th><th>context</th>"
        f"<th>answer</th><th>rating</th></tr>{worst}</table>"
    )
    return f"<!doctype html><html><head><meta charset=\"utf-8\"><title>nlpforge monitor: {html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"


def write_traffic_report(folder: Path, out: Path, reference: dict[str, Any] | None, gate: float = 0.5, window: str | None = None,
                         worst: int = 20, limit: int | None = None) -> dict[str, Any]:
    """Read, analyse and write ``out`` (HTML) and ``out`` with ``.json``; the numbers."""
    import matplotlib

    matplotlib.use("Agg")
    traffic = read_traffic(folder, limit)
    feedback = list(iter_feedback(folder)) if (folder / FEEDBACK_FILE).is_file() else []
    rep = analyse(traffic, feedback, reference, gate, window, worst)
    atomic_write_text(out, render(rep, str(folder)))
    atomic_write_json(out.with_suffix(".json"), rep)
    return rep
