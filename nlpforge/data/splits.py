"""Validation split and per-input weights, shared by every format's prepare."""

from __future__ import annotations

import json
import random
from pathlib import Path

from nlpforge.errors import DataError
from nlpforge.jsonl import read_jsonl
from nlpforge.recipe import Recipe


def read_corpus(corpus: Path) -> list[dict]:
    rows = read_jsonl(corpus)
    if not rows:
        raise DataError(f"{corpus}: no rows to prepare")
    return rows


def split_rows(recipe: Recipe, rows: list[dict], stratify_on: str | None = None) -> dict[str, list[dict]]:
    """The rows of ``data.eval_inputs`` as the eval split when the recipe names them; else a seeded
    hold-out of ``data.splits.eval``, stratified by ``stratify_on`` when every class has at least
    two rows (sklearn's train_test_split), so small classes reach the eval set."""
    frac = recipe.data.splits.eval
    rows = list(rows)
    if recipe.data.eval_inputs:
        fixed = {"eval": [], "train": []}
        for r in rows:
            fixed["eval" if input_of(r.get("source", ""), recipe.data.eval_inputs) is not None else "train"].append(r)
        for name, part in fixed.items():
            if not part:
                what = "data.eval_inputs" if name == "eval" else "data.inputs"
                raise DataError(f"{what}: no row of {getattr(recipe.data, 'eval_inputs' if name == 'eval' else 'inputs')} survived cleaning; see clean/rejects.jsonl")
        return fixed
    n_eval = max(1, round(len(rows) * frac))
    if stratify_on is not None:
        from collections import Counter

        from sklearn.model_selection import train_test_split

        keys = [json.dumps(r[stratify_on]) for r in rows]
        counts = Counter(keys)
        if min(counts.values()) >= 2 and n_eval >= len(counts) and len(rows) - n_eval >= len(counts):
            train, held = train_test_split(rows, test_size=n_eval, random_state=recipe.seed, stratify=keys)
            return {"eval": held, "train": train}
    random.Random(recipe.seed).shuffle(rows)
    splits = {"eval": rows[:n_eval], "train": rows[n_eval:]}
    if not splits["train"]:
        raise DataError(f"data.splits.eval={frac} leaves no training rows out of {len(rows)}")
    return splits


def input_of(source: str, inputs: list[str]) -> int | None:
    """Index of the data.inputs entry a cleaned row came from (its source is 'file:line')."""
    path = source.rsplit(":", 1)[0] if source else ""
    for i, name in enumerate(inputs):
        base = str(Path(name))
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return i
    return None


def apply_weights(recipe: Recipe, rows: list[dict]) -> list[dict]:
    """Mix several datasets: each input's rows are used ``weight`` times (whole copies plus a
    seeded sample for the fraction), then shuffled together."""
    weights = recipe.data.weights
    if not weights:
        return rows
    rng = random.Random(recipe.seed + 1)
    by_input: dict[int, list[dict]] = {}
    for r in rows:
        idx = input_of(r.get("source", ""), recipe.data.inputs)
        by_input.setdefault(0 if idx is None else idx, []).append(r)
    out: list[dict] = []
    for idx, group in sorted(by_input.items()):
        w = weights[idx]
        whole, frac = int(w), w - int(w)
        out += group * whole + rng.sample(group, round(len(group) * frac))
    rng.shuffle(out)
    if not out:
        raise DataError(f"data.weights={weights} leaves no training rows")
    return out


def split_and_weight(recipe: Recipe, rows: list[dict], stratify_on: str | None = None) -> dict[str, list[dict]]:
    splits = split_rows(recipe, rows, stratify_on)
    splits["train"] = apply_weights(recipe, splits["train"])
    return splits
