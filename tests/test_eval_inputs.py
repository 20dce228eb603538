"""data.eval_inputs: a fixed held-out file is the eval split, cleaned with the training rules, and
a training row that copies one of its rows is dropped as a duplicate (decontamination)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlpforge.errors import DataError
from nlpforge.pipeline import run_pipeline
from nlpforge.recipe import Recipe
from nlpforge.runs import RunDir


def conv(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def recipe(model: Path, **data: object) -> Recipe:
    return Recipe.model_validate({
        "name": "fixed", "data": {"inputs": ["train.jsonl"], **data}, "model": {"path": str(model), "max_length": 64},
        "clean": {"min_words": 1, "quality": {"preset": "off"}, "pii": ["EMAIL_ADDRESS"]},
    })


def test_eval_inputs_are_the_eval_split_cleaned_and_decontaminated(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    test = [conv(f"Where is order {i}?", f"Order {i} ships on Monday.") for i in range(6)]
    test[5] = conv("Mail me at ann@example.com please", "Done, Ann.")  # cleaned with the same rules: the address is replaced
    train = [conv(f"How much is item {i}?", f"Item {i} costs {i} dollars.") for i in range(30)] + [test[2]]
    write(tmp_path / "train.jsonl", train)
    write(tmp_path / "test.jsonl", test)
    run = RunDir(tmp_path / "run")
    run_pipeline(recipe(Path(tiny_model), eval_inputs=["test.jsonl"]), Path("fixed.yaml"), run, ["clean", "prepare"])
    held = [json.loads(x) for x in (run.root / "prepare/eval.jsonl").read_text().splitlines()]
    assert sorted(r["source"] for r in held) == [f"test.jsonl:{i}" for i in range(1, 7)]  # every test row, nothing else
    assert "<EMAIL_ADDRESS>" in held[[r["source"] for r in held].index("test.jsonl:6")]["messages"][0]["content"]
    meta = json.loads((run.root / "prepare/meta.json").read_text())
    assert meta["rows"] == {"eval": 6, "train": 30}, meta  # the training copy of a test row is gone
    rejects = [json.loads(x) for x in (run.root / "clean/rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["reason"]) for r in rejects] == [("train.jsonl:31", "duplicate")]


def test_eval_inputs_that_clean_away_entirely_are_a_clear_error(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.jsonl", [conv(f"How much is item {i}?", f"Item {i} costs {i} dollars.") for i in range(10)])
    write(tmp_path / "test.jsonl", [conv("How much is item 1?", "Item 1 costs 1 dollars.")])  # its only row is in training too: kept here, dropped there
    run = RunDir(tmp_path / "run")
    run_pipeline(recipe(Path(tiny_model), eval_inputs=["test.jsonl"]), Path("fixed.yaml"), run, ["clean", "prepare"])
    assert json.loads((run.root / "prepare/meta.json").read_text())["rows"] == {"eval": 1, "train": 9}  # the eval copy wins; training loses it
    write(tmp_path / "test.jsonl", [{"messages": "not a conversation"}])
    with pytest.raises(DataError, match="data.eval_inputs"):
        run_pipeline(recipe(Path(tiny_model), eval_inputs=["test.jsonl"]), Path("fixed.yaml"), RunDir(tmp_path / "run2"), ["clean", "prepare"])
