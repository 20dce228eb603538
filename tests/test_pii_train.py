"""`nlpforge pii train`: nlpforge's own synthetic generator and a tiny fine-tuning run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nlpforge

from nlpforge.corpus.pii_train import read_examples, synthetic_examples
from nlpforge.errors import DataError

pytest.importorskip("faker")


def test_synthetic_examples_are_exact_and_varied() -> None:
    examples = synthetic_examples(200, seed=3)
    assert synthetic_examples(5, seed=3)[0].text == examples[0].text  # deterministic per seed
    labels = {label for ex in examples for _, _, label in ex.spans}
    assert {"PERSON", "GPE", "FAC", "DATE"} <= labels
    for ex in examples:
        prev = -1
        for s, e, _ in sorted(ex.spans):
            value = ex.text[s:e]
            assert value and value == value.strip() and s >= prev
            prev = e
    assert any(ex.text[s:e].islower() for ex in examples for s, e, lab in ex.spans if lab == "PERSON")  # lower-case chat names


def test_read_examples_maps_labels_and_names_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"text": "Ask Kim in Oslo", "spans": [{"start": 4, "end": 7, "entity": "PERSON"}, {"start": 11, "end": 15, "entity": "LOCATION"}]}) + "\n")
    assert [(s, e, lab) for s, e, lab in read_examples(good)[0].spans] == [(4, 7, "PERSON"), (11, 15, "GPE")]
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"text": "x", "spans": [{"start": 0, "end": 1, "entity": "SHOE_SIZE"}]}) + "\n")
    with pytest.raises(DataError, match=r"b.jsonl:1: not an annotated example"):
        read_examples(bad)


def test_pii_train_cli_writes_a_pipeline_the_clean_stage_loads(tmp_path: Path) -> None:
    spacy = pytest.importorskip("spacy")
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"text": "escalated to zorblat quux today", "spans": [{"start": 13, "end": 24, "entity": "PERSON"}]}) + "\n")
    out = tmp_path / "ner"
    res = nlpforge("pii", "train", "--out", str(out), "--n", "40", "--epochs", "1", "--examples", str(ann))
    assert "clean.spacy_model" in res.stdout
    summary = json.loads((out / "pii_train.json").read_text())
    assert summary["synthetic"] == 40 and summary["annotated"] == 1 and len(summary["losses"]) == 1
    nlp = spacy.load(out)
    assert "ner" in nlp.pipe_names and {"PERSON", "GPE", "DATE"} <= set(nlp.get_pipe("ner").labels)
    from nlpforge.corpus.processor import build_nlp
    from nlpforge.recipe import CleanConfig

    assert build_nlp(CleanConfig(spacy_model=str(out), pii=["PERSON"])).has_pipe("ner")
