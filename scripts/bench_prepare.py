"""Prepare and the training data it hands to the trainer, on a generated chat corpus: rows/s and
peak RSS of `prepare` (tokenise, mask, JSONL, then the Arrow token file; the corpus is read by
offset, never held), of `data.streaming` (prepare writes only the eval split; the trainer's
stream renders rows as it reads them), and the RAM that the
train split takes once loaded the old way (every row a Python dict of lists, what training read
before) against the memory-mapped Arrow file training reads now, each measured in a fresh
process in the same run.

    python scripts/bench_prepare.py --mb 2048     # the issue's 2 GB corpus (long: prepare is a Python loop)
    python scripts/bench_prepare.py --mb 50 --num-proc 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

LIST_ROWS = 200_000  # rows loaded the old way (the heap per row is what matters; all rows of 2 GB would exceed this machine's RAM)
STREAM_ROWS = 50_000  # rows of the training stream timed (the trainer reads max_steps * batch of them)
WORDS = ("order kettle refund warranty parcel tracking invoice charge password login account address delivery battery "
         "speaker lamp earbuds charger backpack replace return week month days thanks please help broken arrived").split()


def make_corpus(path: Path, megabytes: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    n, size = 0, 0
    with open(path, "w") as f:
        while size < megabytes * 1e6:
            msgs = [{"role": "system", "content": "You are the support assistant. Answer briefly."}]
            for _ in range(rng.randint(1, 3)):
                msgs.append({"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) + "?"})
                msgs.append({"role": "assistant", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))) + "."})
            line = json.dumps({"messages": msgs, "source": f"gen:{n}"}) + "\n"
            f.write(line)
            n, size = n + 1, size + len(line)
    return n


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anon_mb() -> float:
    """Anonymous resident memory (the heap; memory-mapped file pages are RssFile, which the kernel can drop)."""
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(args: argparse.Namespace) -> None:
    """One measurement, alone in its process (peak RSS is per process)."""
    from nlpforge.console import set_quiet

    set_quiet(True)
    import datasets  # noqa: F401 - imported before the baseline, in every child: its own heap is not the data's

    from nlpforge.data.arrow import token_rows
    from nlpforge.recipe import Recipe
    from nlpforge.tasks import task_for

    base = anon_mb()
    start = time.perf_counter()
    if args.child == "prepare":
        data = {"inputs": ["x.jsonl"], "num_proc": args.num_proc, "streaming": bool(args.streaming)}
        r = Recipe.model_validate({"name": "b", "data": data, "model": {"path": str(args.model), "max_length": 512}, "train": {"max_steps": 100 if args.streaming else -1}})
        out = task_for(r).prepare(r, args.corpus, args.out)
        rows = out["train_rows"] + out["eval_rows"]
        held = None
    elif args.child == "stream":  # data.streaming: one pass of the training stream, as the trainer reads it
        from nlpforge.artifacts import PrepareMeta
        from nlpforge.data.stream import train_stream
        from nlpforge.models import load_tokenizer

        r = Recipe.model_validate({"name": "b", "data": {"inputs": ["x.jsonl"], "streaming": True}, "model": {"path": str(args.model), "max_length": 512}, "train": {"max_steps": 100}})
        meta = PrepareMeta.read(args.out)
        rows = sum(1 for _ in itertools.islice(train_stream(r, args.out / meta.streaming_corpus, load_tokenizer(r)), STREAM_ROWS))
        held = None
    elif args.child == "corpus":  # what prepare held before it read the corpus by offset: every row a dict (the first LIST_ROWS)
        held = list(map(json.loads, itertools.islice(open(args.corpus), LIST_ROWS)))
        rows = len(held)
    elif args.child == "list":  # what training held before: every row a dict of Python lists (the first LIST_ROWS: a 2 GB corpus's would not fit in RAM)
        lines = itertools.islice(open(args.out / "train.jsonl"), LIST_ROWS)
        rows_list = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in map(json.loads, lines)]
        rows = len(rows_list)
        held = rows_list
    else:  # the memory-mapped Arrow file, read in one pass
        ds = token_rows(args.out, "train")
        rows = len(ds)
        sum(len(x) for b in ds.iter(batch_size=10_000) for x in b["input_ids"])  # one pass, as the length sampler makes
        held = ds
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb(), "added_mb": anon_mb() - base, "held": type(held).__name__}))


def measure(kind: str, **opts: Path | int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, *[x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))]]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=2048)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--streaming", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--num-proc", type=int, default=1, help="prepare is also timed with data.num_proc at this value (datasets.map)")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import build_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    model = build_tiny_model.build(tmp / "tiny", steps=1, log=False)  # only its tokenizer and template are used
    corpus = tmp / "corpus.jsonl"
    n = make_corpus(corpus, args.mb)
    print(f"corpus: {n:,} conversations, {corpus.stat().st_size / 1e6:,.0f} MB", flush=True)
    prep = measure("prepare", model=model, corpus=corpus, out=tmp / "prep")
    if args.num_proc > 1:
        par = measure("prepare", model=model, corpus=corpus, out=tmp / "prep-par", num_proc=args.num_proc)
        same = all((tmp / "prep" / f).read_bytes() == (tmp / "prep-par" / f).read_bytes() for f in ("train.jsonl", "eval.jsonl", "train.arrow"))
        print(f"prepare, data.num_proc={args.num_proc} (datasets.map): {par['rows'] / par['seconds']:,.0f} rows/s, {prep['seconds'] / par['seconds']:.2f}x; "
              f"peak RSS {par['peak_mb']:,.0f} MB (main process); same files: {same}")
    jsonl_mb = (tmp / "prep/train.jsonl").stat().st_size / 1e6
    arrow_mb = (tmp / "prep/train.arrow").stat().st_size / 1e6
    print(f"\nprepare: {prep['rows']:,} rows in {prep['seconds']:.1f} s = {prep['rows'] / prep['seconds']:,.0f} rows/s; peak RSS {prep['peak_mb']:,.0f} MB, "
          f"heap at the end {prep['added_mb']:,.0f} MB above the imports "
          f"(train.jsonl {jsonl_mb:,.0f} MB, train.arrow {arrow_mb:,.0f} MB)", flush=True)
    before = measure("corpus", corpus=corpus)
    print(f"the corpus as Python rows (what prepare held before it read by offset): {before['added_mb']:,.0f} MB of heap for {before['rows']:,} rows, "
          f"so about {before['added_mb'] / before['rows'] * n / 1024:,.1f} GB for all {n:,}", flush=True)
    streamed = measure("prepare", model=model, corpus=corpus, out=tmp / "prep-stream", streaming=1)
    stream = measure("stream", model=model, out=tmp / "prep-stream")
    print(f"data.streaming: prepare (eval split only) {streamed['seconds']:.1f} s, peak RSS {streamed['peak_mb']:,.0f} MB; the training stream rendered "
          f"its first {stream['rows']:,} rows at {stream['rows'] / stream['seconds']:,.0f} rows/s, peak RSS {stream['peak_mb']:,.0f} MB, nothing written\n", flush=True)
    old = measure("list", out=tmp / "prep")
    new = measure("arrow", out=tmp / "prep")
    print("| train split, read in one pass | rows | seconds | peak RSS MB | heap held for the data MB |\n|---|---:|---:|---:|---:|")
    for name, m in (("rows as Python dicts (the previous path)", old), ("memory-mapped Arrow (train now)", new)):
        print(f"| {name} | {m['rows']:,} | {m['seconds']:.1f} | {m['peak_mb']:,.0f} | {m['added_mb']:,.0f} |")
    if old["rows"] < new["rows"]:
        print(f"\nthe Python rows for all {new['rows']:,}: about {old['added_mb'] / old['rows'] * new['rows'] / 1024:,.1f} GB of heap (from the {old['rows']:,} loaded)")


if __name__ == "__main__":
    main()
