"""The trained factual-consistency checker (nlpforge.evals.checker): pair generation, chunking, a tiny
checker trained through nlpforge's classification pipeline on a generated corpus in well under a
minute on a quiet core, its ranking of held-out edited claims, and its `evaluate` module."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from nlpforge.evals import checker as CK
from nlpforge.evals.checker_train import train_checker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PRODUCTS = ["Zephyr Kettle", "Aurora Lamp", "Nimbus Fan", "Orion Speaker", "Vega Blender", "Atlas Heater", "Lyra Clock", "Nova Toaster", "Cobalt Router",
            "Ember Grill", "Juno Scale", "Pixel Frame", "Quartz Timer", "Sierra Cooler", "Titan Drill", "Umbra Shade", "Willow Chair", "Yarrow Mixer"]
MAKERS = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adatum", "Proseware", "Woodgrove", "Lucerne", "Wingtip"]
CITIES = ["Lyon", "Boston", "Osaka", "Denver", "Porto", "Dublin", "Austin", "Malmo", "Quebec", "Turin"]
FEATURES = ["Bluetooth", "a timer", "voice control", "a night mode", "USB charging", "a travel case", "child lock", "auto shutoff"]


def make_doc(rng: random.Random, product: str) -> str:
    battery = rng.choice(["has a battery", "has no battery"])
    f1, f2 = rng.sample(FEATURES, 2)
    return (f"The {product} is made by {rng.choice(MAKERS)} in {rng.choice(CITIES)}. It costs {rng.randint(12, 480)} dollars and weighs "
            f"{rng.randint(2, 40) * 50} grams. The {product} {battery}. It supports {f1} and {f2}. Orders ship within {rng.randint(2, 9)} days.")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    with path.open("w") as fh:
        for i in range(160):
            doc = make_doc(rng, f"{PRODUCTS[i % 12]} {i}")
            rec = {"text": doc} if i % 2 else {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about it."},
                                                            {"role": "assistant", "content": doc}]}
            fh.write(json.dumps(rec) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("checker")
    # 60 steps of 16 short pairs: about 25 s of training on a quiet core (the clean stage and four model loads add ~15 s)
    meta = train_checker(corpus, out, pairs=240, dev_pairs=80, epochs=4, batch_size=16, learning_rate=2e-4, max_length=40, chunk_words=16, threads=1,
                            compare_model_free=False)
    return out, meta


# --- no model --------------------------------------------------------------------------------------


def test_sentences_chunks_and_claims() -> None:
    text = "First one, e.g. this. Second sentence here!\nThird line without stop\n\nFourth."
    assert CK.split_sentences(text) == ["First one, e.g. this.", "Second sentence here!", "Third line without stop", "Fourth."]
    chunks = CK.chunk_source(" ".join(f"Sentence number {i} has six words." for i in range(10)), chunk_words=13)
    assert len(chunks) == 5 and all(len(c.split()) <= 13 for c in chunks)
    assert CK.chunk_source("word " * 30, chunk_words=10) == ["word " * 9 + "word"] * 3  # an overlong sentence is cut
    assert CK.claim_sentences("It costs 49 dollars. Yes. It ships fast.") == ["It costs 49 dollars. Yes.", "It ships fast."]


def test_read_documents_takes_text_and_chat_records(corpus: Path, tmp_path: Path) -> None:
    docs = CK.read_documents(corpus)
    assert len(docs) == 160 and not any("Be brief." in d for d in docs) and "Tell me about it.\nThe " in docs[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "one two three four five six seven eight"}\n{"label": 1}\n')
    from nlpforge.errors import DataError

    with pytest.raises(DataError, match="bad.jsonl:2"):
        CK.read_documents(bad)


def test_pairs_are_balanced_and_negatives_are_edited(corpus: Path) -> None:
    docs = CK.read_documents(corpus)
    pairs = CK.make_pairs(docs, 200, seed=1, chunk_words=40)
    assert len(pairs) == 200 and sum(p["label"] for p in pairs) == 100
    kinds = {p["kind"] for p in pairs}
    assert {"copy", "shorten", "name_swap", "number_change", "negation", "insertion", "other_document"} <= kinds
    for p in pairs:
        if p["kind"] == "copy":
            assert p["claim"] in p["source"]
        if p["label"] == 1 and p["kind"] not in ("other_document", "other_window", "other_lead"):
            assert p["claim"] not in p["source"]
        if p["kind"] in ("lead", "lead_edit", "other_lead"):  # a document's opening sentence against the text after it
            sents = CK.split_sentences(docs[p["doc"]])
            assert p["source"].startswith(sents[1]) and sents[0] not in p["source"]
    assert {"lead", "lead_edit"} <= kinds
    assert CK.make_pairs(docs, 30, seed=1, chunk_words=40) == CK.make_pairs(docs, 30, seed=1, chunk_words=40)  # seeded


def test_combine_scores() -> None:
    assert CK.combine_scores(0.2, 0.6) == pytest.approx(0.4)
    assert CK.combine_scores(None, 0.6) == 0.6 and CK.combine_scores(0.3, None) == 0.3 and CK.combine_scores(None, None) is None


def test_edits() -> None:
    rng = random.Random(0)
    assert CK._negate("The kettle is waterproof.", rng) in ("The kettle is not waterproof.",)
    assert CK._negate("It does not fit.", rng) == "It does fit."
    assert CK._change_number("It costs 49 dollars.", rng) != "It costs 49 dollars."
    assert CK._negate("no verb here", rng) is None and CK._change_number("no number", rng) is None


# --- trained ---------------------------------------------------------------------------------------


def test_tiny_checker_trains_and_ranks_edited_claims_higher(trained: tuple[Path, dict]) -> None:
    out, meta = trained
    assert (out / "run" / "export").is_dir() and json.loads((out / CK.META_FILE).read_text())["bundle"] == "run/export"
    assert meta["dev_auroc"]["checker"] > 0.6, meta  # held-out documents' generated pairs
    checker = CK.Checker.load(out, threads=1)
    rng = random.Random(7)
    sources, faithful, edited = [], [], []
    for i in range(20):  # documents the checker never saw, edited by hand (not by the pair generator)
        doc = make_doc(rng, f"{PRODUCTS[12 + i % 6]} {1000 + i}")
        sents = CK.split_sentences(doc)
        price = sents[1]
        number = price.split(" costs ")[1].split(" dollars")[0]
        sources += [doc, doc, doc]
        faithful += [price, sents[0], sents[2]]
        city = sents[0].split(" in ")[-1].rstrip(".")
        edited += [price.replace(f"costs {number} ", f"costs {int(number) + 17} "), sents[0].replace(city, next(c for c in CITIES if c != city)),
                   sents[2].replace("has a battery", "has no battery") if "has a battery" in sents[2] else sents[2].replace("has no battery", "has a battery")]
    s_ok = checker.score(sources, faithful)
    s_bad = checker.score(sources, edited)
    wins = sum(b > a for a, b in zip(s_ok, s_bad)) / len(s_ok)
    assert wins > 0.6, (wins, s_ok[:6], s_bad[:6])
    assert checker.score(["A source."], [""]) == [None] and checker.score([""], ["A claim."]) == [None]


def test_factcheck_evaluate_module_equals_the_checker(trained: tuple[Path, dict]) -> None:
    import evaluate

    from nlpforge.evals.hf_metrics import metric_path

    out, _ = trained
    sources = ["The Zephyr Kettle costs 49 dollars. It has no battery.", "The Aurora Lamp is made in Lyon.", "Nothing."]
    preds = ["The Zephyr Kettle costs 94 dollars.", "The Aurora Lamp is made in Lyon.", ""]
    got = evaluate.load(metric_path("factcheck")).compute(predictions=preds, sources=sources, checker=str(out))
    want = CK.Checker.load(out, threads=1).score(sources, preds)
    assert got["scores"] == want and got["defined"] == 2 and got["unsupported"] == pytest.approx((want[0] + want[1]) / 2)


def test_eval_factuality_cli_joins_the_checker_score(trained: tuple[Path, dict], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nlpforge.cli import app
    from nlpforge.evals.factuality import score_records

    out, _ = trained
    recs = [{"source": "The Zephyr Kettle costs 49 dollars. It has no battery.", "output": "The Zephyr Kettle costs 94 dollars."},
            {"source": "The Aurora Lamp is made in Lyon.", "output": ""}]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = CliRunner().invoke(app, ["eval", "factuality", "--input", str(src), "--output", str(dst), "--checker", str(out)])
    assert res.exit_code == 0, res.output
    got = [json.loads(line) for line in dst.read_text().splitlines()]
    ck = CK.Checker.load(out, threads=1).score_records(recs)
    model_free = score_records(recs)[0]["hallucination_score"]
    assert got[0]["checker_unsupported"] == ck[0] and got[0]["hallucination_score"] == pytest.approx(CK.combine_scores(ck[0], model_free))
    assert got[1]["checker_unsupported"] is None and got[1]["output"] == ""
    bad = CliRunner().invoke(app, ["eval", "factuality", "--input", str(src), "--output", str(tmp_path / "x.jsonl"), "--checker", str(tmp_path)])
    assert bad.exit_code != 0 and "no checker here" in " ".join(bad.output.split()) and not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
def test_eval_stage_joins_the_checker(trained: tuple[Path, dict], quickstart_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    """`eval.factuality.checker` in a recipe: every scored answer carries the checker's score, and its
    hallucination_score is the mean of the checker's and the model-free one."""
    import shutil

    from conftest import nlpforge

    from nlpforge.evals.factuality import hallucination_score

    out, _ = trained
    run = Path(shutil.copytree(quickstart_run, tmp_path / "run"))
    nlpforge("eval", "recipes/quickstart-chat.yaml", "--quiet", "--run-dir", str(run), "--set", f"model.path={tiny_model}", "--set", "eval.max_samples=6",
             "--set", "eval.gates={}", "--set", f"eval.factuality.checker={out}")
    samples = [json.loads(x) for x in (run / "eval/samples.jsonl").read_text().splitlines()]
    scored = [s["tuned_factuality"] for s in samples if s["tuned_factuality"].get("hallucination_score") is not None]
    assert len(samples) == 6 and scored
    for parts in scored:
        ck = parts["checker_unsupported"]
        assert ck is not None and 0 <= ck <= 1
        model_free = hallucination_score({k: v for k, v in parts.items() if k not in ("hallucination_score", "checker_unsupported")})
        assert parts["hallucination_score"] == pytest.approx(CK.combine_scores(ck, model_free), abs=1e-6)
    results = json.loads((run / "eval/results.json").read_text())
    assert results["tuned"]["checker_unsupported"] == pytest.approx(sum(p["checker_unsupported"] for p in scored) / len(scored), abs=1e-3)
