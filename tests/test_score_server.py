"""One engine layer: the same inputs give the same outputs through `nlpforge score` (offline)
and through `nlpforge serve` (real server on loopback, asked with the official openai client)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, nlpforge
from openai import OpenAI

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

QUESTIONS = [
    "How heavy is the Comet Earbuds?",
    "Where is my order NW-123456?",
    "What does the Nimbus Kettle cost?",
    "Does the Echo Doorbell work with Wi-Fi?",
    "How long does the battery of the Comet Earbuds last?",
    "Can I return the Nimbus Speaker?",
]
PROMPTS = ["Question: How heavy is the Comet Earbuds?\nAnswer:", "Question: What is the price of the Nimbus Kettle?\nAnswer:", "The Echo Doorbell"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(chat_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlpforge", "serve", str(chat_bundle), "--port", str(port), "--api-key", "k"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise AssertionError("server did not become healthy in 300 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_score_and_server_give_the_same_answers(server: str, chat_bundle: Path, tmp_path: Path) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="k")
    model = client.models.list().data[0].id
    convs = [[{"role": "user", "content": q}] for q in QUESTIONS]

    # chat: score file vs chat completions (greedy, the bundle's default)
    src = tmp_path / "chats.jsonl"
    src.write_text("".join(json.dumps({"id": i, "messages": c}) + "\n" for i, c in enumerate(convs)))
    nlpforge("score", "--model", str(chat_bundle), "--input", str(src), "--output", str(tmp_path / "chats.out.jsonl"), "--task", "chat", "--engine", "hf", "--max-tokens", "20", "--quiet")
    offline = [json.loads(x) for x in (tmp_path / "chats.out.jsonl").read_text().splitlines()]
    served = [client.chat.completions.create(model=model, messages=c, max_tokens=20).choices[0] for c in convs]
    assert [r["generation"] for r in offline] == [c.message.content for c in served]
    assert [r["finish_reason"] for r in offline] == [c.finish_reason for c in served]
    assert len({r["generation"] for r in offline}) > 1  # not one canned answer

    # prompt text: score --task generate (with a stop string) vs completions
    src = tmp_path / "prompts.jsonl"
    src.write_text("".join(json.dumps({"text": p}) + "\n" for p in PROMPTS))
    nlpforge("score", "--model", str(chat_bundle), "--input", str(src), "--output", str(tmp_path / "prompts.out.jsonl"), "--task", "generate", "--engine", "hf",
             "--max-tokens", "16", "--stop", "grams", "--quiet")
    offline = [json.loads(x) for x in (tmp_path / "prompts.out.jsonl").read_text().splitlines()]
    served = [client.completions.create(model=model, prompt=p, max_tokens=16, stop=["grams"]).choices[0] for p in PROMPTS]
    assert [(r["generation"], r["finish_reason"]) for r in offline] == [(c.text, c.finish_reason) for c in served]

    # an OpenAI batch file through `nlpforge score` answers like the live API does
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {"model": model, "messages": c, "max_tokens": 12}} for i, c in enumerate(convs[:3])]
    (tmp_path / "batch.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    nlpforge("score", "--model", str(chat_bundle), "--batch-file", str(tmp_path / "batch.jsonl"), "--output", str(tmp_path / "batch.out.jsonl"), "--engine", "hf", "--quiet")
    results = {r["custom_id"]: r for r in map(json.loads, (tmp_path / "batch.out.jsonl").read_text().splitlines())}
    for line in lines:
        live = client.chat.completions.create(**line["body"]).choices[0].message.content
        assert results[line["custom_id"]]["response"]["body"]["choices"][0]["message"]["content"] == live
