"""Rows/s of `nlpforge score`'s engine for classification and perplexity against transformers
`pipeline()` at batch_size 1 and 32, on the same model, data and thread count, in one run.

Classification: the MiniLM classifier bundle (scripts/build_classifier_bundle.py) over support
tickets of mixed length. Perplexity: transformers has no perplexity pipeline, so its baselines
are the usual loops: one row at a time with ``model(ids, labels=ids)`` (batch 1) and padded
batches of 32 in input order (batch 32); ours is HFEngine.perplexity (length-sorted batches).
With ``--vllm`` the vLLM engine is measured too (engine start excluded, reported apart).

    python scripts/bench_score.py --threads 2
    python scripts/bench_score.py --threads 2 --ray   # + whole jobs: one process against Ray replicas
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

WORDS = ("my order never arrived and the tracking page shows nothing since last week the invoice lists a charge twice "
         "the app crashes after the update when I open settings please reset my password I cannot log in the refund "
         "for the kettle is missing the earbuds stopped charging can you change the delivery address").split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Ticket-like texts, 4 to ~200 words (long-tailed, as real tickets are)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(min(200, int(rng.paretovariate(1.2) * 6) + 3))) for _ in range(n)]


def timed(fn, rows: int) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - t0)


def bench_classify(bundle: Path, texts: list[str], bs1_rows: int, batch_size: int) -> list[tuple[str, float]]:
    from transformers import pipeline

    from nlpforge.engines import load_engine

    pipe = pipeline("text-classification", model=str(bundle), top_k=None, truncation=True, max_length=256)
    engine = load_engine(bundle, "hf", batch_size=batch_size)
    bf16 = load_engine(bundle, "hf", batch_size=batch_size, dtype="bfloat16")
    pipe(texts[:8], batch_size=8)  # warm-up
    engine.classify(texts[:8])
    bf16.classify(texts[:8])
    return [
        ("transformers pipeline, batch_size=1", timed(lambda: pipe(texts[:bs1_rows], batch_size=1), bs1_rows)),
        ("transformers pipeline, batch_size=32", timed(lambda: pipe(texts, batch_size=32), len(texts))),
        (f"nlpforge HF engine (length-sorted, batch {batch_size})", timed(lambda: engine.classify(texts), len(texts))),
        (f"nlpforge HF engine, --dtype bfloat16 (length-sorted, batch {batch_size})", timed(lambda: bf16.classify(texts), len(texts))),
    ]


@torch.inference_mode()
def _ppl_loop(model, tok, texts: list[str], bs: int) -> None:  # noqa: ANN001
    for b in range(0, len(texts), bs):
        enc = tok(texts[b : b + bs], return_tensors="pt", padding=True, truncation=True, max_length=512)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        logits = model(**enc).logits[:, :-1]
        torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none").sum(-1)


def bench_perplexity(bundle: Path, texts: list[str], bs1_rows: int, batch_size: int) -> list[tuple[str, float]]:
    from nlpforge.engines import load_engine

    engine = load_engine(bundle, "hf", batch_size=batch_size)
    model, tok = engine.model, engine.tok
    tok.padding_side = "right"
    engine.perplexity(texts[:8])
    return [
        ("per-row loop model(ids, labels=ids), batch 1", timed(lambda: _ppl_loop(model, tok, texts[:bs1_rows], 1), bs1_rows)),
        ("padded batches of 32 in input order", timed(lambda: _ppl_loop(model, tok, texts, 32), len(texts))),
        (f"nlpforge HF engine (length-sorted, batch {batch_size})", timed(lambda: engine.perplexity(texts), len(texts))),
    ]


def bench_vllm(spec: dict) -> dict:
    """The vLLM engine in a child process (LLM(...) must start under __main__)."""
    import subprocess

    with tempfile.TemporaryDirectory() as d:
        Path(d, "spec.json").write_text(json.dumps(spec))
        code = (
            "import json,sys,time\nfrom pathlib import Path\nfrom nlpforge.engines import load_engine\n"
            "if __name__ == '__main__':\n"
            " s=json.loads(Path(sys.argv[1]).read_text()); t=time.time(); e=load_engine(Path(s['bundle']),'vllm'); start=time.time()-t\n"
            " getattr(e,s['method'])(s['texts'][:8]); t=time.time(); getattr(e,s['method'])(s['texts']); rate=len(s['texts'])/(time.time()-t)\n"
            " Path(sys.argv[2]).write_text(json.dumps({'start_s':start,'rows_per_s':rate})); e.close()\n"
        )
        Path(d, "job.py").write_text(code)
        subprocess.run([sys.executable, str(Path(d, "job.py")), str(Path(d, "spec.json")), str(Path(d, "out.json"))], check=True, capture_output=True)
        return json.loads(Path(d, "out.json").read_text())


def bench_jobs(bundle: Path, texts: list[str], batch_size: int, threads: int, tmp: Path) -> list[tuple[str, float]]:
    """Whole `nlpforge score` jobs (read, chunks, ledger, output; model loading included): one
    process with all the threads, against Ray replicas of one thread each on a local cluster of
    as many CPUs (cluster start not counted). Both must write the same rows."""
    import ray

    from nlpforge.score.runner import ScoreJob, run_score

    src = tmp / "rows.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    out, rates = {}, []
    for name, opts in (("local", {"threads": threads}), ("ray", {"threads": 1, "ray": True, "replicas": threads})):
        if name == "ray":
            start = time.perf_counter()
            ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False, configure_logging=False)
            print(f"ray.init (local cluster, {threads} CPUs): {time.perf_counter() - start:.1f} s, not counted")
        dest = tmp / f"scored-{name}.jsonl"
        start = time.perf_counter()
        run_score(ScoreJob(src, dest, "classify", str(bundle), "hf", batch_size=batch_size, chunk_rows=250, fresh=True, **opts))
        rates.append((f"score job, classify, {'Ray: ' + str(threads) + ' replicas x 1 thread' if name == 'ray' else f'one process, {threads} threads'}",
                      len(texts) / (time.perf_counter() - start)))
        out[name] = [json.loads(x)["pred"] for x in dest.read_text().splitlines()]
    ray.shutdown()
    assert out["local"] == out["ray"], "Ray and local scoring disagree"
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--bs1-rows", type=int, default=400, help="rows for the batch-1 baselines (rows/s is what is compared)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--classifier", type=Path, help="classifier bundle (default: built from MiniLM)")
    ap.add_argument("--chat-model", type=Path, help="causal LM bundle/folder for perplexity (default: the tiny model, built)")
    ap.add_argument("--vllm", action="store_true", help="also measure the vLLM engine")
    ap.add_argument("--ray", action="store_true", help="also time whole score jobs: one process against Ray replicas (needs the ray extra)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_score_"))
    if a.classifier is None:
        import build_classifier_bundle

        a.classifier = build_classifier_bundle.build(tmp / "classifier")
    if a.chat_model is None:
        import build_tiny_model

        a.chat_model = build_tiny_model.build(tmp / "tiny", steps=50, log=False)
    texts = make_texts(a.rows)
    words = sorted(len(t.split()) for t in texts)
    print(f"{a.rows} texts, words per text: median {words[len(words) // 2]}, p90 {words[int(len(words) * 0.9)]}, max {words[-1]}; torch threads {a.threads}")

    results = {"classify": bench_classify(a.classifier, texts, a.bs1_rows, a.batch_size), "perplexity": bench_perplexity(a.chat_model, texts, a.bs1_rows, a.batch_size)}
    if a.vllm:
        for task, bundle, method in (("classify", a.classifier, "classify"), ("perplexity", a.chat_model, "perplexity")):
            r = bench_vllm({"bundle": str(bundle), "method": method, "texts": texts})
            results[task].append((f"nlpforge vLLM engine (start {r['start_s']:.0f} s not counted)", r["rows_per_s"]))

    if a.ray:
        from nlpforge.console import set_quiet

        set_quiet(True)
        jobs = bench_jobs(a.classifier, texts, a.batch_size, a.threads, tmp)
        print("\n| job | rows/s | vs one process |\n|---|---:|---:|")
        for name, rate in jobs:
            print(f"| {name} | {rate:,.1f} | {rate / jobs[0][1]:.2f}x |")

    print("\n| task | method | rows/s | vs batch 1 | vs batch 32 |\n|---|---|---:|---:|---:|")
    for task, rows in results.items():
        bs1, bs32 = rows[0][1], rows[1][1]
        for name, rate in rows:
            print(f"| {task} | {name} | {rate:,.1f} | {rate / bs1:.2f}x | {rate / bs32:.2f}x |")


if __name__ == "__main__":
    main()
