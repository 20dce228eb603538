"""Invariants of the independent real-world PII evaluation set (scripts/make_pii_realworld.py)."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

make = pytest.importorskip("make_pii_realworld")  # scripts/ is on sys.path via conftest
pytest.importorskip("faker")


@pytest.fixture(scope="module")
def dev0() -> list[dict]:
    return make.make_records(make.DEV_SEEDS[0], make.DEFAULT_PER_SEED)


def _spans(recs, form=None, entity=None):
    for r in recs:
        for s in r["spans"]:
            if (form is None or s["form"] == form) and (entity is None or s["entity"] == entity):
                yield r, s, r["text"][s["start"] : s["end"]]


def test_schema_exact_and_non_overlapping(dev0):
    assert len(dev0) == make.DEFAULT_PER_SEED
    assert len({r["id"] for r in dev0}) == len(dev0)
    assert {r["genre"] for r in dev0} == set(make.GENRES)
    for r in dev0:
        assert set(r) == {"id", "genre", "text", "spans", "negatives", "seed"}
        text = r["text"]
        prev = -1
        for s in sorted(r["spans"], key=lambda s: s["start"]):
            assert s["entity"] in make.ENTITIES
            assert 0 <= s["start"] < s["end"] <= len(text)
            assert s["start"] >= prev, r["id"]
            value = text[s["start"] : s["end"]]
            assert value == value.strip() and value, (r["id"], s)
            prev = s["end"]
        for n in r["negatives"]:
            assert text[n["start"] : n["end"]]
            assert not any(n["start"] < s["end"] and s["start"] < n["end"] for s in r["spans"]), (r["id"], n)


def test_deterministic_and_splits_differ():
    a = make.make_records(1, 40)
    b = make.make_records(1, 40)
    assert a == b
    dev = {r["text"] for s in make.DEV_SEEDS[:2] for r in make.make_records(s, 40)}
    test = {r["text"] for s in make.TEST_SEEDS[:2] for r in make.make_records(s, 40)}
    assert not dev & test
    assert set(make.DEV_SEEDS).isdisjoint(make.TEST_SEEDS)
    assert make.parse_seeds("0-3,7,100-101") == [0, 1, 2, 3, 7, 100, 101]


def test_deterministic_across_processes(tmp_path):
    """Same seed, different PYTHONHASHSEED: byte-identical output (no set-order leaks from Faker)."""
    script = Path(make.__file__)
    outs = []
    for h in ("1", "2"):
        out = tmp_path / f"s{h}.jsonl"
        subprocess.run([sys.executable, str(script), "--seeds", "0", "--n", "300", "--out", str(out)], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": h}, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_every_slot_form_appears(dev0):
    forms = {s["form"] for r in dev0 for s in r["spans"]}
    missing = [name for name, _ in make.SLOTS if not any(f == name or f.startswith(name) for f in forms)]
    assert not missing, missing
    kinds = {n["kind"] for r in dev0 for n in r["negatives"]}
    assert kinds == {k for k, _ in make.NEG_SLOTS}


def test_listed_real_world_forms_present(dev0):
    vals = lambda form: [v for _, _, v in _spans(dev0, form=form)]  # noqa: E731
    ip = [v for _, _, v in _spans(dev0, entity="IP_ADDRESS")]
    assert any("::" in v and v not in ("::1",) and not v.endswith("::") for v in ip)  # compressed
    assert any(v.startswith("::") for v in ip) and any(v.endswith("::") for v in ip)
    assert any(re.fullmatch(r"(?i)::ffff:\d+\.\d+\.\d+\.\d+", v) for v in ip)
    assert any("%" in v for v in ip) and any(v != v.lower() for v in ip)
    assert any("/" in v and ":" in v for v in ip) and any(re.fullmatch(r"[\d.]+/\d+", v) for v in ip)
    # bracketed IPv6 with port: only the address is labelled
    br = [(r, s) for r, s, _ in _spans(dev0, form="ipv6_bracket_port")]
    assert br and all(r["text"][s["start"] - 1] == "[" and re.match(r"\]:\d+", r["text"][s["end"] :]) for r, s in br)
    for v in ip:
        addr = v.split("%")[0]
        if "/" in addr:
            ipaddress.ip_network(addr, strict=True)
        else:
            ipaddress.ip_address(addr)
    # IPv4 with port: port excluded
    assert all(re.match(r":\d+", r["text"][s["end"] :]) for r, s, _ in _spans(dev0, form="ipv4_port"))

    # phones: no separators, +1, extensions excluded, valid NANP
    assert any(re.fullmatch(r"\d{10}", v) for v in vals("nanp_nosep"))
    assert any(v.startswith("+1") for v in (x for _, _, x in _spans(dev0, entity="PHONE_NUMBER")))
    assert all(re.match(r",? ?(x|ext|Ext)", r["text"][s["end"] :].lstrip()) for r, s, _ in _spans(dev0, form="nanp_extension"))
    for _, s, v in _spans(dev0, entity="PHONE_NUMBER"):
        if s["form"].startswith("nanp"):
            d = re.sub(r"\D", "", v)
            d = d[1:] if len(d) == 11 else d
            assert len(d) == 10 and d[0] in "23456789" and d[3] in "23456789" and d[1:3] != "11" and d[4:6] != "11", v

    # SSN: no-separator form next to a context word; valid SSA ranges everywhere
    nosep = [(r, s, v) for r, s, v in _spans(dev0, form="ssn_nosep_ctx")]
    assert nosep and all(re.search(r"(?i)(ssn|social)", r["text"][max(0, s["start"] - 30) : s["start"]]) for r, s, _ in nosep)
    for _, _, v in _spans(dev0, entity="US_SSN"):
        d = re.sub(r"\D", "", v)
        assert len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000", v

    urls = [v for _, _, v in _spans(dev0, entity="URL")]
    assert any(not v.startswith(("http://", "https://")) and "/" in v for v in urls)  # scheme-less with path
    assert any(v.startswith("www.") for v in urls)
    assert all(v[-1] not in ".,;:!?)>" for v in urls)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:\d\d)?", v) for v in vals("datetime_iso"))
    ages = [s for _, s, _ in _spans(dev0, entity="DATE_TIME") if s.get("subtype") == "AGE"]
    assert any("year-old" in v for _, s, v in _spans(dev0) if s.get("subtype") == "AGE") and len(ages) > 20
    # title names: the title is context, not part of the span
    titled = list(_spans(dev0, form="person_title_last"))
    assert titled and all(re.search(r"(?i)(dr|mr|ms|mrs|prof|mx|herr|frau|m|mme|sr|sra|dra|sig|sig\.ra|dott)\.? $", r["text"][max(0, s["start"] - 8) : s["start"]]) for r, s, _ in titled)
    assert {s.get("locale") for _, s, _ in _spans(dev0, entity="PERSON")} >= {"de_DE", "fr_FR", "es_ES", "ja_JP", "zh_CN", "vi_VN"}
    assert any(not v.isascii() for _, _, v in _spans(dev0, entity="PERSON"))
    assert any(re.fullmatch(r"\d{5}-\d{4}", v) for v in vals("zip4"))
    assert any(s.get("subtype") == "STREET" for _, s, _ in _spans(dev0, entity="LOCATION"))
    assert any(v == v.lower() and " " in v for v in vals("person_lower"))


def test_checksummed_values_valid(dev0):
    for _, _, v in _spans(dev0, entity="CREDIT_CARD"):
        assert make.luhn_ok(re.sub(r"\D", "", v)), v
    for _, _, v in _spans(dev0, entity="IBAN_CODE"):
        assert make.iban_ok(v), v
    for _, _, v in _spans(dev0, form="vin"):
        assert make.vin_ok(v), v
    for r in dev0:
        for n in r["negatives"]:
            v = r["text"][n["start"] : n["end"]]
            if n["kind"] == "luhn_fail_16":
                assert not make.luhn_ok(v.replace(" ", "")), v
            if n["kind"] == "invalid_ipv4":
                with pytest.raises(ValueError):
                    ipaddress.ip_address(v)
            if n["kind"] == "invalid_nanp":
                assert v[0] in "01", v


def test_punctuation_contexts(dev0):
    after = {r["text"][s["end"] : s["end"] + 1] for r, s, _ in _spans(dev0)}
    before = {r["text"][s["start"] - 1 : s["start"]] for r, s, _ in _spans(dev0) if s["start"]}
    assert {".", ",", ")", ">", '"', "'", "\n"} <= after
    assert {"(", "<", '"', "[", " "} <= before
    md = [r["text"][s["start"] - 2 : s["start"]] for r, s, _ in _spans(dev0, form="url_markdown")]
    assert md and all(x == "](" for x in md)
