"""`nlpforge score`: tasks, formats, rejects, shards, resume after SIGKILL, and OpenAI batch files,
on the MiniLM classifier bundle and the tiny chat bundle with the HF engine (the vLLM engine's
agreement with it is tested in test_engines.py and test_score_server.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, nlpforge

from nlpforge.engines import Sampling, load_engine
from nlpforge.errors import DataError, StageError
from nlpforge.score.runner import ScoreJob, run_score
from nlpforge.score.tasks import ScoreOptions

TICKETS = ["I was charged twice for my order", "the app crashes on start", "my parcel never arrived", "please reset my password", "refund the duplicate payment"]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def tickets(n: int) -> list[dict]:
    return [{"id": i, "text": f"{TICKETS[i % len(TICKETS)]} (ticket {i})" + " please help" * (i % 7), "group": "a" if i % 2 else "b"} for i in range(n)]


def test_classify_jsonl_to_parquet_keeps_columns_and_rejects_bad_rows(classifier_bundle: Path, tmp_path: Path) -> None:
    rows = tickets(40)
    lines: list = rows[:10] + ["{broken json", {"id": "no-text"}, {"id": "empty", "text": "   "}, {"id": "num", "text": 5}] + rows[10:]
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    out = tmp_path / "scored.parquet"
    summary = run_score(ScoreJob(src, out, "classify", str(classifier_bundle), "hf", batch_size=8, chunk_rows=7))
    table = pq.read_table(out).to_pylist()
    assert [r["id"] for r in table] == [r["id"] for r in rows]  # input order, every good row once
    assert all(r["group"] in ("a", "b") for r in table)  # input columns kept
    ref = load_engine(classifier_bundle, "hf").classify([r["text"] for r in rows])
    labels = ["billing", "technical", "account", "shipping"]
    for r, p in zip(table, ref):
        assert r["probs"] == pytest.approx(p, abs=1e-5) and r["pred"] == labels[p.index(max(p))]
    rejects = read_jsonl(tmp_path / "scored.parquet.rejects.jsonl")
    assert [(r["row"], r["reason"]) for r in rejects] == [(10, "invalid_json"), (11, "missing_field"), (12, "empty_text"), (13, "invalid_field")]
    assert rejects[0]["source"].endswith("in.jsonl:11") and rejects[0]["record"] == "{broken json"
    assert summary["rows"] == 40 and summary["errors"] == 4 and sum(summary["label_distribution"].values()) == 40
    assert not (tmp_path / "scored.parquet.parts").exists()
    # a second run with the same inputs is a no-op
    again = run_score(ScoreJob(src, out, "classify", str(classifier_bundle), "hf", batch_size=8, chunk_rows=7))
    assert again["finished"] == summary["finished"]


def test_chat_and_generate_from_csv_with_template(chat_bundle: Path, tmp_path: Path) -> None:
    import csv

    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "messages"])
        w.writerow(["q1", "How heavy is the Comet Earbuds?", json.dumps([{"role": "user", "content": "How heavy is the Comet Earbuds?"}])])
        w.writerow(["q2", "What does the Nimbus Kettle cost?", "What does the Nimbus Kettle cost?"])
        w.writerow(["q3", "x", '[{"role": "robot", "content": "hi"}]'])
    engine = load_engine(chat_bundle, "hf")
    out = tmp_path / "chat.jsonl"
    run_score(ScoreJob(src, out, "chat", str(chat_bundle), "hf", ScoreOptions(sampling=Sampling(max_tokens=12))))
    got = read_jsonl(out)
    expect = engine.chat_generate([[{"role": "user", "content": "How heavy is the Comet Earbuds?"}], [{"role": "user", "content": "What does the Nimbus Kettle cost?"}]], Sampling(max_tokens=12))

    assert [r["generation"] for r in got] == [c[0].text for c in expect]
    assert read_jsonl(tmp_path / "chat.jsonl.rejects.jsonl")[0]["reason"] == "invalid_messages"

    out = tmp_path / "gen.csv"
    run_score(ScoreJob(src, out, "generate", str(chat_bundle), "hf", ScoreOptions(prompt_template="Question: {question}\nAnswer:", sampling=Sampling(max_tokens=16, n=2, temperature=0.8, seed=3))))
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and len(json.loads(rows[0]["generations"])) == 2
    ref = engine.generate(["Question: How heavy is the Comet Earbuds?\nAnswer:"], Sampling(max_tokens=16, n=2, temperature=0.8, seed=3))
    assert json.loads(rows[0]["generations"]) == [c.text for c in ref[0]]


def test_shards_split_the_rows_without_overlap(chat_bundle: Path, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": f"The Comet Earbuds weigh {i} grams."} for i in range(23)])
    ids = []
    for k in range(3):
        out = tmp_path / f"ppl-{k}.jsonl"
        run_score(ScoreJob(src, out, "perplexity", str(chat_bundle), "hf", num_shards=3, shard_index=k, chunk_rows=5))
        ids.append([r["id"] for r in read_jsonl(out)])
    assert sorted(i for part in ids for i in part) == list(range(23))
    assert ids[1] == list(range(1, 23, 3))
    with pytest.raises(DataError, match="--shard-index 3 must be in 0..2"):
        run_score(ScoreJob(src, tmp_path / "x.jsonl", "perplexity", str(chat_bundle), "hf", num_shards=3, shard_index=3))


def test_factuality_calls_the_eval_scorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def score_records(records, source_field="source", output_field="output", reference_field=None):  # noqa: ANN001
        calls.append((len(records), source_field, output_field))
        return [{"hallucination_score": float(r[output_field] not in r[source_field])} for r in records]

    # a stand-in scorer: the task calls whatever nlpforge.evals.factuality.score_records is
    monkeypatch.setitem(sys.modules, "nlpforge.evals.factuality", types.SimpleNamespace(score_records=score_records))
    src = write_jsonl(tmp_path / "logs.jsonl", [{"doc": "The kettle costs $49.", "answer": "$49"}, {"doc": "The kettle costs $49.", "answer": "$99"}, {"doc": "x"}])
    out = tmp_path / "fact.jsonl"
    summary = run_score(ScoreJob(src, out, "factuality", None, options=ScoreOptions(source_field="doc", output_field="answer")))
    assert [r["hallucination_score"] for r in read_jsonl(out)] == [0.0, 1.0] and calls == [(2, "doc", "answer")]
    assert summary["errors"] == 1 and summary["hallucination_score"]["mean"] == 0.5


def test_clear_errors(chat_bundle: Path, classifier_bundle: Path, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": "hi there you"}])
    with pytest.raises(StageError, match="is a classification bundle; it can do: classify"):
        run_score(ScoreJob(src, tmp_path / "o.jsonl", "perplexity", str(classifier_bundle), "hf"))
    with pytest.raises(DataError, match="unsupported file type '.txt'"):
        run_score(ScoreJob(src, tmp_path / "o.txt", "perplexity", str(chat_bundle), "hf"))
    if importlib.util.find_spec("nlpforge.export.registry") is None:
        with pytest.raises(StageError, match="NAME@STAGE refs need the model registry"):
            run_score(ScoreJob(src, tmp_path / "o.jsonl", "perplexity", "support@production", "hf"))
    proc = nlpforge("score", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--task", "summarize", check=False)
    assert proc.returncode == 2 and "valid tasks are generate, chat, classify, perplexity, factuality" in proc.stderr


def kill_after_two_chunks(args: list[str], ledger: Path, timeout_s: float) -> Path:
    """Start ``nlpforge *args`` and SIGKILL its process group once its ledger records two chunks."""
    proc = subprocess.Popen([sys.executable, "-m", "nlpforge", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and not (ledger.is_file() and ledger.read_text().count("\n") >= 2):
        assert proc.poll() is None, "scoring ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return ledger


def test_sigkill_then_rerun_gives_every_row_once(classifier_bundle: Path, tmp_path: Path) -> None:
    rows = tickets(1500)
    src = write_jsonl(tmp_path / "in.jsonl", rows[:700] + ["{oops"] + rows[700:])
    out = tmp_path / "labels.jsonl"
    args = ["score", "--model", str(classifier_bundle), "--input", str(src), "--output", str(out),
            "--task", "classify", "--engine", "hf", "--chunk-rows", "100", "--batch-size", "16", "--threads", "1", "--quiet"]
    ledger = kill_after_two_chunks(args, tmp_path / "labels.jsonl.parts/ledger.jsonl", 120)
    done_before = ledger.read_text().count("\n")
    assert 2 <= done_before < 16 and not out.exists()

    resumed = nlpforge(*args[:-1])  # the same command again (with its progress bar)
    assert f"resuming, {done_before} chunks" in resumed.stderr
    got = read_jsonl(out)
    assert [r["id"] for r in got] == list(range(1500))  # no duplicate, no missing row, input order
    summary = json.loads((tmp_path / "labels.jsonl.summary.json").read_text())
    assert summary["rows"] == 1500 and summary["errors"] == 1 and summary["rows_this_run"] == 1501 - done_before * 100
    # rows scored before the kill equal what a fresh engine says now
    sample = [got[i] for i in (0, 150, 699, 700, 1499)]
    ref = load_engine(classifier_bundle, "hf").classify([r["text"] for r in sample])
    for r, p in zip(sample, ref):
        assert r["probs"] == pytest.approx(p, abs=1e-5)

    # a restart with different settings refuses to mix results
    (tmp_path / "labels.jsonl.parts").mkdir()
    (tmp_path / "labels.jsonl.parts/job.json").write_text(json.dumps({"task": "perplexity"}))
    with pytest.raises(DataError, match="holds an unfinished run with different settings"):
        run_score(ScoreJob(src, out, "classify", str(classifier_bundle), "hf", chunk_rows=100, batch_size=16, threads=1))


def test_ray_scoring_killed_then_rerun_gives_every_row_once(classifier_bundle: Path, tmp_path: Path) -> None:
    """score --ray on a real local cluster: two replicas finish chunks out of order; the driver is
    SIGKILLed and the same command resumes from its ledger."""
    pytest.importorskip("ray")
    rows = tickets(600)
    src = write_jsonl(tmp_path / "in.jsonl", rows[:300] + ["{oops"] + rows[300:])
    out = tmp_path / "labels.jsonl"
    args = ["score", "--model", str(classifier_bundle), "--input", str(src), "--output", str(out), "--task", "classify", "--engine", "hf",
            "--chunk-rows", "50", "--batch-size", "16", "--threads", "1", "--ray", "--replicas", "2", "--quiet"]
    ledger = kill_after_two_chunks(args, tmp_path / "labels.jsonl.parts/ledger.jsonl", 240)
    chunks_before = sorted(json.loads(x)["chunk"] for x in ledger.read_text().splitlines())
    assert 2 <= len(chunks_before) < 13 and not out.exists()

    cpus = os.cpu_count() or 1
    bad = nlpforge(*args[:-3], "--replicas", str(cpus + 1), check=False)  # more replicas than the CPUs hold: refused, the parts kept
    assert bad.returncode != 0 and f"holds {cpus} replica(s) of 1 CPU(s) each" in bad.stderr, bad.stderr
    resumed = nlpforge(*args[:-1])  # the same command again (with its log)
    assert f"resuming, {len(chunks_before)} chunks" in resumed.stderr
    got = read_jsonl(out)
    assert [r["id"] for r in got] == list(range(600))  # no duplicate, no missing row, input order
    summary = json.loads((tmp_path / "labels.jsonl.summary.json").read_text())
    assert summary["rows"] == 600 and summary["errors"] == 1 and summary["rows_this_run"] == 601 - 50 * len(chunks_before)
    assert [json.loads(x)["row"] for x in (tmp_path / "labels.jsonl.rejects.jsonl").read_text().splitlines()] == [300]
    sample = [got[i] for i in (0, 299, 300, 599)]  # scored by replicas, before and after the kill: what a local engine says
    ref = load_engine(classifier_bundle, "hf").classify([r["text"] for r in sample])
    for r, p in zip(sample, ref):
        assert r["probs"] == pytest.approx(p, abs=1e-5)


PROMPT = "Question: How heavy is the Comet Earbuds?\nAnswer:"


def test_openai_batch_file(chat_bundle: Path, tmp_path: Path) -> None:
    chat_msgs = [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]
    engine = load_engine(chat_bundle, "hf")
    first = engine.chat_generate([chat_msgs], Sampling(max_tokens=10))[0][0].token_ids[0]  # banned by logit_bias below
    lines = [
        {"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "tiny-chat", "messages": chat_msgs, "max_tokens": 10}},
        {"custom_id": "p1", "method": "POST", "url": "/v1/completions", "body": {"model": "tiny-chat", "prompt": PROMPT, "max_tokens": 16, "stop": ["grams"]}},
        "{not json",
        {"method": "POST", "url": "/v1/chat/completions", "body": {"messages": chat_msgs}},
        {"custom_id": "bad-url", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}},
        {"custom_id": "bad-n", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": chat_msgs, "n": 0}},
        {"custom_id": "too-long", "method": "POST", "url": "/v1/completions", "body": {"prompt": "word " * 600, "max_tokens": 4}},
        {"custom_id": "c2", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": chat_msgs, "max_completion_tokens": 10, "user": "ignored"}},
        {"custom_id": "pen", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": chat_msgs, "max_tokens": 10, "frequency_penalty": 1.5, "repetition_penalty": 1.5, "logit_bias": {str(first): -100}}},
        {"custom_id": "bad-bias", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": chat_msgs, "logit_bias": {"99999": 1}}},
        {"custom_id": "parts", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": [{"role": "user", "content": [{"type": "text", "text": chat_msgs[0]["content"]}]}], "max_tokens": 10}},
        {"custom_id": "image", "method": "POST", "url": "/v1/chat/completions",
         "body": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}},
        {"custom_id": "tools", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": chat_msgs, "tools": [{"type": "function"}]}},
    ]
    src = write_jsonl(tmp_path / "requests.jsonl", lines)
    proc = nlpforge("score", "--model", str(chat_bundle), "--batch-file", str(src), "--output", str(tmp_path / "results.jsonl"), "--engine", "hf")
    assert "status codes: 200" in proc.stdout
    got = read_jsonl(tmp_path / "results.jsonl")
    assert [r["custom_id"] for r in got] == ["c1", "p1", None, None, "bad-url", "bad-n", "too-long", "c2", "pen", "bad-bias", "parts", "image", "tools"]
    assert all(r["id"].startswith("batch_req") for r in got)
    ok = got[0]["response"]
    assert ok["status_code"] == 200 and got[0]["error"] is None and ok["body"]["object"] == "chat.completion"
    assert ok["body"]["choices"][0]["message"]["content"] == engine.chat_generate([chat_msgs], Sampling(max_tokens=10))[0][0].text
    assert got[7]["response"]["body"]["choices"] == ok["body"]["choices"]
    usage = ok["body"]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["completion_tokens"] <= 10
    comp = got[1]["response"]["body"]
    assert comp["object"] == "text_completion" and "grams" not in comp["choices"][0]["text"] and comp["choices"][0]["finish_reason"] == "stop"
    assert got[2]["response"] is None and got[2]["error"]["code"] == "invalid_json"
    assert got[3]["response"] is None and "custom_id" in got[3]["error"]["message"]
    for r in got[4:7]:
        assert r["response"]["status_code"] == 400 and r["error"] is None
        assert r["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert "url" in got[4]["response"]["body"]["error"]["message"] and "exceeds the model's context" in got[6]["response"]["body"]["error"]["message"]
    # penalties and logit_bias reach the engine (not silently dropped); a token id the model lacks is the line's 400
    pen = Sampling(max_tokens=10, frequency_penalty=1.5, repetition_penalty=1.5, logit_bias={str(first): -100})
    assert got[8]["response"]["body"]["choices"][0]["message"]["content"] == engine.chat_generate([chat_msgs], pen)[0][0].text
    assert got[8]["response"]["body"]["choices"] != ok["body"]["choices"]
    assert got[9]["response"]["status_code"] == 400 and "body.logit_bias: logit_bias token id 99999 is out of range" in got[9]["response"]["body"]["error"]["message"]
    # content as text parts reads like the string; what the model cannot take is the line's 400, as on the server
    assert got[10]["response"]["body"]["choices"] == ok["body"]["choices"]
    assert got[11]["response"]["status_code"] == 400 and "content[0] is a 'image_url' part" in got[11]["response"]["body"]["error"]["message"]
    assert got[12]["response"]["status_code"] == 400 and "tool calls are not available" in got[12]["response"]["body"]["error"]["message"]


def test_an_interrupted_job_with_sampling_options_resumes(chat_bundle: Path, tmp_path: Path) -> None:
    """job.json is read back as JSON (tuples become lists): the rerun of the same command must
    still match it, or a killed job with sampling options could never resume."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": q}]} for q in ("How heavy is the Comet Earbuds?", "Refunds?")])
    job = ScoreJob(src, tmp_path / "out.jsonl", "chat", str(chat_bundle), "hf", ScoreOptions(sampling=Sampling(max_tokens=8, stop=("\n",))), chunk_rows=1)
    job.parts.mkdir()
    (job.parts / "job.json").write_text(json.dumps(job.fingerprint(), indent=2))  # what a run killed before its first chunk leaves
    summary = run_score(job)
    assert summary["rows"] == 2 and len(read_jsonl(job.output)) == 2


def test_vllm_engine_arguments_reach_the_engine_and_are_checked(chat_bundle: Path, tmp_path: Path) -> None:
    """`score --engine-arg` / `--tensor-parallel-size`: refused with the reason when the machine or
    the engine cannot take them; passed to vLLM when it can (a shorter max_model_len makes the long
    row a too_long reject, the short one is scored)."""
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]},
                                              {"messages": [{"role": "user", "content": "Tell me about the Nimbus Kettle warranty. " * 12}]}])
    base = ["score", "--model", str(chat_bundle), "--input", str(src), "--output", str(tmp_path / "out.jsonl"), "--task", "chat", "--max-tokens", "8"]
    for extra, said in [(["--engine", "vllm", "--tensor-parallel-size", "2"], "no GPU"),
                        (["--engine", "vllm", "--engine-arg", "enforce_eagre=true"], "did you mean 'enforce_eager'"),
                        (["--engine", "hf", "--engine-arg", "max_num_seqs=4"], "add --engine vllm"),
                        (["--engine", "vllm", "--engine-arg", "data_parallel_size=2"], "--num-shards")]:
        proc = nlpforge(*base, *extra, check=False)
        assert proc.returncode == 2 and said in " ".join((proc.stdout + proc.stderr).split()), (extra, proc.stdout, proc.stderr)
    assert not (tmp_path / "out.jsonl.parts").exists()  # refused before anything was written
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed")
    nlpforge(*base, "--engine", "vllm", "--engine-arg", "max_model_len=64", "--engine-arg", "enforce_eager=true", "--quiet")
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 1
    (reject,) = read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")
    assert reject["reason"] == "too_long" and "context of 64" in reject["detail"]
