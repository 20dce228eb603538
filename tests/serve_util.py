"""Start `nlpforge serve` in a subprocess on a free loopback port and wait until it is healthy."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url, self.proc, self.log = url, proc, log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def serve(bundle: str | Path, log: Path, *args: str, timeout: float = 300, env: dict | None = None) -> Iterator[Served]:
    port = free_port()
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "nlpforge", "serve", str(bundle), "--port", str(port), *args], cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
    served = Served(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    break
            if time.time() > deadline:
                raise AssertionError(f"server did not become healthy in {timeout} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield served
    finally:
        served.stop()


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0
