"""Benchmark the clean stage against the tools users know, measured in the same run.

1. Throughput (docs/s, MB/s, one core) on a generated corpus (default 50 MB) of support
   tickets, code, tables and log dumps: nlpforge's quality rules (web preset, the same
   rule families) with its spaCy pass, nlpforge's full clean (normalise + PII + quality +
   exact dedup), and datatrove's GopherQuality + GopherRepetition + C4Quality +
   FineWebQuality filters on the same documents.
2. PII precision, recall and F1 per entity (exact character spans) on two labelled sets: the
   one of scripts/make_pii_set.py and the independent real-world set of
   scripts/make_pii_realworld.py (its TEST seeds), for nlpforge's patterns, patterns + context
   rules + gazetteers, + spaCy NER, + the NER `nlpforge pii train` fine-tuned (when --trained
   exists), beside presidio-analyzer with pattern recognizers only and with its spaCy NER, all on
   the same texts with their texts/s. Scoring is scripts/measure_pii.py's.

Needs the bench extra: pip install -e ".[bench]"

    python scripts/bench_clean.py --mb 50
    python scripts/bench_clean.py --skip-throughput --pii-texts 3000   # the PII tables only
    python scripts/bench_clean.py --mb 50 --scaling 1 2 --skip-pii      # + local pool against Ray Data, 1 and 2 workers
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import spacy
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_pii_set  # noqa: E402

from nlpforge.console import set_quiet  # noqa: E402
from nlpforge.corpus import quality  # noqa: E402
from nlpforge.corpus.clean import run_clean  # noqa: E402
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


def bench_scaling(docs: list[str], workers: list[int], shards: int = 8) -> list[tuple[str, int, float, float, int]]:
    """The whole clean stage with exact and near dedup, on a local process pool and on Ray Data
    (a local cluster of max(workers) CPUs, started before the clock), over the same JSONL shards.
    Every run must write the same corpus."""
    import ray

    mb = sum(len(d.encode()) for d in docs) / 1e6
    rows, corpora = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        for k in range(shards):
            src = Path(tmp) / f"part-{k:02d}.jsonl"
            src.write_text("\n".join(json.dumps({"text": d}) for d in docs[k::shards]) + "\n")
            inputs.append(str(src))
        data = DataConfig(inputs=inputs, format="text")
        start = time.perf_counter()
        ray.init(num_cpus=max(workers), include_dashboard=False, log_to_driver=False, configure_logging=False)
        print(f"ray.init (local cluster, {max(workers)} CPUs): {time.perf_counter() - start:.1f} s, not counted below")
        for engine in ("local", "ray"):
            for n in workers:
                out = Path(tmp) / f"{engine}-{n}"
                start = time.perf_counter()
                report = run_clean(data, CleanConfig(min_words=1, near_dedup={"enabled": True}, n_process=n, engine=engine), out)
                rows.append((engine, n, time.perf_counter() - start, mb, report["kept_docs"]))
                corpora.add((out / "corpus.jsonl").read_bytes())
        ray.shutdown()
    assert len(corpora) == 1, "the engines or worker counts wrote different corpora"
    return rows


def _records(rows: list[dict], prefix: str) -> list[dict]:
    """make_pii_set rows in the record shape of make_pii_realworld (what measure_pii scores)."""
    return [{"id": f"{prefix}-{i}", "text": r["text"], "spans": r["spans"], "negatives": r.get("negatives", [])} for i, r in enumerate(rows)]


def pii_detectors(trained: str | None) -> list[str]:
    specs = ["nlpforge-patterns", "nlpforge-context=pii_detectors:context", "nlpforge-ensemble=pii_detectors:ensemble"]
    if trained:
        specs.append("nlpforge-trained=pii_detectors:ensemble_trained")
    return [*specs, "presidio-patterns", "presidio-spacy"]


def bench_pii(console: Console, name: str, records: list[dict], specs: list[str]) -> dict:
    """Per-entity exact-span P/R/F1 of each detector on the same texts, with texts/s, using the
    scoring of scripts/measure_pii.py."""
    import measure_pii

    texts = [r["text"] for r in records]
    results: dict[str, dict] = {}
    for spec in specs:
        label, fn, supported = measure_pii.load_detector(spec, 0.0)
        start = time.perf_counter()
        preds = fn(texts)
        seconds = time.perf_counter() - start
        if supported is None:
            supported = {measure_pii.canon(lab) for p in preds for _, _, lab in p if not measure_pii.canon(lab).startswith("OTHER:")}
        res = measure_pii.score(records, preds, supported)
        res["texts_per_s"] = len(texts) / seconds if seconds else float("inf")
        results[label] = res
    present = [e for e in measure_pii.GOLD_ENTITIES if any(res["entities"][e]["gold"] for res in results.values())]
    t = Table(title=f"PII, exact spans: P / R / F1 per entity, {len(records)} texts ({name})")
    t.add_column("entity")
    t.add_column("gold", justify="right")
    for label in results:
        t.add_column(label, justify="right")

    def cell(m: dict) -> str:
        return " / ".join("–" if m[k] is None else f"{m[k]:.3f}" for k in ("p", "r", "f1"))

    for e in present:
        t.add_row(e, str(next(iter(results.values()))["entities"][e]["gold"]), *[cell(res["entities"][e]["exact"]) for res in results.values()])
    t.add_row("overall (claimed entities)", "", *[cell(res["overall_supported"]["exact"]) for res in results.values()])
    t.add_row("overall (all entities)", "", *[cell(res["overall_all"]["exact"]) for res in results.values()])
    if any(res["negatives"]["total"] for res in results.values()):
        t.add_row("hard negatives kept", "", *[f"{res['negatives']['keep_rate']:.3f}" for res in results.values()])
    t.add_row("texts/s", "", *[f"{res['texts_per_s']:,.0f}" for res in results.values()])
    console.print(t)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="size of the generated corpus")
    ap.add_argument("--pii-texts", type=int, default=3000, help="texts of the scripts/make_pii_set.py set")
    ap.add_argument("--seed", type=int, default=1, help="PII set seed (development used seed 0)")
    ap.add_argument("--realworld", type=Path, help="JSONL from make_pii_realworld.py (default: built here from its TEST seeds)")
    ap.add_argument("--realworld-per-seed", type=int, default=600, help="texts per TEST seed when built here")
    ap.add_argument("--trained", default="/tmp/pii_ner", help="folder of `nlpforge pii train` (a column when it exists)")
    ap.add_argument("--skip-throughput", action="store_true", help="only the PII tables")
    ap.add_argument("--scaling", type=int, nargs="*", default=None, metavar="N",
                    help="also time the whole stage (exact + near dedup) on N workers, local pool against Ray Data (e.g. --scaling 1 2); needs the ray extra")
    ap.add_argument("--skip-pii", action="store_true", help="no PII tables")
    args = ap.parse_args()
    set_quiet(True)
    console = Console(width=240)  # eight columns of P / R / F1: wider than a terminal default

    if not args.skip_throughput:
        docs = make_docs(args.mb)
        t = Table(title=f"Throughput, one core, {len(docs)} docs, {sum(len(d.encode()) for d in docs) / 1e6:.1f} MB")
        for col in ("pipeline", "docs/s", "MB/s", "kept"):
            t.add_column(col, justify="right" if col != "pipeline" else "left")
        for name, seconds, mb, kept in bench_throughput(docs):
            t.add_row(name, f"{len(docs) / seconds:,.0f}", f"{mb / seconds:.2f}", f"{kept:,}")
        console.print(t)
        if args.scaling:
            t = Table(title=f"Clean stage with exact + near dedup, {len(docs)} docs in 8 JSONL shards: local process pool against Ray Data")
            for col in ("engine", "workers", "docs/s", "MB/s", "kept"):
                t.add_column(col, justify="right" if col != "engine" else "left")
            for engine, n, seconds, mb, kept in bench_scaling(docs, args.scaling):
                t.add_row(engine, str(n), f"{len(docs) / seconds:,.0f}", f"{mb / seconds:.2f}", f"{kept:,}")
            console.print(t)
    if args.skip_pii:
        return

    # tldextract (under presidio's URL recognizer) tries to download the public suffix list,
    # then falls back to its bundled copy; no network here, so silence the attempt
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    os.environ["NLPFORGE_PII_MODEL"] = args.trained
    specs = pii_detectors(args.trained if Path(args.trained).is_dir() else None)
    old = _records(make_pii_set.generate(args.pii_texts, args.seed), "set")
    bench_pii(console, f"scripts/make_pii_set.py, seed {args.seed}; note: it counts times such as '5:32 pm' as negatives, HIPAA and the real-world set as dates", old, specs)
    if args.realworld:
        rw = [json.loads(line) for line in args.realworld.read_text().splitlines() if line.strip()]
        name = str(args.realworld)
    else:
        import make_pii_realworld

        rw = [r for seed in make_pii_realworld.TEST_SEEDS for r in make_pii_realworld.make_records(seed, args.realworld_per_seed)]
        name = f"scripts/make_pii_realworld.py, TEST seeds {make_pii_realworld.TEST_SEEDS}"
    bench_pii(console, name, rw, specs)


if __name__ == "__main__":
    main()
