"""Validation split and per-input weights, shared by every format's prepare.

The cleaned corpus is not loaded: :class:`CorpusRows` indexes its lines by byte offset and
reads a row when it is used, and the split and the weights work on row numbers. Prepare's
memory then grows with the row count (an offset and an index per row), not with the text,
and the result equals splitting the rows in a list: the same seeded shuffle, sample and
stratified split, applied to positions instead of rows."""

from __future__ import annotations

import json
import random
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from nlpforge.errors import DataError
from nlpforge.jsonl import iter_jsonl_offsets, parse_row
from nlpforge.recipe import Recipe


class CorpusRows(Sequence[dict]):
    """The rows of a JSONL file (the cleaned corpus), in a chosen order, read on demand.
    Written by hand: ``datasets.load_dataset('json')`` would copy the corpus into an Arrow
    cache with one schema, which conversations with uneven keys do not have."""

    def __init__(self, path: Path, offsets: array, order: Sequence[int] | None = None):
        self.path, self.offsets = Path(path), offsets
        self.order: Sequence[int] = range(len(offsets)) if order is None else order

    @classmethod
    def index(cls, path: Path) -> CorpusRows:
        """One pass over the file: where each row starts (every row parsed once, so a bad line fails here)."""
        return cls(path, array("q", (pos for _, pos, _ in iter_jsonl_offsets(path))))

    def __len__(self) -> int:
        return len(self.order)

    @overload
    def __getitem__(self, i: int) -> dict: ...
    @overload
    def __getitem__(self, i: slice) -> CorpusRows: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self.take(self.order[i])
        with open(self.path, "rb") as f:
            return self._read(f, self.order[i])

    def take(self, positions: Sequence[int]) -> CorpusRows:
        """These rows (positions in the file), in this order."""
        return CorpusRows(self.path, self.offsets, positions)

    def __iter__(self) -> Iterator[dict]:
        with open(self.path, "rb") as f:
            for pos in self.order:
                yield self._read(f, pos)

    def _read(self, f: Any, pos: int) -> dict:
        f.seek(self.offsets[pos])
        return parse_row(f.readline(), f"{self.path}: row {pos + 1}")


def read_corpus(corpus: Path) -> CorpusRows:
    if not Path(corpus).is_file():
        raise DataError(f"{corpus}: missing; run the clean stage first")
    rows = CorpusRows.index(corpus)
    if not rows:
        raise DataError(f"{corpus}: no rows to prepare")
    return rows


def split_rows(recipe: Recipe, rows: CorpusRows, stratify_on: str | None = None) -> dict[str, CorpusRows]:
    """The rows of ``data.eval_inputs`` as the eval split when the recipe names them; else a seeded
    hold-out of ``data.splits.eval``, stratified by ``stratify_on`` when every class has at least
    two rows (sklearn's train_test_split), so small classes reach the eval set."""
    frac = recipe.data.splits.eval
    if recipe.data.eval_inputs:
        fixed: dict[str, list[int]] = {"eval": [], "train": []}
        for pos, r in zip(rows.order, rows):
            fixed["eval" if input_of(r.get("source", ""), recipe.data.eval_inputs) is not None else "train"].append(pos)
        for name, part in fixed.items():
            if not part:
                what = "data.eval_inputs" if name == "eval" else "data.inputs"
                raise DataError(f"{what}: no row of {getattr(recipe.data, 'eval_inputs' if name == 'eval' else 'inputs')} survived cleaning; see clean/rejects.jsonl")
        return {name: rows.take(part) for name, part in fixed.items()}
    n_eval = max(1, round(len(rows) * frac))
    positions = list(rows.order)
    if stratify_on is not None:
        from collections import Counter

        from sklearn.model_selection import train_test_split

        keys = [json.dumps(r[stratify_on]) for r in rows]
        counts = Counter(keys)
        if min(counts.values()) >= 2 and n_eval >= len(counts) and len(rows) - n_eval >= len(counts):
            train, held = train_test_split(positions, test_size=n_eval, random_state=recipe.seed, stratify=keys)
            return {"eval": rows.take(held), "train": rows.take(train)}
    random.Random(recipe.seed).shuffle(positions)  # the shuffle a list of the rows would get
    splits = {"eval": rows.take(positions[:n_eval]), "train": rows.take(positions[n_eval:])}
    if not splits["train"]:
        raise DataError(f"data.splits.eval={frac} leaves no training rows out of {len(rows)}")
    return splits


def input_of(source: str, inputs: list[str]) -> int | None:
    """Index of the data.inputs entry a cleaned row came from (its source is 'file:line')."""
    path = source.rsplit(":", 1)[0] if source else ""
    for i, name in enumerate(inputs):
        base = name.split("?")[0] if "://" in name else str(Path(name))  # a URI's sources start with it as written
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return i
    return None


def apply_weights(recipe: Recipe, rows: CorpusRows) -> CorpusRows:
    """Mix several datasets: each input's rows are used ``weight`` times (whole copies plus a
    seeded sample for the fraction), then shuffled together."""
    weights = recipe.data.weights
    if not weights:
        return rows
    rng = random.Random(recipe.seed + 1)
    by_input: dict[int, list[int]] = {}
    for pos, r in zip(rows.order, rows):
        idx = input_of(r.get("source", ""), recipe.data.inputs)
        by_input.setdefault(0 if idx is None else idx, []).append(pos)
    out: list[int] = []
    for idx, group in sorted(by_input.items()):
        w = weights[idx]
        whole, frac = int(w), w - int(w)
        out += group * whole + rng.sample(group, round(len(group) * frac))
    rng.shuffle(out)
    if not out:
        raise DataError(f"data.weights={weights} leaves no training rows")
    return rows.take(out)


def split_and_weight(recipe: Recipe, rows: CorpusRows, stratify_on: str | None = None) -> dict[str, CorpusRows]:
    splits = split_rows(recipe, rows, stratify_on)
    splits["train"] = apply_weights(recipe, splits["train"])
    return splits
