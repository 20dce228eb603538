"""What online factuality monitoring costs the server: the same grounded chat requests (each with
``metadata.context``) against ``nlpforge serve --engine hf`` with monitoring on (every answer
scored against its context in the scoring thread) and off (``--no-monitor-factuality``), at
concurrency 8 and 32. Each round starts both servers afresh in a rotated order; the table
gives requests/s and p50/p95 latency (medians over rounds) and the median per-round ratio.
The baseline is the same server without monitoring, in the same run.

    python scripts/bench_monitor.py --bundle runs/quickstart-chat/export --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_serve  # noqa: E402  (start/stop of a server process)

QUESTIONS = ["How heavy is the Comet Earbuds?", "What colours does the Nova Kettle come in?", "How long does shipping take?", "Can I return an opened item?"]
CONTEXT = ("Northwind Gadgets product sheet. The Comet Earbuds weigh 48 grams, cost $59 and come in black and white. "
           "The Nova Kettle holds 1.7 litres and comes in red, cream and steel. Standard shipping takes 3 to 5 business days. "
           "Opened items can be returned within 30 days with the receipt.")
SYSTEMS = {"monitor-on": ["--monitor-factuality"], "monitor-off": ["--no-monitor-factuality"]}


async def load(url: str, model: str, n: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    codes: dict[str, int] = {}

    async def one(i: int, client: httpx.AsyncClient) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], "max_tokens": max_tokens,
                "temperature": 0, "metadata": {"context": CONTEXT}}
        async with sem:
            t = time.perf_counter()
            r = await client.post(f"{url}/v1/chat/completions", json=body)
            lat.append(time.perf_counter() - t)
        codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, client) for i in range(n)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"req_s": n / wall, "p50": lat[len(lat) // 2], "p95": lat[int(len(lat) * 0.95) - 1], "codes": codes}


def scored(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("nlpforge_hallucination_score_count"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--concurrency", default="8,32")
    ap.add_argument("--requests", type=int, default=8, help="requests per unit of concurrency")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench_monitor.json"))
    args = ap.parse_args()
    model = json.loads((args.bundle / "nlpforge.json").read_text())["name"]
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, dict[int, list[dict]]] = {s: {c: [] for c in levels} for s in SYSTEMS}
    order = list(SYSTEMS)
    for rnd in range(args.rounds):
        for system in order[rnd % 2:] + order[:rnd % 2]:
            bench_serve.SERVERS[system] = ["--engine", "hf", "--threads", str(args.threads), "--max-batch", "64", "--max-queue", "4096", *SYSTEMS[system]]
            proc, url = bench_serve.start(args.bundle, system, args.threads, Path(f"/tmp/bench_monitor_{system}.log"))
            try:
                asyncio.run(load(url, model, 8, 8, args.max_tokens))  # warm-up (and spaCy's load in the scoring thread)
                for c in levels:
                    r = asyncio.run(load(url, model, max(32, args.requests * c), c, args.max_tokens))
                    r["scored"] = scored(url)
                    results[system][c].append(r)
                    print(f"round {rnd + 1} {system} c={c}: {r['req_s']:.1f} req/s, p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, "
                          f"scored so far {r['scored']:.0f}, codes {r['codes']}", flush=True)
            finally:
                bench_serve.stop(proc)
    args.out.write_text(json.dumps(results, indent=1))
    print("\n| system | concurrency | req/s, median (range) | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for c in levels:
        for system in SYSTEMS:
            rs = results[system][c]
            req = [r["req_s"] for r in rs]
            print(f"| {system} | {c} | {statistics.median(req):.1f} ({min(req):.1f}–{max(req):.1f}) | "
                  f"{statistics.median(r['p50'] for r in rs) * 1000:.0f} | {statistics.median(r['p95'] for r in rs) * 1000:.0f} |")
        ratios = [on["req_s"] / off["req_s"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        p95 = [on["p95"] / off["p95"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        print(f"| on / off | {c} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}) | | {statistics.median(p95):.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
