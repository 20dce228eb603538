"""Invariants of the second, independently written PII set (scripts/make_pii_second_set.py):
exact, non-overlapping spans; negatives clear of spans; determinism; valid checksums. Fast."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_pii_second_set as m2  # noqa: E402

ENTITIES = {"PERSON", "LOCATION", "DATE_TIME", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "IP_ADDRESS", "URL", "CREDIT_CARD", "IBAN_CODE",
            "MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "ACCOUNT_NUMBER", "LICENSE_NUMBER", "VEHICLE_ID", "DEVICE_ID"}


@pytest.fixture(scope="module")
def recs() -> list[dict]:
    return m2.make(3, 400)


def test_record_shape(recs):
    ids = set()
    for rec in recs:
        assert set(rec) == {"id", "genre", "text", "spans", "negatives", "seed"}
        assert rec["genre"] in m2.GENRES and rec["text"] and rec["spans"]
        assert rec["id"] not in ids
        ids.add(rec["id"])
        json.dumps(rec, ensure_ascii=False)


def test_spans_exact_and_disjoint(recs):
    for rec in recs:
        text = rec["text"]
        prev_end = 0
        for s in sorted(rec["spans"], key=lambda x: x["start"]):
            assert s["entity"] in ENTITIES
            assert 0 <= s["start"] < s["end"] <= len(text)
            val = text[s["start"] : s["end"]]
            assert val == val.strip(), (rec["id"], val)
            assert "\n" not in val, (rec["id"], val)
            assert s["start"] >= prev_end, (rec["id"], val)
            prev_end = s["end"]
            # a span never starts or ends inside a word / number
            if s["start"] > 0:
                assert not (text[s["start"] - 1].isalnum() and val[0].isalnum()), (rec["id"], text[s["start"] - 5 : s["end"]])
            if s["end"] < len(text):
                assert not (text[s["end"]].isalnum() and val[-1].isalnum()), (rec["id"], text[s["start"] : s["end"] + 5])


def test_negatives_clear_of_spans(recs):
    for rec in recs:
        spans = [(s["start"], s["end"]) for s in rec["spans"]]
        negs = sorted((n["start"], n["end"]) for n in rec["negatives"])
        for a, b in negs:
            assert 0 <= a < b <= len(rec["text"])
            assert not any(a < e and s < b for s, e in spans), (rec["id"], rec["text"][a:b])
        for (_, b1), (a2, _) in zip(negs, negs[1:]):
            assert b1 <= a2


def test_deterministic_and_seed_sensitive():
    a, b, c = m2.make(11, 60), m2.make(11, 60), m2.make(12, 60)
    assert a == b
    assert [r["text"] for r in a] != [r["text"] for r in c]
    # a record regenerates from its own seed
    r = a[17]
    assert m2.build_record(r["seed"], 17, r["id"]) == r


def test_coverage(recs):
    ents = Counter(s["entity"] for r in recs for s in r["spans"])
    assert set(ents) == ENTITIES, ENTITIES - set(ents)
    assert min(ents.values()) >= 15, ents
    assert Counter(r["genre"] for r in recs).keys() == m2.GENRES.keys()
    kinds = Counter(n["kind"] for r in recs for n in r["negatives"])
    assert len(kinds) >= 25, kinds


def _values(recs, entity):
    return [r["text"][s["start"] : s["end"]] for r in recs for s in r["spans"] if s["entity"] == entity]


def test_values_follow_specs(recs):
    for v in _values(recs, "CREDIT_CARD"):
        assert m2.luhn_ok(v) and len(re.sub(r"\D", "", v)) in (15, 16), v
    for v in _values(recs, "IBAN_CODE"):
        assert m2.iban_ok(v), v
    for v in _values(recs, "VEHICLE_ID"):
        if len(v) == 17:
            assert m2.vin_ok(v), v
    for v in _values(recs, "IP_ADDRESS"):
        ipaddress.ip_address(v)
    for v in _values(recs, "US_SSN"):
        d = re.sub(r"\D", "", v)
        assert len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000", v
    for v in _values(recs, "EMAIL_ADDRESS"):
        assert re.fullmatch(r"[a-z0-9._+-]+@[a-z0-9.-]+\.[a-z]{2,}", v), v
    for v in _values(recs, "DEVICE_ID"):
        if re.fullmatch(r"\d{15}|\d\d-\d{6}-\d{6}-\d", v):
            assert m2.luhn_ok(v), v  # IMEI


def test_hard_negative_examples_are_not_pii_lookalikes_by_accident(recs):
    # masked cards and routing numbers are negatives, never labelled
    for r in recs:
        for n in r["negatives"]:
            val = r["text"][n["start"] : n["end"]]
            if n["kind"] == "firmware_ipv4_like":
                ipaddress.IPv4Address(val)  # it really does parse as an IPv4 address
            if n["kind"] == "routing_number":
                w = [3, 7, 1] * 3
                assert sum(int(c) * k for c, k in zip(val, w)) % 10 == 0


def test_cli(tmp_path):
    out = tmp_path / "s.jsonl"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_pii_second_set.py"), "--seed", "5", "--n", "30", "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 30 and rows == m2.make(5, 30)
