"""Serving throughput: requests/s and output tokens/s at several concurrencies.

Compares, on the same bundle and the same requests (completions, greedy, fixed output
length via ``ignore_eos``):
- ``nlpforge serve --engine vllm`` (vLLM AsyncLLM in nlpforge's FastAPI server) against stock
  vLLM's OpenAI server (``nlpforge serve --engine vllm-server`` execs exactly that);
- ``nlpforge serve --engine hf`` (transformers, dynamic batching) against sequential
  ``model.generate`` one request at a time in this process;
and a stress run (``--stress 2000``: requests at concurrency 64) counting non-200 answers.

On a shared machine one pass can lose the CPU to another process, and a server started a few
minutes later sees a different machine. So the systems run in ``--rounds`` rounds, each
starting every system afresh in a rotated order; the table gives the median over rounds
(with the range) and the median of the per-round ratios against the baseline. It also gives
the CPU time the server's process tree spent per request (user + system, all its processes),
which other load on the machine barely moves: for the hf engine, the steadier measure of what
serving costs. Not for vLLM: its engine core spin-waits on its worker (``sched_yield`` in
``MessageQueue.acquire_read``, a third of its samples under load here), so its CPU time
follows wall time. What does separate the two vLLM servers is the CPU time of the API-server
process alone (the engine core is a child process in both): ``api CPU ms/token``, per output
token, which measures nlpforge's own HTTP, detokenising and bookkeeping against stock vLLM's.
The raw numbers go to ``--out`` (JSON). Example:

    python scripts/bench_serve.py --bundle runs/quickstart-chat/export --rounds 5 --stress 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PROMPTS = ["Question: How heavy is the Comet Earbuds?\nAnswer:", "Question: What colours does the Nova Kettle come in?\nAnswer:",
           "Question: How long does shipping take?\nAnswer:", "Question: Can I return an opened item?\nAnswer:"]
SERVERS = {"nlpforge-vllm": ["--engine", "vllm"], "stock-vllm": ["--engine", "vllm-server"], "nlpforge-hf": ["--engine", "hf"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bundle: Path, system: str, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "nlpforge", "serve", str(bundle), "--port", str(port), *SERVERS[system]]
    if system == "nlpforge-hf":
        args += ["--threads", str(threads), "--max-batch", "64", "--max-queue", "4096"]
    elif system == "nlpforge-vllm":
        args += ["--max-queue", "4096"]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{system} exited {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{system} not healthy in 300 s; see {log}")


def tree_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by a process and (``children``) all its descendants."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *(root.children(recursive=True) if children else [])]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def load(url: str, model: str, n: int, concurrency: int, max_tokens: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(concurrency)
    codes: dict[int, int] = {}
    tokens = 0

    async def one(i: int, client: httpx.AsyncClient) -> None:
        nonlocal tokens
        body = {"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
        async with sem:
            try:
                r = await client.post(f"{url}/v1/completions", json=body)
                code = r.status_code
                if code == 200:
                    tokens += r.json()["usage"]["completion_tokens"]
            except httpx.HTTPError:
                code = -1
        codes[code] = codes.get(code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, client) for i in range(n)))
        wall = time.perf_counter() - t0
    return {"requests": n, "seconds": wall, "req_s": n / wall, "tok_s": tokens / wall, "tokens": tokens, "codes": {str(k): v for k, v in codes.items()}}


def sequential_generate(bundle: Path, n: int, max_tokens: int, threads: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tok, model = AutoTokenizer.from_pretrained(bundle), AutoModelForCausalLM.from_pretrained(bundle).eval()
    tokens = 0
    with torch.inference_mode():
        model.generate(**tok(PROMPTS[0], return_tensors="pt"), max_new_tokens=4, do_sample=False)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            out = model.generate(**tok(PROMPTS[i % len(PROMPTS)], return_tensors="pt"), max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                 do_sample=False, eos_token_id=None)
            tokens += out.shape[1] - len(tok(PROMPTS[i % len(PROMPTS)])["input_ids"])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"requests": n, "seconds": wall, "req_s": n / wall, "tok_s": tokens / wall, "codes": {"200": n}, "cpu_ms": 1000 * cpu / n}


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def spread(xs: list[float], fmt: str = ".1f", unit: str = "") -> str:
    if len(xs) == 1:
        return f"{xs[0]:{fmt}}{unit}"
    return f"{median(xs):{fmt}}{unit} ({min(xs):{fmt}}–{max(xs):{fmt}})"


def table(results: dict[str, Any]) -> str:
    rows = ["| system | concurrency | requests (all rounds) | req/s, median (range) | output tok/s, median | server CPU ms/request, median (range) | api CPU ms/token, median (range) | non-200 |",
            "|---|---|---|---|---|---|---|---|"]
    for key in sorted(results, key=lambda k: (results[k]["system"], results[k]["concurrency"])):
        r = results[key]
        runs = r["rounds"]
        bad = sum(v for x in runs for c, v in x["codes"].items() if c != "200")
        rows.append(f"| {r['system']} | {r['concurrency']} | {sum(x['requests'] for x in runs)} | {spread([x['req_s'] for x in runs])} | "
                    f"{median([x['tok_s'] for x in runs]):.0f} | {spread([x['cpu_ms'] for x in runs]) if all('cpu_ms' in x for x in runs) else '-'} | "
                    f"{spread([x['api_ms_tok'] for x in runs], '.3f') if all('api_ms_tok' in x for x in runs) else '-'} | {bad} |")
    for ours, base in [("nlpforge-vllm", "stock-vllm"), ("nlpforge-hf", "hf-sequential")]:
        for c in sorted({r["concurrency"] for r in results.values() if r["system"] == ours}):
            a, b = results.get(f"{ours}@{c}"), results.get(f"{base}@{c}") or results.get(f"{base}@1")
            if a and b:
                pairs = list(zip(a["rounds"], b["rounds"]))  # same round: same machine state
                speed = [x["req_s"] / y["req_s"] for x, y in pairs]
                cost = [x["cpu_ms"] / y["cpu_ms"] for x, y in pairs if "cpu_ms" in x and "cpu_ms" in y]
                api = [x["api_ms_tok"] / y["api_ms_tok"] for x, y in pairs if "api_ms_tok" in x and "api_ms_tok" in y]
                rows.append(f"| {ours} / {base} | {c} | | {spread(speed, '.2f', 'x')} | | {spread(cost, '.2f', 'x') if cost else '-'} | {spread(api, '.2f', 'x') if api else '-'} | |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--systems", default="nlpforge-vllm,stock-vllm,nlpforge-hf,hf-sequential")
    ap.add_argument("--concurrency", default="1,8,32,64")
    ap.add_argument("--requests", type=int, default=8, help="requests per unit of concurrency (at least 32)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the hf engine and of the sequential baseline")
    ap.add_argument("--rounds", type=int, default=5, help="each round starts every system afresh, in a rotated order")
    ap.add_argument("--repeat", type=int, default=1, help="passes per concurrency level within a round; the best counts")
    ap.add_argument("--stress", type=int, default=0, help="after the rounds, send this many requests at concurrency 64 to nlpforge-vllm")
    ap.add_argument("--out", type=Path, default=Path("bench_serve.json"))
    a = ap.parse_args()
    results: dict[str, Any] = {}
    model = json.loads((a.bundle / "nlpforge.json").read_text())["name"]  # the served name (any bundle, also one from another tool)
    levels = [int(x) for x in a.concurrency.split(",")]
    systems = a.systems.split(",")

    def record(system: str, c: int | str, run: dict[str, Any]) -> None:
        results.setdefault(f"{system}@{c}", {"system": system, "concurrency": c, "rounds": []})["rounds"].append(run)

    for rnd in range(a.rounds):
        order = systems[rnd % len(systems):] + systems[: rnd % len(systems)]
        for system in order:
            if system == "hf-sequential":
                n = max(32, a.requests)
                record(system, 1, max((sequential_generate(a.bundle, n, a.max_tokens, a.threads) for _ in range(a.repeat)), key=lambda x: x["req_s"]))
                print(f"round {rnd + 1} {system}: {results[f'{system}@1']['rounds'][-1]['req_s']:.1f} req/s", file=sys.stderr)
                continue
            proc, url = start(a.bundle, system, a.threads, a.out.with_suffix(f".{system}.log"))
            try:
                asyncio.run(load(url, model, 16, 8, a.max_tokens))  # warm-up
                for c in levels:
                    runs = []
                    for _ in range(a.repeat):
                        c0, api0 = tree_cpu(proc.pid), tree_cpu(proc.pid, children=False)
                        run = asyncio.run(load(url, model, max(32, a.requests * c), c, a.max_tokens))
                        api_ms_tok = 1000 * (tree_cpu(proc.pid, children=False) - api0) / max(run["tokens"], 1)
                        runs.append({**run, "cpu_ms": 1000 * (tree_cpu(proc.pid) - c0) / run["requests"], "api_ms_tok": api_ms_tok})
                    r = max(runs, key=lambda x: x["req_s"])
                    r["codes"] = {k: sum(x["codes"].get(k, 0) for x in runs) for k in {k for x in runs for k in x["codes"]}}
                    r["requests"] = sum(x["requests"] for x in runs)
                    record(system, c, r)
                    print(f"round {rnd + 1} {system} c={c}: {r['req_s']:.1f} req/s, {r['tok_s']:.0f} tok/s, codes {r['codes']}", file=sys.stderr)
                if a.stress and system == "nlpforge-vllm" and rnd == a.rounds - 1:
                    r = asyncio.run(load(url, model, a.stress, 64, 16))
                    record(f"{system} stress (16 tok)", 64, r)
                    print(f"stress: {r['codes']}", file=sys.stderr)
            finally:
                stop(proc)
            a.out.write_text(json.dumps(results, indent=2))
    a.out.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
