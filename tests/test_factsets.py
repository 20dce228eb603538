"""Invariants of the independent factuality sets (scripts/make_factuality_sets.py) on a tiny build."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_factuality_sets.py"
KEYS = {"id", "set", "origin", "doc_id", "source", "output", "label", "kind", "edit", "split"}


def _build(out: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--max-docs", "30", "--per-set", "160", "--seed", "0"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("factsets")
    _build(out)
    return out


def _load(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").open(encoding="utf-8")]


def _apply(edit: dict) -> str:
    o, p = edit["original_output"], edit["position"]
    assert o[p : p + len(edit["before"])] == edit["before"]
    return o[:p] + edit["after"] + o[p + len(edit["before"]) :]


def test_schema_and_balance(built: Path) -> None:
    for name in ("extractive", "abstractive"):
        recs = _load(built, name)
        assert len(recs) >= 60, name
        assert all(KEYS <= set(r) and r["set"] == name and r["split"] in {"dev", "test"} for r in recs)
        pos = sum(r["label"] for r in recs)
        assert 0.4 <= pos / len(recs) <= 0.6
        assert all((r["label"] == 0) == (r["kind"] == "faithful") for r in recs)
        assert all((r["edit"] is None) == (r["label"] == 0) for r in recs)
        assert len({r["id"] for r in recs}) == len(recs)
        assert len({r["kind"] for r in recs if r["label"] == 1}) >= 3
    stats = json.loads((built / "stats.json").read_text())
    assert stats["extractive"]["records"] == len(_load(built, "extractive"))


def test_extractive_faithful_outputs_are_verbatim(built: Path) -> None:
    for r in _load(built, "extractive"):
        if r["label"] == 0:
            assert r["output"] in r["source"]
        else:
            assert r["edit"]["original_output"] in r["source"]
            assert r["output"] not in r["source"]


def test_edits_are_recorded_exactly(built: Path) -> None:
    for name in ("extractive", "abstractive"):
        for r in _load(built, name):
            if r["label"] == 0:
                continue
            e = r["edit"]
            assert _apply(e) == r["output"] != e["original_output"]
            low = r["source"].lower()
            if r["kind"] == "entity_swap":
                name = re.sub(r"^(?:an?) ", "", e["after"], flags=re.I).lower()  # an article may be adjusted with the name
                assert re.search(r"(?<![a-z0-9])" + re.escape(name) + r"(?![a-z0-9])", low) is None
                assert e["donor_doc_id"] != r["doc_id"]
            if r["kind"] == "number_change" and e["rule"] == "digits":
                assert re.search(r"(?<![\d.,])" + re.escape(e["after"]) + r"(?![\d]|[.,]\d)", r["source"]) is None
            if r["kind"] in {"unsupported_addition", "wrong_document"}:
                assert e["donor_doc_id"] != r["doc_id"]


def test_abstractive_faithful_is_real_summary_and_wrong_document_differs(built: Path) -> None:
    recs = _load(built, "abstractive")
    own = {r["doc_id"]: r["output"] for r in recs if r["label"] == 0}
    for r in recs:
        assert isinstance(r.get("copied"), bool)
        if r["label"] == 1:
            assert r["edit"]["original_output"] == own[r["doc_id"]]
        if r["kind"] == "wrong_document":
            assert r["output"] != own[r["doc_id"]]
            assert r["output"].lower() != own[r["doc_id"]].lower()


def test_splits_are_by_document(built: Path) -> None:
    splits: dict[str, set[str]] = defaultdict(set)
    for name in ("extractive", "abstractive"):
        for r in _load(built, name):
            splits[r["doc_id"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"dev", "test"}


def test_deterministic(built: Path, tmp_path: Path) -> None:
    _build(tmp_path)
    for name in ("extractive.jsonl", "abstractive.jsonl"):
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes()
