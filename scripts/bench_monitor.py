"""What online factuality monitoring costs the server: the same grounded chat requests (each with
``metadata.context``) against ``nlpforge serve --engine hf`` with monitoring on (answers scored
against their context in the niced worker process) and off (``--no-monitor-factuality``):
closed-loop at concurrency 8 and 32 (the server saturated), and open-loop at a fixed ``--rate``
below capacity (a server with idle CPU, where the worker catches up). Each round starts both
servers afresh in a rotated order; the table gives requests/s and p50/p95 latency (medians over
rounds), the median per-round ratio, and the share of grounded answers that got scored (the
rest were dropped from the full queue and counted). The baseline is the same server without
monitoring, in the same run.

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


def counts(url: str) -> tuple[float, float]:
    """Grounded answers scored and dropped so far."""
    text = httpx.get(f"{url}/metrics").text

    def total(prefix: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))

    return total("nlpforge_hallucination_score_count"), total("nlpforge_factuality_dropped_total")


def settle(url: str, before: tuple[float, float], n: int, on: bool, limit: float = 90) -> float:
    """Wait until the worker has scored or dropped this phase's ``n`` answers; the share scored."""
    deadline = time.time() + limit
    while on and time.time() < deadline:
        s, d = counts(url)
        if s - before[0] + d - before[1] >= n:
            break
        time.sleep(0.5)
    s, _ = counts(url)
    return (s - before[0]) / n if on else 0.0


async def open_loop(url: str, model: str, n: int, rate: float, max_tokens: int) -> dict[str, Any]:
    """``n`` requests started at ``rate`` per second whatever the answers' pace."""
    lat: list[float] = []

    async def one(i: int, client: httpx.AsyncClient) -> None:
        await asyncio.sleep(i / rate)
        body = {"model": model, "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], "max_tokens": max_tokens,
                "temperature": 0, "metadata": {"context": CONTEXT}}
        t = time.perf_counter()
        await client.post(f"{url}/v1/chat/completions", json=body)
        lat.append(time.perf_counter() - t)

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=256)) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, client) for i in range(n)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"req_s": n / wall, "p50": lat[len(lat) // 2], "p95": lat[int(len(lat) * 0.95) - 1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--concurrency", default="8,32")
    ap.add_argument("--requests", type=int, default=8, help="requests per unit of concurrency")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=15.0, help="open-loop requests/s (below the server's capacity)")
    ap.add_argument("--open-requests", type=int, default=150)
    ap.add_argument("--out", type=Path, default=Path("bench_monitor.json"))
    args = ap.parse_args()
    model = json.loads((args.bundle / "nlpforge.json").read_text())["name"]
    levels: list[Any] = [int(c) for c in args.concurrency.split(",")] + [f"open {args.rate:g}/s"]
    results: dict[str, dict[Any, list[dict]]] = {s: {c: [] for c in levels} for s in SYSTEMS}
    order = list(SYSTEMS)
    for rnd in range(args.rounds):
        for system in order[rnd % 2:] + order[:rnd % 2]:
            bench_serve.SERVERS[system] = ["--engine", "hf", "--threads", str(args.threads), "--max-batch", "64", "--max-queue", "4096", *SYSTEMS[system]]
            proc, url = bench_serve.start(args.bundle, system, args.threads, Path(f"/tmp/bench_monitor_{system}.log"))
            try:
                on = system == "monitor-on"
                before = counts(url)
                # warm-up, the same for both (and spaCy's load in the worker); the first measured
                # phase must not be the one that warms the engine
                asyncio.run(load(url, model, 64, 8, args.max_tokens))
                settle(url, before, 64, on)
                time.sleep(2)
                for c in levels:
                    before = counts(url)
                    cpu0 = bench_serve.tree_cpu(proc.pid)
                    if isinstance(c, int):
                        n = max(32, args.requests * c)
                        r = asyncio.run(load(url, model, n, c, args.max_tokens))
                    else:
                        n = args.open_requests
                        r = asyncio.run(open_loop(url, model, n, args.rate, args.max_tokens))
                    r["scored_share"] = settle(url, before, n, on)
                    # the server's process tree (the monitoring worker included) until the worker is done
                    r["cpu_ms_per_request"] = (bench_serve.tree_cpu(proc.pid) - cpu0) / n * 1000
                    results[system][c].append(r)
                    print(f"round {rnd + 1} {system} {c}: {r['req_s']:.1f} req/s, p50 {r['p50'] * 1000:.0f} ms, p95 {r['p95'] * 1000:.0f} ms, "
                          f"scored {r['scored_share']:.0%}, server CPU {r['cpu_ms_per_request']:.1f} ms/request", flush=True)
            finally:
                bench_serve.stop(proc)
    args.out.write_text(json.dumps(results, indent=1))
    print("\n| system | load | req/s, median (range) | p50 ms | p95 ms | server CPU ms/request | grounded answers scored |")
    print("|---|---|---|---|---|---|---|")
    for c in levels:
        for system in SYSTEMS:
            rs = results[system][c]
            req = [r["req_s"] for r in rs]
            share = f"{statistics.median(r['scored_share'] for r in rs):.0%}" if system == "monitor-on" else "-"
            print(f"| {system} | {c} | {statistics.median(req):.1f} ({min(req):.1f}–{max(req):.1f}) | "
                  f"{statistics.median(r['p50'] for r in rs) * 1000:.0f} | {statistics.median(r['p95'] for r in rs) * 1000:.0f} | "
                  f"{statistics.median(r['cpu_ms_per_request'] for r in rs):.1f} | {share} |")
        ratios = [on["req_s"] / off["req_s"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        p50 = [on["p50"] / off["p50"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        p95 = [on["p95"] / off["p95"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        cpu = [on["cpu_ms_per_request"] / off["cpu_ms_per_request"] for on, off in zip(results["monitor-on"][c], results["monitor-off"][c])]
        print(f"| on / off | {c} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}) | {statistics.median(p50):.2f}x | "
              f"{statistics.median(p95):.2f}x | {statistics.median(cpu):.2f}x | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
