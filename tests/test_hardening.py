"""Bad input answered clearly, one request never hurting another (the reproductions of real failures, each
of which failed before its fix), and property tests over the HTTP protocol.

The server runs in process (starlette's TestClient, the app's real lifespan) on the real hf
engine over the session's tiny chat bundle; faults are injected into real components (a forward
hook that poisons one row's logits), never by replacing them."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from conftest import nlpforge
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpforge.artifacts import ArtifactError
from nlpforge.engines import load_async_engine, read_bundle
from nlpforge.engines.base import Sampling
from nlpforge.engines.bundle import load_tokenizer
from nlpforge.engines.decode import Row, decode
from nlpforge.serve.app import create_app
from nlpforge.serve.state import ServerConfig

MSGS = [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]


@pytest.fixture(scope="module")
def client(chat_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    torch.set_num_threads(1)
    info = read_bundle(chat_bundle)
    cfg = ServerConfig(max_tokens_limit=8, max_queue=6, feedback_dir=tmp_path_factory.mktemp("feedback"))
    with TestClient(create_app(info, load_async_engine(info, "hf", threads=1, max_batch=8), cfg)) as c:
        yield c


def chat(client: TestClient, **body: object) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "tiny-chat", "messages": MSGS, "max_tokens": 6, **body})


# --- 1. one request cannot fail its neighbours ---------------------------------------------


@pytest.mark.parametrize("body", [{"temperature": 1e-300}, {"temperature": 1e-45}, {"repetition_penalty": 1e-300, "temperature": 1.0}])
def test_degenerate_sampling_values_are_400s_or_harmless(client: TestClient, body: dict) -> None:
    r = chat(client, **body)
    if "repetition_penalty" in body:  # below what float32 can divide by: refused at the edge, naming the field
        assert r.status_code == 400 and "repetition_penalty" in r.json()["error"]["message"]
    else:  # a temperature below 1e-5 is greedy, as in vLLM
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == chat(client).json()["choices"][0]["message"]["content"]


def test_bad_requests_in_a_burst_do_not_fail_the_good_ones(client: TestClient) -> None:
    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as h:
            bodies = [{"temperature": 1e-300}, {"repetition_penalty": 1e-300, "temperature": 1.0}, {}, {"seed": 2**64}, {}, {"temperature": 1e-45}]
            rs = await asyncio.gather(*(h.post("/v1/chat/completions", json={"model": "tiny-chat", "messages": MSGS, "max_tokens": 6, **b}) for b in bodies))
            return [r.status_code for r in rs]

    codes = asyncio.run(burst())
    assert codes == [200, 400, 200, 400, 200, 200]


def test_a_row_with_poisoned_logits_fails_alone(chat_bundle: Path) -> None:
    """Fault injection: row 1's logits become NaN inside the real model; rows 0 and 2 finish as they would alone."""
    from transformers import AutoModelForCausalLM

    info = read_bundle(chat_bundle)
    tok = load_tokenizer(info)
    model = AutoModelForCausalLM.from_pretrained(chat_bundle).eval()
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
               for q in ("How heavy is the Comet Earbuds?", "Where is my order?", "What does the kettle cost?")]
    params = Sampling(max_tokens=8)
    alone = [decode(model, tok, [Row(p, params, frozenset(info.stop_ids))], 0)[0].out for p in prompts]

    def poison(_m: object, _i: object, output: object) -> None:
        if output.logits.shape[0] == 3:  # type: ignore[attr-defined]
            output.logits[1] = float("nan")  # type: ignore[attr-defined]

    handle = model.register_forward_hook(poison)
    try:
        rows = decode(model, tok, [Row(p, params, frozenset(info.stop_ids)) for p in prompts], 0)
    finally:
        handle.remove()
    assert rows[1].out.finish_reason == "error" and "not finite" in (rows[1].out.error or "")
    assert [rows[0].out.token_ids, rows[2].out.token_ids] == [alone[0].token_ids, alone[2].token_ids]


# --- 2. integers out of range, and a 500 that keeps the connection -------------------------


@pytest.mark.parametrize("seed", [2**64, 2**200, -(2**64)])
def test_out_of_range_seed_is_a_400_naming_seed(client: TestClient, seed: int) -> None:
    r = chat(client, seed=seed)
    assert r.status_code == 400 and r.json()["error"]["param"] == "seed", r.text


@pytest.mark.parametrize("field,value", [("n", 10**12), ("top_logprobs", 10**9), ("max_tokens", 10**30), ("max_completion_tokens", -1)])
def test_every_integer_field_is_range_checked(client: TestClient, field: str, value: int) -> None:
    r = chat(client, **{field: value, "logprobs": True} if field == "top_logprobs" else {field: value})
    assert r.status_code == 400 and field in r.json()["error"]["message"], r.text


def test_an_internal_error_answers_500_and_keeps_the_connection(chat_bundle: Path) -> None:
    """A real server (uvicorn on loopback) whose engine fails on one prompt: that request gets an
    OpenAI-shaped 500 and the client's next request on the same keep-alive connection works."""
    import socket

    import uvicorn

    info = read_bundle(chat_bundle)
    engine = load_async_engine(info, "hf", threads=1)
    real = engine.generate

    def failing(prompt, params, rid, adapter=None, stream=False):  # noqa: ANN001, ANN202 - fault injection on one prompt
        if len(prompt) > 40:
            raise RuntimeError("injected engine fault")
        return real(prompt, params, rid, adapter, stream)

    engine.generate = failing  # type: ignore[method-assign]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(info, engine, ServerConfig()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as h:
            for _ in range(100):
                if server.started:
                    break
                time.sleep(0.1)
            for _ in range(5):
                bad = h.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "word " * 40}], "max_tokens": 2})
                assert bad.status_code == 500 and bad.json()["error"]["type"] == "server_error" and "connection" not in bad.headers
                good = h.post("/v1/chat/completions", json={"messages": MSGS, "max_tokens": 2})
                assert good.status_code == 200
    finally:
        server.should_exit = True
        thread.join(30)


# --- 5 and 6. bundles, registry and the smaller ones --------------------------------------------


@pytest.mark.parametrize("content", ["", '{"name": "x", "task": "ch', "[1, 2]", '{"task": "summarize"}', '{"adapters": {"a": "../../etc"}}'])
def test_a_broken_bundle_meta_is_one_clear_error(chat_bundle: Path, tmp_path: Path, content: str) -> None:
    bundle = Path(shutil.copytree(chat_bundle, tmp_path / "b"))
    (bundle / "nlpforge.json").write_text(content)
    with pytest.raises(ArtifactError, match=r"nlpforge.json"):
        read_bundle(bundle)
    proc = nlpforge("models", "register", str(bundle), "--registry", str(tmp_path / "reg"), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "nlpforge.json" in proc.stderr
    served = nlpforge("serve", str(bundle), "--engine", "hf", check=False, timeout=120)
    assert served.returncode == 1 and "Traceback" not in served.stderr and "nlpforge.json" in served.stderr


@pytest.mark.parametrize("breakage,why", [("no-config", "no config.json"), ("bad-config", "config.json is not valid JSON"), ("no-tokenizer", "no tokenizer files"),
                                          ("no-weights", "no weights"), ("auto-map", "auto_map names")])
def test_register_refuses_a_bundle_that_cannot_serve(chat_bundle: Path, tmp_path: Path, breakage: str, why: str) -> None:
    bundle = Path(shutil.copytree(chat_bundle, tmp_path / "b"))
    if breakage == "no-config":
        (bundle / "config.json").unlink()
    elif breakage == "bad-config":
        (bundle / "config.json").write_text("{trunc")
    elif breakage == "no-tokenizer":
        (bundle / "tokenizer.json").unlink()
    elif breakage == "no-weights":
        (bundle / "model.safetensors").unlink()
    else:
        cfg = json.loads((bundle / "config.json").read_text())
        cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomLM"}
        (bundle / "config.json").write_text(json.dumps(cfg))
    proc = nlpforge("models", "register", str(bundle), "--registry", str(tmp_path / "reg"), check=False)
    assert proc.returncode == 1 and why in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr


def test_one_broken_registry_entry_does_not_break_listing(chat_bundle: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    nlpforge("models", "register", str(chat_bundle), "--name", "good", "--registry", str(reg))
    nlpforge("models", "register", str(chat_bundle), "--name", "bad", "--registry", str(reg))
    meta = reg / "bad" / "v1" / "nlpforge.json"
    meta.chmod(0o644)
    meta.write_text("[1, 2]")  # damaged after registration
    listing = nlpforge("models", "list", "--registry", str(reg)).stdout
    assert "good" in listing and "broken" in listing
    assert json.loads(nlpforge("models", "show", "good@v1", "--registry", str(reg)).stdout)[0]["task"] == "chat"


def test_an_empty_api_key_is_refused(chat_bundle: Path) -> None:
    proc = nlpforge("serve", str(chat_bundle), "--engine", "hf", check=False, timeout=120, env={"NLPFORGE_API_KEY": ""})
    assert proc.returncode == 2 and "empty" in proc.stderr


def test_models_shows_no_server_path_and_a_batch_beyond_the_queue_is_a_400(client: TestClient, chat_bundle: Path) -> None:
    cards = client.get("/v1/models").json()["data"]
    assert str(chat_bundle) not in json.dumps(cards) and cards[0]["root"] == "tiny-chat"
    r = client.post("/v1/completions", json={"model": "tiny-chat", "prompt": ["a", "b", "c", "d"], "n": 2, "temperature": 1.0, "max_tokens": 2})
    assert r.status_code == 400 and r.json()["error"]["code"] == "batch_too_large" and "--max-queue" in r.json()["error"]["message"]


def test_feedback_given_again_is_a_revision_and_exports_once(client: TestClient, tmp_path: Path) -> None:
    from nlpforge.serve.feedback import export_feedback

    rid = chat(client).json()["id"]
    first = client.post("/v1/feedback", json={"id": rid, "rating": "down"}).json()
    second = client.post("/v1/feedback", json={"id": rid, "rating": "up"}).json()
    assert (first["revision"], second["revision"]) == (1, 2)
    folder = client.app.app.state.server.feedback.folder  # type: ignore[attr-defined]
    assert export_feedback(folder, "kto", tmp_path / "kto.jsonl") == 1  # one row for the completion: its last rating
    assert json.loads((tmp_path / "kto.jsonl").read_text())["label"] is True


# --- property tests: any JSON gets 200 or a 4xx, never a 500 ---------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)
FIELDS = {
    "model": st.sampled_from(["tiny-chat", "other"]) | JSON, "max_tokens": st.integers(-5, 10) | JSON, "temperature": st.floats(allow_nan=True) | JSON,
    "top_p": st.floats(allow_nan=True) | JSON, "n": st.integers(-1, 3) | JSON, "seed": st.integers() | JSON, "stop": st.text(max_size=3) | JSON,
    "logit_bias": st.dictionaries(st.text(max_size=6), st.floats(allow_nan=True), max_size=2) | JSON, "logprobs": st.booleans() | st.integers(-1, 3) | JSON,
    "top_logprobs": st.integers(-1, 25) | JSON, "presence_penalty": st.floats() | JSON, "repetition_penalty": st.floats() | JSON, "echo": st.booleans() | JSON,
    "stream": st.booleans() | JSON, "ignore_eos": st.booleans() | JSON,
}
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "robot"]), "content": st.text(max_size=20) | JSON}), max_size=3) | JSON


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/classify", "/tokenize", "/v1/feedback"]),
       fields=st.fixed_dictionaries({}, optional=FIELDS), messages=MESSAGES, prompt=st.text(max_size=20) | st.lists(st.integers(-3, 600), max_size=4) | JSON)
def test_any_json_gets_a_200_or_a_4xx(client: TestClient, route: str, fields: dict, messages: object, prompt: object) -> None:
    body = {**fields, "messages": messages, "prompt": prompt, "input": prompt, "id": "chatcmpl-x"}
    # Python's JSON (and FastAPI's parser) takes NaN and Infinity: send them as they are
    r = client.post(route, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400, 404, 422, 429, 503), (r.status_code, r.text[:300])
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    elif body.get("stream") is True and route != "/v1/classify":
        assert r.text.rstrip().endswith("data: [DONE]")
