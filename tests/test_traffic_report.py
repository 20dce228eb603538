"""`nlpforge monitor DIR` on traffic recorded the way the server records it (the feedback store),
with real text nlpforge did not write: support prompts in the first hour (version v1), Python
standard-library docstrings in the second (v2, another domain). Grounded answers are the
support corpus's own answers, checked against their own context or against another
conversation's. The report must show the drift where it happened, score answers with the
server's scorer, count feedback per version exactly, and rank unsupported answers worst."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge
from test_drift import stdlib_sentences, support_prompts

from nlpforge.evals.drift import build_reference, oov_rate, write_reference
from nlpforge.evals.factuality import score_records
from nlpforge.serve.feedback import FeedbackStore
from nlpforge.serve.protocol import FeedbackRequest


def support_pairs(n: int) -> list[tuple[str, str]]:
    """(question, answer) pairs of the support corpus, past its deliberately broken lines."""
    out = []
    for line in (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines():
        try:
            msgs = json.loads(line)["messages"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if (isinstance(msgs, list) and len(msgs) >= 2 and msgs[-1].get("role") == "assistant" and msgs[-2].get("role") == "user"
                and min(len(str(m.get("content")).split()) for m in msgs[-2:]) >= 4):
            out.append((msgs[-2]["content"], msgs[-1]["content"]))
    return out[-n:]  # the end of the file: the reference below is built from its start


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("traffic")
    prompts = support_prompts()
    bundle = tmp / "bundle"
    bundle.mkdir()
    ref = build_reference(prompts[:400], prompts[400:500], embed=False)
    write_reference(bundle, ref)
    store, pairs, docs = FeedbackStore(tmp / "fb"), support_pairs(24), stdlib_sentences(12)
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    created, truth = {}, {"faithful": [], "unrelated": []}
    for i, (q, a) in enumerate(pairs):  # hour 1, v1: support questions; every other answer checked against another conversation
        context = a if i % 2 == 0 else pairs[(i + 5) % len(pairs)][1]
        store.remember(f"c{i}", "bot", [{"role": "user", "content": q}], [a], "bot@v1", context)
        created[f"c{i}"] = t0 + timedelta(minutes=2 * i)
        truth["faithful" if i % 2 == 0 else "unrelated"].append((context, a))
    for j, d in enumerate(docs):  # hour 2, v2: another domain, ungrounded
        store.remember(f"d{j}", "bot", [{"role": "user", "content": d}], ["I can only help with Northwind orders."], "bot@v2")
        created[f"d{j}"] = t0 + timedelta(hours=1, minutes=3 * j)
    for rid, rating in [("c0", "up"), ("c1", "down"), ("c2", "up"), ("c3", "down"), ("d0", "down"), ("d1", "down")]:
        assert store.add(FeedbackRequest(id=rid, rating=rating))
    assert store.add(FeedbackRequest(id="c1", rating="down", preferred="See the returns page."))  # a revision: still one rating
    store.close()
    with sqlite3.connect(tmp / "fb/completions.sqlite") as db:  # the recorded times: two hours of traffic
        db.executemany("UPDATE completions SET created = ? WHERE id = ?", [(t.isoformat(), rid) for rid, t in created.items()])
    return tmp, bundle, {"pairs": pairs, "docs": docs, "ref": ref, "truth": truth}


def test_report_shows_drift_scores_and_feedback_where_they_happened(traffic: tuple[Path, Path, dict]) -> None:
    tmp, bundle, data = traffic
    done = nlpforge("monitor", str(tmp / "fb"), "--bundle", str(bundle), "--out", str(tmp / "report.html"), "--window", "1h")
    assert "bot@v1" in done.stdout and "bot@v2" in done.stdout
    rep = json.loads((tmp / "report.json").read_text())
    assert rep["completions"] == 36 and rep["window"] == "1h" and [w["completions"] for w in rep["windows"]] == [24, 12]
    vocab = set(data["ref"]["vocabulary"])
    want = [sum(oov_rate(t, vocab) for t in texts) / len(texts) for texts in ([q for q, _ in data["pairs"]], data["docs"])]
    assert [w["oov_rate"] for w in rep["windows"]] == pytest.approx(want, abs=1e-4)
    assert 2 * want[0] < want[1]  # the docstrings drift: print(want) shows the measured rates
    v1, v2 = rep["versions"]["bot@v1"], rep["versions"]["bot@v2"]
    assert (v1["up"], v1["down"], v1["preferred"], v2["up"], v2["down"]) == (2, 2, 1, 0, 2)
    assert (v1["grounded_answers"], v2["grounded_answers"]) == (24, 0)
    # the server's scorer, per answer
    scores = {k: [r["hallucination_score"] for r in score_records([{"source": c, "output": a} for c, a in pairs])] for k, pairs in data["truth"].items()}
    assert v1["hallucination_score"] == pytest.approx(sum(scores["faithful"] + scores["unrelated"]) / 24, abs=1e-4)
    assert max(scores["faithful"]) < min(scores["unrelated"])  # the checker separates these; the ranking below must follow it
    unrelated = {a for _, a in data["truth"]["unrelated"]}
    worst = rep["worst"]
    assert len(worst) == 20 and all(w["answer"] in unrelated for w in worst[:12])
    assert rep["histogram"][-1] + rep["histogram"][-2] >= 1 and sum(rep["histogram"]) == 24
    page = (tmp / "report.html").read_text()
    assert "Worst grounded answers" in page and page.count("<img") == 3 and "bot@v2" in page


def test_report_needs_recorded_traffic_and_a_known_window(traffic: tuple[Path, Path, dict], tmp_path: Path) -> None:
    tmp, _, _ = traffic
    empty = nlpforge("monitor", str(tmp_path), "--out", str(tmp_path / "r.html"), check=False)
    assert empty.returncode == 1 and "no recorded traffic" in empty.stderr + empty.stdout
    bad = nlpforge("monitor", str(tmp / "fb"), "--window", "2h", "--out", str(tmp_path / "r.html"), check=False)
    assert bad.returncode == 1 and "valid windows are 1m, 5m" in (bad.stderr + bad.stdout).replace("\n", " ")
