"""Benchmark the clean stage against the tools users know, measured in the same run.

1. Throughput (docs/s, MB/s, one core) on a generated corpus (default 50 MB) of support
   tickets, code, tables and log dumps: nlpforge's quality rules (web preset, the same
   rule families) with its spaCy pass, nlpforge's full clean (normalise + PII + quality +
   exact dedup), and datatrove's GopherQuality + GopherRepetition + C4Quality +
   FineWebQuality filters on the same documents.
2. PII precision and recall per entity (exact character spans) on the labelled set of
   scripts/make_pii_set.py, beside presidio-analyzer's pattern recognizers on the same
   set, with both throughputs.

Needs the bench extra: pip install -e ".[bench]"

    python scripts/bench_clean.py --mb 50
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import spacy
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_pii_set  # noqa: E402

from nlpforge.console import set_quiet  # noqa: E402
from nlpforge.corpus import quality  # noqa: E402
from nlpforge.corpus.clean import run_clean  # noqa: E402
from nlpforge.corpus.pii import ENTITIES, find_pii  # noqa: E402
from nlpforge.recipe import CleanConfig, DataConfig  # noqa: E402

SENTENCES = [
    "The customer reported that the kettle stopped heating after two weeks of normal use.",
    "We replaced the unit under warranty and shipped it with express delivery.",
    "Please confirm the serial number printed on the base of the device.",
    "The refund was issued to the original payment method within five business days.",
    "Our records show the package was delivered to the front desk of the building.",
    "If the problem persists, reset the speaker by holding the power button for ten seconds.",
    "The battery should last about eighteen hours at medium volume.",
    "I have attached the invoice and the photo of the damaged box to this message.",
]
CODE = 'def total(items):\n    """Sum the line items."""\n    return sum(i["price"] * i["qty"] for i in items)\n'
TABLE = "| sku | stock | price |\n|---|---|---|\n| NW-1 | 14 | 49.00 |\n| NW-2 | 3 | 89.99 |\n"


PRODUCTS = ["kettle", "lamp", "speaker", "earbuds", "charger", "backpack", "watch", "fan", "doorbell", "tablet", "mouse", "heater"]
WORDS = "after before during while because although when unless since until the a my our their this that".split()


def sentence(rng: random.Random) -> str:
    """A template sentence with a product, numbers and a random clause, so documents vary."""
    base = rng.choice(SENTENCES).replace("kettle", rng.choice(PRODUCTS)).replace("speaker", rng.choice(PRODUCTS))
    clause = f" {rng.choice(WORDS)} {rng.choice(PRODUCTS)} {rng.randint(2, 999)} was {rng.choice(['late', 'fine', 'noisy', 'broken', 'returned'])}"
    return base[:-1] + (clause if rng.random() < 0.6 else "") + "."


def make_docs(megabytes: float, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    docs, size = [], 0
    while size < megabytes * 1e6:
        kind = rng.random()
        if kind < 0.7:
            paragraphs = ["\n".join(" ".join(sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(2, 6))]
            doc = "\n\n".join(paragraphs) + f"\nContact: {rng.choice(['jo@example.com', '415-555-0132', 'no contact'])}"
        elif kind < 0.8:
            doc = "Here is the script I use:\n" + CODE * rng.randint(1, 4)
        elif kind < 0.9:
            doc = "Stock report\n" + TABLE * rng.randint(1, 3)
        else:
            doc = " ".join(f"ERR{rng.randint(0, 99999)} timeout at node{rng.randint(0, 9)}." for _ in range(rng.randint(20, 200)))
        docs.append(doc)
        size += len(doc.encode())
    return docs


def bench_throughput(docs: list[str]) -> list[tuple[str, float, float, int]]:
    mb = sum(len(d.encode()) for d in docs) / 1e6
    rows = []

    # nlpforge quality rules (web preset) over one spaCy pass
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    limits = quality.thresholds("web", {})
    start, kept = time.perf_counter(), 0
    texts = ("\n".join(line for line in d.split("\n") if quality.c4_line_ok(line)) for d in docs)  # C4 line rules, as datatrove's C4 filter
    for text, doc in zip(docs, nlp.pipe(texts, batch_size=256)):
        words = [t.text for t in doc if not (t.is_punct or t.is_space)]
        kept += quality.check(text, words, sum(1 for _ in doc.sents), limits) is None
    rows.append(("nlpforge quality rules, web preset, C4 lines (+ spaCy pass)", time.perf_counter() - start, mb, kept))

    # nlpforge full clean stage: normalise, PII, quality (domain), exact dedup, files written
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "docs.jsonl"
        src.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
        start = time.perf_counter()
        report = run_clean(DataConfig(inputs=[str(src)], format="text"), CleanConfig(min_words=1), Path(tmp) / "out")
        rows.append(("nlpforge clean stage (normalise+PII+quality+dedup, I/O)", time.perf_counter() - start, mb, report["kept_docs"]))

    # datatrove: the four quality filters, as a pipeline would chain them
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    start, kept = time.perf_counter(), 0
    for i, text in enumerate(docs):
        d = Document(text=text, id=str(i))
        ok = True
        for f in filters:
            res = f.filter(d)
            if not (res[0] if isinstance(res, tuple) else res):
                ok = False
                break
        kept += ok
    rows.append(("datatrove Gopher quality+repetition, C4, FineWeb", time.perf_counter() - start, mb, kept))
    return rows


def presidio_find(text: str, recognizers: list) -> set[tuple[int, int, str]]:
    results = []
    for rec in recognizers:
        results += rec.analyze(text, rec.supported_entities, None)
    # resolve overlaps as the analyzer does: keep the higher score, then the longer span
    results.sort(key=lambda r: (-r.score, -(r.end - r.start)))
    chosen: list = []
    for r in results:
        if r.score > 0 and not any(c.start < r.end and r.start < c.end for c in chosen):
            chosen.append(r)
    return {(r.start, r.end, r.entity_type) for r in chosen}


def score(rows: list[dict], find) -> tuple[dict[str, tuple[float, float, float]], float]:
    tp, fp, fn = Counter(), Counter(), Counter()
    start = time.perf_counter()
    preds = [find(r["text"]) for r in rows]
    seconds = time.perf_counter() - start
    for r, pred in zip(rows, preds):
        gold = {(s["start"], s["end"], s["entity"]) for s in r["spans"]}
        for g in gold:
            (tp if g in pred else fn)[g[2]] += 1
        for p in pred - gold:
            fp[p[2]] += 1
    out = {}
    for e in ENTITIES:
        p = tp[e] / (tp[e] + fp[e]) if tp[e] + fp[e] else 0.0
        rc = tp[e] / (tp[e] + fn[e]) if tp[e] + fn[e] else 0.0
        out[e] = (p, rc, 2 * p * rc / (p + rc) if p + rc else 0.0)
    return out, len(rows) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="size of the generated corpus")
    ap.add_argument("--pii-texts", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1, help="PII set seed (development used seed 0)")
    args = ap.parse_args()
    set_quiet(True)
    console = Console()

    docs = make_docs(args.mb)
    t = Table(title=f"Throughput, one core, {len(docs)} docs, {sum(len(d.encode()) for d in docs) / 1e6:.1f} MB")
    for col in ("pipeline", "docs/s", "MB/s", "kept"):
        t.add_column(col, justify="right" if col != "pipeline" else "left")
    for name, seconds, mb, kept in bench_throughput(docs):
        t.add_row(name, f"{len(docs) / seconds:,.0f}", f"{mb / seconds:.2f}", f"{kept:,}")
    console.print(t)

    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    # tldextract (under presidio's URL recognizer) tries to download the public suffix list,
    # then falls back to its bundled copy; no network here, so silence the attempt
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    recognizers = [EmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer(), IpRecognizer(), UrlRecognizer(), UsSsnRecognizer(), DateRecognizer()]
    rows = make_pii_set.generate(args.pii_texts, args.seed)
    ours, ours_rate = score(rows, lambda text: {(s.start, s.end, s.entity) for s in find_pii(text, ENTITIES)})
    theirs, theirs_rate = score(rows, lambda text: presidio_find(text, recognizers))
    t = Table(title=f"PII, exact spans, {len(rows)} labelled texts (scripts/make_pii_set.py, seed {args.seed})")
    for col in ("entity", "nlpforge P", "nlpforge R", "nlpforge F1", "presidio P", "presidio R", "presidio F1"):
        t.add_column(col, justify="right" if col != "entity" else "left")
    for e in ENTITIES:
        t.add_row(e, *[f"{x:.3f}" for x in ours[e]], *[f"{x:.3f}" for x in theirs[e]])
    t.add_row("texts/s", f"{ours_rate:,.0f}", "", "", f"{theirs_rate:,.0f}", "", "")
    console.print(t)


if __name__ == "__main__":
    main()
