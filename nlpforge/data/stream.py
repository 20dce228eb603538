"""``data.streaming``: SFT on a corpus whose tokenised copy should not be written. Prepare then
tokenises only the eval split; training reads the cleaned corpus as a ``datasets``
``IterableDataset``, renders each row as it is needed (through a shuffle buffer), and stops at
``train.max_steps``. Nothing holds or writes the train split: memory and disk stay flat
whatever the corpus size.

A streamed corpus cannot be shuffled before it is split, so the split is decided per row: a row
is held out when a seeded hash of its source falls below ``data.splits.eval`` (or when it came
from ``data.eval_inputs``). Prepare and the train stream apply the same test, so no row is in
both. ``data.weights`` become per-row copies: ``int(w)`` of each row, plus one more for a
seeded hash below the fraction."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nlpforge.data.chat import loss_labels, render
from nlpforge.data.splits import CorpusRows, input_of
from nlpforge.errors import DataError
from nlpforge.jsonl import iter_jsonl_offsets
from nlpforge.recipe import Recipe

SHUFFLE_BUFFER = 10_000  # rows in the stream's shuffle buffer (datasets' approximate shuffle)


def _unit(seed: int, salt: str, key: str) -> float:
    """A number in [0, 1) fixed by the seed and the row: the same on every pass and machine."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _key(row: dict, line: int) -> str:
    return str(row.get("source") or f"line {line}")


def held_out(recipe: Recipe, row: dict, line: int) -> bool:
    if recipe.data.eval_inputs:
        return input_of(row.get("source", ""), recipe.data.eval_inputs) is not None
    return _unit(recipe.seed, "eval", _key(row, line)) < recipe.data.splits.eval


def copies(recipe: Recipe, row: dict, line: int) -> int:
    """How many times a training row is used (``data.weights`` of the input it came from)."""
    if not recipe.data.weights:
        return 1
    idx = input_of(row.get("source", ""), recipe.data.inputs)
    w = recipe.data.weights[0 if idx is None else idx]
    return int(w) + (_unit(recipe.seed, "weight", _key(row, line)) < w - int(w))


def split_stream(recipe: Recipe, corpus: Path) -> tuple[CorpusRows, int]:
    """One pass: the eval rows (read on demand, in file order) and how many rows train on."""
    held, n_train = array("q"), 0
    for n, pos, row in iter_jsonl_offsets(corpus):
        if held_out(recipe, row, n):
            held.append(pos)
        else:
            n_train += copies(recipe, row, n)
    if not held:
        raise DataError(f"{corpus}: data.splits.eval={recipe.data.splits.eval} held out no row; raise it or name data.eval_inputs")
    if not n_train:
        raise DataError(f"{corpus}: every row is held out for eval; nothing left to train on")
    return CorpusRows(corpus, held), n_train


def training_rows(recipe: Recipe, corpus: Path) -> Iterator[dict]:
    """The corpus rows that train, in file order, each as many times as its weight says."""
    for n, _, row in iter_jsonl_offsets(corpus):
        if not held_out(recipe, row, n):
            for _ in range(copies(recipe, row, n)):
                yield row


def text_windows(tok: Any, text: str, window: int) -> Iterator[list[int]]:
    """A document's ids with EOS at its end, cut into windows of the model's length."""
    ids = tok(text, add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
    for i in range(0, len(ids), window):
        if len(ids[i : i + window]) > 1:
            yield ids[i : i + window]


def _encoded(recipe: Recipe, tok: Any, row: dict) -> Iterator[dict[str, list[int]]]:
    if recipe.data.format == "text":
        for ids in text_windows(tok, row[recipe.data.text_field], recipe.model.max_length):
            yield {"input_ids": ids, "labels": ids}
        return
    ids, mask = render(tok, row[recipe.data.messages_field])
    if len(ids) <= recipe.model.max_length and any(mask):  # prepare's rule: overlong rows are not truncated
        yield {"input_ids": ids, "labels": loss_labels(ids, mask)}


def train_stream(recipe: Recipe, corpus: Path, tok: Any) -> Any:
    """The training rows of ``corpus`` as a shuffled ``IterableDataset`` of token rows."""
    from datasets import Features, IterableDataset, Sequence, Value

    def rows() -> Iterator[dict[str, list[int]]]:
        for row in training_rows(recipe, corpus):
            yield from _encoded(recipe, tok, row)

    features = Features({"input_ids": Sequence(Value("int32")), "labels": Sequence(Value("int32"))})
    return IterableDataset.from_generator(rows, features=features).shuffle(seed=recipe.seed, buffer_size=SHUFFLE_BUFFER)
