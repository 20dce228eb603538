"""`nlpforge serve --engine hf` on loopback, asked through the official `openai` client and httpx:
answers, streaming, auth, limits, 429, disconnect abort, feedback, PII-redacted logs, the
monitoring series (grounded answers scored off the request path), classification, graceful
shutdown and a schemathesis run over the OpenAPI schema."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import torch
from conftest import nlpforge
from openai import OpenAI
from serve_util import Served, metric, serve

MODEL = "quickstart-chat"
AUTH = {"Authorization": "Bearer key-two"}


@pytest.fixture(scope="module")
def registry(quickstart_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart bundle registered and promoted, so the server starts from `NAME@production`."""
    root = tmp_path_factory.mktemp("registry")
    env = {"NLPFORGE_REGISTRY": str(root)}
    import os

    old = os.environ.get("NLPFORGE_REGISTRY")
    os.environ.update(env)
    try:
        nlpforge("models", "register", str(quickstart_run / "export"))
        nlpforge("models", "promote", f"{MODEL}@v1", "--stage", "production")
    finally:
        if old is None:
            os.environ.pop("NLPFORGE_REGISTRY")
        else:
            os.environ["NLPFORGE_REGISTRY"] = old
    return root


@pytest.fixture(scope="module")
def server(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hfserve")
    keys = tmp / "keys.txt"
    keys.write_text("# one key per line\nkey-one\nkey-two\n")
    with serve(f"{MODEL}@production", tmp / "serve.log", "--engine", "hf", "--threads", "1", "--api-key-file", str(keys), "--max-queue", "4",
               "--max-tokens", "480", "--max-body-bytes", "20000", "--feedback-dir", str(tmp / "feedback"), "--log-prompts", "--redact-pii",
               env={"NLPFORGE_REGISTRY": str(registry)}) as s:
        s.feedback = tmp / "feedback"  # type: ignore[attr-defined]
        yield s


def client(s: Served, key: str = "key-one") -> OpenAI:
    return OpenAI(base_url=f"{s.url}/v1", api_key=key, max_retries=0)


def eval_rows(run: Path, n: int) -> list[dict]:
    return [json.loads(x) for x in (run / "prepare/eval.jsonl").read_text().splitlines()[:n]]


def test_answers_like_eval_and_streams_the_same(server: Served, quickstart_run: Path) -> None:
    c = client(server)
    assert [m.id for m in c.models.list().data] == [MODEL]
    samples = {json.loads(x)["source"]: json.loads(x) for x in (quickstart_run / "eval/samples.jsonl").read_text().splitlines()}
    for row in eval_rows(quickstart_run, 4):
        reply = c.chat.completions.create(model=MODEL, messages=row["messages"][:-1])
        assert reply.choices[0].finish_reason == "stop"
        assert reply.choices[0].message.content == samples[row["source"]]["tuned"]  # the eval's HF engine said the same
    messages = eval_rows(quickstart_run, 1)[0]["messages"][:-1]
    whole = c.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
    chunks = list(c.chat.completions.create(model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}))
    assert len(chunks) > 3  # token by token, not one blob
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == whole
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    # stop strings cut the answer before the string; max_tokens ends with "length"
    cut = c.chat.completions.create(model=MODEL, messages=messages, stop=[whole.split()[2]])
    assert whole.startswith(cut.choices[0].message.content) and len(cut.choices[0].message.content) < len(whole)
    short = c.chat.completions.create(model=MODEL, messages=messages, max_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2


def test_logprobs_stream_with_their_tokens_and_are_the_models_own(server: Served, quickstart_run: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    c = client(server)
    messages = eval_rows(quickstart_run, 2)[1]["messages"][:-1]
    whole = c.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=2, max_tokens=12)
    lps = whole.choices[0].logprobs.content
    chunks = list(c.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=2, max_tokens=12, stream=True))
    carrying = [ch.choices[0].logprobs.content for ch in chunks if ch.choices and ch.choices[0].logprobs]
    assert len(carrying) > 3  # each arrives with its token, not all with the final chunk
    assert [(t.token, t.logprob) for part in carrying for t in part] == [(t.token, t.logprob) for t in lps]
    # the model's own (raw) log-probabilities, teacher-forced along the greedy answer
    bundle = quickstart_run / "export"
    model, tok = AutoModelForCausalLM.from_pretrained(bundle).eval(), AutoTokenizer.from_pretrained(bundle)
    ids = httpx.post(f"{server.url}/tokenize", headers=AUTH, json={"model": MODEL, "messages": messages}).json()["tokens"]
    with torch.inference_mode():
        for t in lps:
            logp = model(input_ids=torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
            best = int(logp.argmax())
            assert tok.decode([best]) == t.token and t.logprob == pytest.approx(float(logp[best]), abs=1e-4)
            assert [x.logprob for x in t.top_logprobs] == pytest.approx(logp.topk(2).values.tolist(), abs=1e-4)
            ids.append(best)


def test_sampling_is_seeded_and_batched_rows_do_not_mix(server: Served) -> None:
    c = client(server)
    msgs = [{"role": "user", "content": "What colours does the Nova Kettle come in?"}]
    a = c.chat.completions.create(model=MODEL, messages=msgs, n=3, temperature=1.0, seed=7, max_tokens=20)
    b = c.chat.completions.create(model=MODEL, messages=msgs, n=3, temperature=1.0, seed=7, max_tokens=20)
    assert [x.message.content for x in a.choices] == [x.message.content for x in b.choices]
    assert len({x.message.content for x in a.choices}) > 1

    async def many() -> list[str]:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as h:
            qs = ["How heavy is the Comet Earbuds?", "What colours does the Nova Kettle come in?", "How long does shipping take?"]
            rs = await asyncio.gather(*(h.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": q}]}) for q in qs))
            return [r.json()["choices"][0]["message"]["content"] for r in rs]

    together = asyncio.run(many())  # one dynamic batch (left-padded) ...
    alone = [c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": q}]).choices[0].message.content
             for q in ["How heavy is the Comet Earbuds?", "What colours does the Nova Kettle come in?", "How long does shipping take?"]]
    assert together == alone  # ... answers exactly as one at a time


def test_auth_on_every_route_but_health(server: Served) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    for method, path in [("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/chat/completions"), ("POST", "/v1/feedback")]:
        r = httpx.request(method, f"{server.url}{path}", json={}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", path
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client(server, "wrong").models.list()
    assert client(server, "key-two").models.list().data  # every key of the file works


def test_limits_answer_400_in_openai_shape(server: Served) -> None:
    c = client(server)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError, match="max_tokens=481 exceeds"):
        c.chat.completions.create(model=MODEL, messages=msgs, max_tokens=481)
    with pytest.raises(openai.BadRequestError, match="context_length_exceeded|limit is 511"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "kettle " * 600}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        c.chat.completions.create(model=MODEL, messages=msgs, temperature=7)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        c.chat.completions.create(model="gpt-4", messages=msgs)
    big = httpx.post(f"{server.url}/v1/completions", headers=AUTH, content=json.dumps({"model": MODEL, "prompt": "x" * 30000}))
    assert big.status_code == 400 and big.json()["error"]["code"] == "body_too_large"
    bad = httpx.post(f"{server.url}/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json")
    assert bad.status_code == 400 and set(bad.json()["error"]) == {"message", "type", "param", "code"}
    wrong = httpx.post(f"{server.url}/v1/classify", headers=AUTH, json={"model": MODEL, "input": "hi"})
    assert wrong.status_code == 400 and "classification bundle" in wrong.json()["error"]["message"]
    # what the model cannot do is refused, not silently ignored
    image = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    with pytest.raises(openai.BadRequestError, match=r"content\[1\] is a 'image_url' part; this model reads text only"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": image}])
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError, match="does not make tool calls"):
        c.chat.completions.create(model=MODEL, messages=msgs, tools=[tool])
    assert c.chat.completions.create(model=MODEL, messages=msgs, tools=[tool], tool_choice="none", max_tokens=2).choices
    for bias, why in [({"kettle": 5}, "not a token id"), ({"99999": 5}, "out of range"), ({"5": 500}, "less than or equal to 100|-100, 100")]:
        r = httpx.post(f"{server.url}/v1/chat/completions", headers=AUTH, json={"model": MODEL, "messages": msgs, "logit_bias": bias})
        assert r.status_code == 400 and r.json()["error"]["param"].startswith("logit_bias") and re.search(why, r.json()["error"]["message"]), r.text


def test_content_parts_penalties_and_logit_bias_act_like_the_engines(server: Served, quickstart_run: Path) -> None:
    from nlpforge.engines import Sampling, load_engine

    c = client(server)
    parts = [{"type": "text", "text": "How heavy is"}, {"type": "text", "text": "the Comet Earbuds?"}]
    joined = [{"role": "user", "content": "How heavy is\nthe Comet Earbuds?"}]  # text parts joined with newlines, as vLLM does
    plain = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": parts}]).choices[0].message.content
    assert plain == c.chat.completions.create(model=MODEL, messages=joined).choices[0].message.content

    # the served hf engine applies penalties and logit_bias like the shared engine that eval and batch scoring use
    engine = load_engine(quickstart_run / "export", "hf")
    first = engine.chat_generate([joined], Sampling(max_tokens=24))[0][0].token_ids[0]
    for extra in [{"repetition_penalty": 1.8, "frequency_penalty": 1.5, "presence_penalty": 0.5}, {"logit_bias": {str(first): -100}}]:
        want = engine.chat_generate([joined], Sampling(max_tokens=24, **extra))[0][0].text
        named = {k: v for k, v in extra.items() if k != "repetition_penalty"}  # repetition_penalty is a vLLM extra
        got = c.chat.completions.create(model=MODEL, messages=joined, max_tokens=24, extra_body={k: v for k, v in extra.items() if k not in named}, **named)
        assert got.choices[0].message.content == want != plain, extra


def _long_stream(server: Served) -> dict:
    return {"model": MODEL, "prompt": "Question:", "max_tokens": 400, "ignore_eos": True, "stream": True}


def test_overload_answers_429_with_retry_after(server: Served) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=120) as h:
            body = {"model": MODEL, "prompt": "Question:", "max_tokens": 200, "ignore_eos": True}
            return await asyncio.gather(*(h.post("/v1/completions", json=body) for _ in range(8)))

    codes = [r.status_code for r in asyncio.run(burst())]
    assert codes.count(429) >= 1 and codes.count(200) >= 1 and set(codes) <= {200, 429}, codes
    refused = next(r for r in asyncio.run(burst()) if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and refused.json()["error"]["type"] == "rate_limit_error"


def test_client_disconnect_aborts_the_request(server: Served) -> None:
    before = metric(httpx.get(f"{server.url}/metrics", headers=AUTH).text, "nlpforge_aborted_requests_total")
    started = time.perf_counter()
    with httpx.stream("POST", f"{server.url}/v1/completions", json=_long_stream(server), headers=AUTH, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i >= 4:
                break
    for _ in range(100):  # the gauge and the abort counter move while the request unwinds: wait for both
        m = httpx.get(f"{server.url}/metrics", headers=AUTH).text
        if metric(m, "nlpforge_queue_depth") == 0 and metric(m, "nlpforge_aborted_requests_total") > before:
            break
        time.sleep(0.1)
    assert metric(m, "nlpforge_aborted_requests_total") == before + 1
    assert metric(m, "nlpforge_queue_depth") == 0
    # the engine stopped it: a new request is served at once, not after 400 more tokens
    client(server).completions.create(model=MODEL, prompt="Question:", max_tokens=1)
    assert time.perf_counter() - started < 20


def test_metrics_count_requests_tokens_latency(server: Served) -> None:
    client(server).completions.create(model=MODEL, prompt="Question: How heavy", max_tokens=3, temperature=0, extra_body={"ignore_eos": True})
    m = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    assert metric(m, 'nlpforge_requests_total{route="/v1/completions",status="200"}') >= 1
    assert metric(m, "nlpforge_completion_tokens_total") >= 3 and metric(m, "nlpforge_prompt_tokens_total") >= 4
    assert 'nlpforge_request_latency_seconds_bucket{le="60.0",route="/v1/completions"}' in m


def test_prompts_are_logged_and_stored_with_pii_redacted(server: Served) -> None:
    done = client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Mail me at jane.doe@example.com please"}], max_tokens=2)
    log = " ".join(server.log.read_text().split())
    assert "<EMAIL_ADDRESS>" in log and "jane.doe@example.com" not in log
    # --redact-pii with --feedback-dir: the stored completion and the feedback are redacted too
    body = {"id": done.id, "rating": "down", "preferred": "Call 415-555-0132 instead", "comment": "from jane.doe@example.com"}
    assert httpx.post(f"{server.url}/v1/feedback", json=body, headers=AUTH).status_code == 200
    line = next(r for r in map(json.loads, (server.feedback / "feedback.jsonl").read_text().splitlines()) if r["id"] == done.id)  # type: ignore[attr-defined]
    assert line["prompt"] == [{"role": "user", "content": "Mail me at <EMAIL_ADDRESS> please"}]
    assert line["preferred"] == "Call <PHONE_NUMBER> instead" and line["comment"] == "from <EMAIL_ADDRESS>"
    stored = b"".join(f.read_bytes() for f in server.feedback.glob("completions.sqlite*"))  # type: ignore[attr-defined]
    assert b"<EMAIL_ADDRESS>" in stored and b"jane.doe@example.com" not in stored


def test_feedback_is_stored_with_the_request_and_exports_for_kto_and_dpo(server: Served, tmp_path: Path) -> None:
    c = client(server)
    msgs = [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]
    first = c.chat.completions.create(model=MODEL, messages=msgs)
    other = c.chat.completions.create(model=MODEL, messages=msgs, temperature=1.0, seed=1, max_tokens=8)

    def send(body: dict) -> httpx.Response:
        return httpx.post(f"{server.url}/v1/feedback", json=body, headers=AUTH)

    assert send({"id": first.id, "rating": "up"}).status_code == 200
    assert send({"id": other.id, "rating": "down", "preferred": "The Comet Earbuds weigh 48 grams."}).status_code == 200
    assert send({"id": "chatcmpl-unknown", "rating": "up"}).status_code == 404
    assert send({"id": first.id}).status_code == 400
    lines = [r for r in map(json.loads, (server.feedback / "feedback.jsonl").read_text().splitlines()) if r["id"] in (first.id, other.id)]  # type: ignore[attr-defined]
    assert lines[0]["prompt"] == msgs and lines[0]["answer"] == first.choices[0].message.content and lines[0]["rating"] == "up"

    nlpforge("feedback", "export", str(server.feedback), "--kind", "kto", "--out", str(tmp_path / "kto.jsonl"))  # type: ignore[attr-defined]
    kto = [r for r in map(json.loads, (tmp_path / "kto.jsonl").read_text().splitlines()) if r["prompt"] == msgs]  # this test's rows
    assert [r["label"] for r in kto] == [True, False, True]
    assert kto[0] == {"prompt": msgs, "completion": [{"role": "assistant", "content": first.choices[0].message.content}], "label": True}
    nlpforge("feedback", "export", str(server.feedback), "--kind", "dpo", "--out", str(tmp_path / "dpo.jsonl"))  # type: ignore[attr-defined]
    dpo = [r for r in map(json.loads, (tmp_path / "dpo.jsonl").read_text().splitlines()) if r["prompt"] == msgs]  # this test's rows
    assert dpo[0] == {"prompt": msgs, "chosen": [{"role": "assistant", "content": "The Comet Earbuds weigh 48 grams."}],
                      "rejected": [{"role": "assistant", "content": other.choices[0].message.content}]}
    assert {"prompt": msgs, "chosen": [{"role": "assistant", "content": first.choices[0].message.content}],
            "rejected": [{"role": "assistant", "content": other.choices[0].message.content}]} in dpo


def test_monitoring_scores_grounded_answers_and_counts_feedback(server: Served, quickstart_run: Path) -> None:
    """A chat answer sent with `metadata.context` (or a message named `context`) is scored against
    it off the request path: the histogram gets exactly the offline scorer's values, and the
    answer whose context contradicts it lands above the gate. The prompts feed the drift gauges
    against the bundle's drift.json."""
    from prometheus_client.parser import text_string_to_metric_families

    from nlpforge.evals.factuality import score_records

    def samples() -> dict[tuple[str, tuple], float]:
        text = httpx.get(f"{server.url}/metrics", headers=AUTH).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}

    def get(snap: dict, name: str, **labels: str) -> float:
        return snap.get((name, tuple(sorted({"model": MODEL, **labels}.items()))), 0.0)

    c = client(server)
    msgs = [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]
    answer = c.chat.completions.create(model=MODEL, messages=msgs).choices[0].message.content
    supporting = f"Product sheet. {answer} Ships in two days."
    unrelated = "Our office is closed on Sundays. The Nova Kettle holds 1.7 litres and costs $39; refunds take 14 days."
    before = samples()
    first = c.chat.completions.create(model=MODEL, messages=msgs, extra_body={"metadata": {"context": supporting}})
    streamed = list(c.chat.completions.create(model=MODEL, messages=[{"role": "system", "name": "context", "content": unrelated}, *msgs], stream=True))
    second = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
    assert first.choices[0].message.content == answer
    want = [r["hallucination_score"] for r in score_records([{"source": supporting, "output": answer}, {"source": unrelated, "output": second}])]
    assert want[0] < 0.5 < want[1], (want, answer, second)
    assert httpx.post(f"{server.url}/v1/feedback", json={"id": first.id, "rating": "up"}, headers=AUTH).status_code == 200
    deadline = time.time() + 120  # the first score loads spaCy in the server
    while get(after := samples(), "nlpforge_hallucination_score_count") - get(before, "nlpforge_hallucination_score_count") < 2 and time.time() < deadline:
        time.sleep(0.2)
    delta = {name: get(after, name, **lab) - get(before, name, **lab) for name, lab in [
        ("nlpforge_hallucination_score_count", {}), ("nlpforge_hallucination_over_gate_total", {}), ("nlpforge_feedback_total", {"rating": "up"}),
        ("nlpforge_finish_reasons_total", {"reason": "stop"}), ("nlpforge_hallucination_score_bucket", {"le": "0.5"})]}
    assert delta["nlpforge_hallucination_score_count"] == 2 and delta["nlpforge_hallucination_score_bucket"] == 1
    assert delta["nlpforge_hallucination_over_gate_total"] == 1 and delta["nlpforge_feedback_total"] == 1
    assert delta["nlpforge_finish_reasons_total"] >= 2 and streamed[-1].choices[0].finish_reason == "stop"
    scored = get(after, "nlpforge_hallucination_score_sum") - get(before, "nlpforge_hallucination_score_sum")
    assert scored == pytest.approx(sum(want), abs=1e-6)
    drift = json.loads((quickstart_run / "export/drift.json").read_text())
    assert drift["prompts"] > 100 and len(drift["centroid"]) == 384
    assert after[("nlpforge_input_drift_reference", (("measure", "oov_rate"),))] == pytest.approx(drift["held_out"]["oov_rate"])
    gauges = [after[(name, (("model", MODEL),))] for name in ("nlpforge_input_oov_rate", "nlpforge_input_embedding_distance")]
    assert 0 <= gauges[0] <= 1 and 0 < gauges[1] < 2


@pytest.fixture(scope="module")
def classifier_server(classifier_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(classifier_bundle, tmp_path_factory.mktemp("cls") / "serve.log", "--engine", "hf", "--threads", "1") as s:
        yield s


def test_classify_matches_the_model_and_applies_the_threshold(classifier_server: Served, classifier_bundle: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["I was charged twice this month", "The app crashes when I log in", "Where is my parcel?"]
    r = httpx.post(f"{classifier_server.url}/v1/classify", json={"model": "classifier", "input": texts}).json()
    model, tok = AutoModelForSequenceClassification.from_pretrained(classifier_bundle).eval(), AutoTokenizer.from_pretrained(classifier_bundle)
    with torch.inference_mode():
        want = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1)
    labels = json.loads((classifier_bundle / "nlpforge.json").read_text())["labels"]
    assert r["object"] == "list" and [d["index"] for d in r["data"]] == [0, 1, 2] and r["usage"]["prompt_tokens"] > 0
    for d, w in zip(r["data"], want):
        assert d["probs"] == pytest.approx(w.tolist(), abs=1e-5)
        assert d["label"] == labels[int(w.argmax())] and d["num_classes"] == 4 and d["labels"] == labels
    one = httpx.post(f"{classifier_server.url}/v1/classify", json={"input": texts[0], "threshold": 0.99}).json()
    assert len(one["data"]) == 1 and one["data"][0]["label"] is None and one["data"][0]["threshold"] == 0.99  # nothing that sure
    chat = httpx.post(f"{classifier_server.url}/v1/chat/completions", json={"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code in (400, 404)


def test_schemathesis_finds_no_server_errors(classifier_server: Served, quickstart_run: Path, tmp_path: Path) -> None:
    """Generated requests against both kinds of bundle: a 4xx is fine, a 5xx is a bug."""
    with serve(quickstart_run / "export", tmp_path / "serve.log", "--engine", "hf", "--threads", "1", "--max-tokens", "8") as chat_server:
        for s in (chat_server, classifier_server):
            proc = subprocess.run(
                [str(Path(sys.executable).parent / "schemathesis"), "run", f"{s.url}/openapi.json", "--checks", "not_a_server_error",
                 "--max-examples", "15", "--phases", "examples,fuzzing", "--generation-deterministic", "--request-timeout", "30",
                 "--suppress-health-check", "all", "--workers", "1", "--no-color"],
                capture_output=True, text=True, timeout=240, cwd=tmp_path,  # its example cache goes to tmp, not the repo
            )
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
            assert re.search(r"Tested: [5-9]", proc.stdout) and re.search(r"(\d{2,}) generated, \1 passed", proc.stdout), proc.stdout[-2000:]


def test_sigterm_drains_open_requests(quickstart_run: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(quickstart_run / "export", tmp_path / "bundle"))
    with serve(bundle, tmp_path / "serve.log", "--engine", "hf", "--threads", "1") as s:
        result: dict = {}

        def ask() -> None:
            r = httpx.post(f"{s.url}/v1/completions", json={"model": MODEL, "prompt": "Question:", "max_tokens": 300, "ignore_eos": True}, timeout=120)
            result["status"], result["body"] = r.status_code, r.json()

        t = threading.Thread(target=ask)
        t.start()
        time.sleep(1.0)  # the request is in flight
        assert s.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
        t.join(60)
    assert result["status"] == 200 and result["body"]["usage"]["completion_tokens"] == 300
