#!/usr/bin/env python3
"""Train the factual-consistency checker (nlpforge.evals.checker) for the real-text measurement.

The corpus is the SOURCE documents of the dev split of data/factsets (never the labelled outputs,
never a test document), written as a text corpus ({"text": ...} per line); or any corpus given
with --corpus. Then: python scripts/measure_factuality.py --split test --checker OUT

    python scripts/train_factuality_checker.py --out /tmp/checker-dev            # dev-source corpus
    python scripts/train_factuality_checker.py --corpus corpora/my.jsonl --out runs/checker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def dev_source_corpus(data: Path, out: Path) -> Path:
    """The distinct source documents of the dev split, one {"text"} record each."""
    docs: dict[str, None] = {}
    test_docs: set[str] = set()
    for name in ("extractive", "abstractive"):
        for r in map(json.loads, (data / f"{name}.jsonl").open(encoding="utf-8")):
            (docs.__setitem__(r["source"], None) if r["split"] == "dev" else test_docs.add(r["source"]))
    leaked = [d for d in docs if d in test_docs]
    if leaked:
        raise SystemExit(f"{len(leaked)} dev sources are also test sources; refusing to train on them")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"text": d}) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "data" / "factsets"))
    ap.add_argument("--corpus", help="JSONL corpus ({text} or {messages}); default: the dev-split sources of --data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pairs", type=int, default=5000)
    ap.add_argument("--dev-pairs", type=int, default=400)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=1e-4)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--tune", default="encoder", choices=["encoder", "lora"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from nlpforge.evals.checker_train import train_checker

    out = Path(args.out)
    corpus = Path(args.corpus) if args.corpus else dev_source_corpus(Path(args.data), out / "corpus" / "dev_sources.jsonl")
    t0 = time.time()
    meta = train_checker(corpus, out, pairs=args.pairs, dev_pairs=args.dev_pairs, epochs=args.epochs, max_length=args.max_length, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, lora_r=args.lora_r, tune=args.tune, threads=args.threads, seed=args.seed)
    print(json.dumps(meta, indent=1))
    print(f"trained in {time.time() - t0:.0f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
