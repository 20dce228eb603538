"""Factuality and hallucination: hand-checkable cases for each check, the labelled set's AUROC,
the LLM judge over real HTTP (FastAPI stub on loopback), and the `eval factuality` command."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import nlpforge
from fastapi import FastAPI, Request

from nlpforge.evals import factuality as F

SOURCE = (
    "Helix Labs announced on March 3, 2021 that it will acquire Zentrix, a Lyon-based maker of drones, for $240 million. "
    "The deal will add about 1,200 employees. Maria Lopez, chief executive of Helix Labs, said the purchase would strengthen its position in Boston. "
    "Pandora 2.14.1 fixes 37 bugs. The Zephyr Kettle has no battery."
)


def one(output: str, source: str = SOURCE) -> dict:
    return F.score_records([{"source": source, "output": output}])[0]


def test_faithful_output_has_full_precision_and_a_low_score() -> None:
    s = one("Helix Labs will buy Zentrix for $240 million, adding about 1200 employees.")
    assert s["entity_precision"] == 1.0 and s["number_precision"] == 1.0  # "1,200" = "1200"
    assert s["negation_mismatch"] == 0.0
    # fitted score: not an absolute bound; a faithful paraphrase is not a verbatim copy, and in the real-text fit
    # data about half of the non-copied outputs were hallucinated, so it scores near the middle. It must rank below an edit of itself.
    assert s["hallucination_score"] < one("Helix Labs will buy Quantix for $240 million, adding about 1200 employees.")["hallucination_score"]


def test_entity_swap_is_named_and_scored_high() -> None:
    s = one("Helix Labs will buy Quantix for $240 million.")
    assert s["hallucination_score"] > 0.7
    assert "Quantix" in s.get("entity_unsupported", []) + s.get("name_unsupported", [])
    s = one("Maria Lopez said the purchase would strengthen its position in Toronto.")
    assert s["entity_precision"] == pytest.approx(0.5) and s["entity_unsupported"] == ["Toronto"]


def test_numbers_dates_and_versions_are_checked_separately() -> None:
    assert one("The deal is worth 0.24 billion dollars.")["number_precision"] == 1.0  # scale words
    s = one("Helix Labs will pay $250 million.")
    assert s["number_precision"] == 0.0 and s["number_unsupported"] == ["250"]
    assert one("The deal was announced on 3 March 2021.")["date_precision"] == 1.0
    s = one("The deal was announced on March 4, 2021.")
    assert s["date_precision"] == 0.0 and s["number_precision"] is None  # the day is a date part, not a number
    s = one("Pandora 2.14.2 fixes 37 bugs.")
    assert s["version_precision"] == 0.0 and s["number_precision"] == 1.0


def test_nothing_to_check_is_undefined_not_perfect() -> None:
    s = one("The purchase would strengthen its position.")
    assert s["entity_precision"] is None and s["number_precision"] is None and s["date_precision"] is None
    assert s["hallucination_score"] is not None  # the content and negation checks still apply
    empty = one("")
    assert empty["hallucination_score"] is None and empty["empty_output"] is True
    assert F.score_records([{"output": "Anything at all."}])[0] == {"hallucination_score": None, "no_source": True}


def test_negation_flip_is_caught() -> None:
    assert one("The Zephyr Kettle has no battery.")["negation_mismatch"] == 0.0
    s = one("The Zephyr Kettle has a battery.")
    copied = one("The Zephyr Kettle has no battery.")["hallucination_score"]  # a verbatim copy
    assert s["negation_mismatch"] == 1.0 and s["hallucination_score"] > copied + 0.3  # fitted score: was > 0.5 with hand weights


def test_fact_moved_to_another_subject_is_caught() -> None:
    src = "The Zephyr Kettle costs $49.00 and weighs 1200 grams. The Aurora Lamp costs $35.50 and weighs 640 grams."
    ok = one("The Aurora Lamp costs $35.50.", src)
    bad = one("The Aurora Lamp costs $49.00.", src)  # every fact is in the source, on the wrong product
    assert ok["hallucination_score"] < 0.3
    assert bad["unanchored_facts"] == 1.0 and bad["hallucination_score"] > 0.7


def test_reference_answer_correctness() -> None:
    s = F.score_records([{"question": "Price?", "answer": "It costs $49.00.", "ref": "The kettle costs $49.00."}], "question", "answer", "ref")[0]
    assert s["answer_f1"] == pytest.approx(2 / 3)  # "it costs 4900" vs "kettle costs 4900": P = R = 2/3
    assert s["answer_exact"] == 0.0


def test_selfcheck_flags_the_sentence_the_samples_do_not_support() -> None:
    samples = ["The kettle costs 49 dollars and has a two year warranty.", "It costs 49 dollars; the warranty lasts two years.", "Price: 49 dollars, warranty two years."]
    supported = ["The kettle costs 49 dollars."]
    invented = ["The kettle was designed by a famous Italian architect."]
    assert F.selfcheck_ngram(supported, samples) < 0.3 < F.selfcheck_ngram(invented, samples)
    assert F.selfcheck_ngram(supported, []) is None
    emb_ok, emb_bad = F.selfcheck_embedding(supported, samples), F.selfcheck_embedding(invented, samples)  # real MiniLM
    assert 0 <= emb_ok < emb_bad <= 1 and emb_bad - emb_ok > 0.2


def test_token_uncertainty() -> None:
    import math

    u = F.token_uncertainty([math.log(0.5), math.log(0.5)], [0.69, 0.69])
    assert u["token_uncertainty"] == pytest.approx(0.5) and u["mean_entropy"] == pytest.approx(0.69)
    assert F.token_uncertainty([])["token_uncertainty"] is None
    assert F.hallucination_score({"token_uncertainty": 0.5}) == pytest.approx(F.WEIGHTS["token_uncertainty"] * 0.5)


def test_labelled_set_auroc_on_an_unseen_seed() -> None:
    import make_hallucination_set as H

    aucs = H.measure(H.build(seed=11, n=12))
    assert aucs["entity_swap"] >= 0.85 and aucs["number_change"] >= 0.85 and aucs["overall"] >= 0.8, aucs


# --- LLM judge over real HTTP ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def judge_server() -> str:
    """An OpenAI-compatible stub whose 'model' says Yes only when every word of the statement
    occurs in the context: the test checks prompt layout, transport and verdict direction."""
    import re

    import uvicorn

    app = FastAPI()
    seen: list[str] = []

    @app.post("/v1/chat/completions")
    async def chat(req: Request) -> dict:
        body = await req.json()
        prompt = body["messages"][-1]["content"]
        seen.append(prompt)
        context = prompt.split("Context:\n", 1)[1].split("\n\nStatement:\n", 1)[0]
        statement = prompt.split("\n\nStatement:\n", 1)[1].split("\n\n", 1)[0]
        words = lambda t: set(re.findall(r"\w+", t.lower()))  # noqa: E731
        if len(context) > 500:  # what a judge with a short context answers
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"message": "prompt too long", "type": "BadRequestError", "param": None, "code": 400}}, status_code=400)
        supported = words(statement) <= words(context)
        verdict = "Yes." if supported else "No, it is not."
        choice = {"index": 0, "message": {"role": "assistant", "content": verdict}, "finish_reason": "stop"}
        if body.get("logprobs"):  # the first token's alternatives: P(verdict) 0.8 (0.6 yes + 0.2 " Yes"), the other 0.2
            first, other = ("Yes", "No") if supported else ("No", "Yes")
            top = [{"token": first, "logprob": math.log(0.6), "bytes": None}, {"token": f" {first}", "logprob": math.log(0.2), "bytes": None},
                   {"token": other, "logprob": math.log(0.2), "bytes": None}, {"token": "Maybe", "logprob": math.log(0.01), "bytes": None}]
            choice["logprobs"] = {"content": [{"token": first, "logprob": math.log(0.6), "bytes": None, "top_logprobs": top}]}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [choice],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(5)


def test_llm_judge_through_an_openai_compatible_endpoint(judge_server: str) -> None:
    pairs = [(SOURCE, "Helix Labs will acquire Zentrix."), (SOURCE, "Helix Labs will acquire Tesla.")]
    got = F.llm_judge(pairs, judge_server, "judge", graded=False)
    assert [g["judge_unsupported"] for g in got] == [0.0, 1.0]
    graded = F.llm_judge(pairs, judge_server, "judge")  # P(No) over the first token's Yes/No alternatives, spaces and case folded
    assert [g["judge_unsupported"] for g in graded] == [pytest.approx(0.2), pytest.approx(0.8)]
    mixed = F.llm_judge([pairs[0], (SOURCE * 20, "Helix Labs will acquire Zentrix."), pairs[1]], judge_server, "judge")
    assert [g["judge_unsupported"] for g in mixed] == [pytest.approx(0.2), None, pytest.approx(0.8)]  # a refused pair fails alone
    assert "prompt too long" in mixed[1]["judge_reply"]
    assert F.hallucination_score({"judge_unsupported": 1.0}) > F.hallucination_score({"judge_unsupported": 0.0})


# --- CLI -------------------------------------------------------------------------------------------


def test_eval_factuality_command(tmp_path: Path) -> None:
    rows = [
        {"id": 1, "src": SOURCE, "out": "Helix Labs will buy Zentrix for $240 million."},
        {"id": 2, "src": SOURCE, "out": "Helix Labs will buy Zentrix for $990 million."},
        {"id": 3, "src": SOURCE, "out": ""},
    ]
    inp, outp = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = nlpforge("eval", "factuality", "--input", str(inp), "--output", str(outp), "--source-field", "src", "--output-field", "out", "--quiet")
    got = [json.loads(x) for x in outp.read_text().splitlines()]
    assert [g["id"] for g in got] == [1, 2, 3] and got[0]["out"] == rows[0]["out"]  # lines kept, in order
    assert got[0]["hallucination_score"] < got[1]["hallucination_score"] and got[1]["number_unsupported"] == ["990"]
    assert got[2]["hallucination_score"] is None
    assert "hallucination_score" in proc.stdout and "factuality of 3 outputs" in proc.stdout

    inp.write_text(json.dumps(rows[0]) + "\n{not json\n")
    bad = nlpforge("eval", "factuality", "--input", str(inp), "--output", str(tmp_path / "x.jsonl"), "--source-field", "src", "--output-field", "out", check=False)
    assert bad.returncode == 1 and f"{inp}:2: not valid JSON" in bad.stderr.replace("\n", "")
    missing = nlpforge("eval", "factuality", "--input", str(outp), "--output", str(tmp_path / "x.jsonl"), check=False)
    assert missing.returncode == 1 and "field 'output' must be a string" in missing.stderr.replace("\n", "")
