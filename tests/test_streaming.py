"""data.streaming: prepare tokenises only the eval split, training reads the corpus as a
datasets IterableDataset up to train.max_steps, and no row is in both."""

import json
from collections import Counter
from pathlib import Path

import pytest

from nlpforge.artifacts import PrepareMeta
from nlpforge.data.stream import split_stream, train_stream, training_rows
from nlpforge.errors import RecipeError
from nlpforge.models import load_tokenizer
from nlpforge.recipe import Recipe, load_recipe
from nlpforge.tasks import task_for

ROOT = Path(__file__).resolve().parents[1]


def recipe(model: Path, data: dict | None = None, **train) -> Recipe:
    return Recipe.model_validate({
        "name": "s", "seed": 5, "model": {"path": str(model), "max_length": 256},
        "data": {"inputs": ["a.jsonl", "b.jsonl"], "streaming": True, "splits": {"eval": 0.2}, **(data or {})},
        "train": {"max_steps": 3, "batch_size": 2, "threads": 2, "logging_steps": 1, "save_steps": 100, **train},
    })


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[:60]
    path = tmp_path_factory.mktemp("stream") / "corpus.jsonl"
    path.write_text("".join(json.dumps({**json.loads(x), "source": f"{'ab'[i % 2]}.jsonl:{i}"}) + "\n" for i, x in enumerate(lines)))
    return path


def test_streamed_run_trains_on_the_rows_prepare_did_not_hold_out(tiny_model: Path, corpus: Path, tmp_path: Path) -> None:
    r = recipe(tiny_model)
    out = task_for(r).prepare(r, corpus, tmp_path / "prep")
    meta = PrepareMeta.read(tmp_path / "prep")
    assert not (tmp_path / "prep/train.jsonl").exists() and not (tmp_path / "prep/train.arrow").exists()
    assert (tmp_path / "prep" / meta.streaming_corpus).resolve() == corpus.resolve()
    eval_sources = [row["source"] for row in map(json.loads, (tmp_path / "prep/eval.jsonl").read_text().splitlines())]
    train_sources = [row["source"] for row in training_rows(r, corpus)]
    assert not set(eval_sources) & set(train_sources) and len(eval_sources) + len(train_sources) == 60
    assert 4 <= len(eval_sources) <= 20 and out["train_rows"] == meta.train_rows == len(train_sources)

    tok = load_tokenizer(r)
    streamed = list(train_stream(r, corpus, tok))
    assert len(streamed) == len(train_sources)  # none of these conversations is too long
    assert all(len(row["input_ids"]) == len(row["labels"]) and any(x != -100 for x in row["labels"]) for row in streamed)

    summary = task_for(r).train(r, tmp_path / "prep", tmp_path / "train")
    assert summary["steps"] == 3 and summary["streaming"] is True and summary["train_rows"] == len(train_sources)
    assert (tmp_path / "train/adapter/adapter_config.json").is_file()


def test_streamed_split_is_seeded_and_weights_copy_rows(tiny_model: Path, corpus: Path) -> None:
    r = recipe(tiny_model)
    held, n_train = split_stream(r, corpus)
    again, _ = split_stream(r, corpus)
    assert list(held.order) and [x["source"] for x in held] == [x["source"] for x in again]
    other, _ = split_stream(r.model_copy(update={"seed": 6}), corpus)
    assert [x["source"] for x in other] != [x["source"] for x in held]
    weighted = recipe(tiny_model, {"weights": [2.0, 0.5]})
    per_row = Counter(row["source"] for row in training_rows(weighted, corpus))
    a = {s for s in per_row if s.startswith("a")}
    assert all(per_row[s] == 2 for s in a) and all(per_row[s] == 1 for s in set(per_row) - a)
    b_train = [x["source"] for x in training_rows(r, corpus) if x["source"].startswith("b")]
    assert 0 < len(set(per_row) - a) < len(b_train)  # about half of b's rows are kept
    fixed = recipe(tiny_model, {"eval_inputs": ["b.jsonl"], "inputs": ["a.jsonl"]})
    held, n_train = split_stream(fixed, corpus)
    assert {x["source"][0] for x in held} == {"b"} and n_train == 30


def test_streaming_recipe_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: s\ndata:\n  inputs: [a.jsonl]\n  streaming: true\nmodel:\n  path: m\n")
    with pytest.raises(RecipeError, match="set train.max_steps"):
        load_recipe(path)
    path.write_text("name: s\ndata:\n  inputs: [a.jsonl]\n  streaming: true\n  format: classification\nmodel:\n  path: m\ntrain:\n  max_steps: 5\n")
    with pytest.raises(RecipeError, match="data.streaming is for SFT"):
        load_recipe(path)


def test_streamed_training_resumes_from_its_last_checkpoint(tiny_model: Path, corpus: Path, tmp_path: Path) -> None:
    """A stream has no index to seek to: the Trainer's resume replays it past the batches already
    seen, from the same seeded shuffle, and goes on to max_steps."""
    first = recipe(tiny_model, max_steps=2, save_steps=1)
    task_for(first).prepare(first, corpus, tmp_path / "prep")
    assert task_for(first).train(first, tmp_path / "prep", tmp_path / "train")["steps"] == 2
    more = recipe(tiny_model, max_steps=4, save_steps=1)
    summary = task_for(more).train(more, tmp_path / "prep", tmp_path / "train")
    assert summary["resumed_from"] == "checkpoint-2" and summary["steps"] == 4
    logged = [row["step"] for row in map(json.loads, (tmp_path / "train/log.jsonl").read_text().splitlines()) if "loss" in row]
    assert logged == [1, 2, 3, 4]
