"""Prepare: cleaned rows (already in the canonical shape of their format, see formats.py) to
what the task's trainer reads, with a seeded validation split and per-input weights.

- sft on chat formats: ids + template loss mask (chat.py);
- sft on text: documents + EOS, cut into ``model.max_length`` windows, loss on every token;
- classification: ids (truncated), the label map taken from the data, multi-hot for multi-label;
- dpo / kto: TRL's conversational rows (TRL renders them with the same chat template); the
  eval split is also written as chat rows (prompt + chosen / desirable completion) so the
  chat eval and export's train/serve contract check run on preference runs too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from nlpforge.console import track
from nlpforge.data.chat import chat_meta, load_tokenizer, write_chat_rows
from nlpforge.data.chat import run_prepare as prepare_chat
from nlpforge.data.formats import CHAT_FORMATS
from nlpforge.data.splits import read_corpus, split_and_weight
from nlpforge.errors import DataError
from nlpforge.recipe import Recipe
from nlpforge.runs import atomic_file, atomic_write_json


def run_prepare(recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
    task, fmt = recipe.train.task, recipe.data.format
    if task == "sft" and fmt in CHAT_FORMATS:
        return prepare_chat(recipe, corpus, out_dir)
    if task == "sft" and fmt == "text":
        return prepare_text(recipe, corpus, out_dir)
    if task == "classification":
        return prepare_classification(recipe, corpus, out_dir)
    return prepare_preference(recipe, corpus, out_dir)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def prepare_text(recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
    """Continued pretraining: no template; every token carries loss, EOS closes each document
    (so the model learns where documents end), long documents become several windows."""
    tok = load_tokenizer(recipe, require_template=False)
    if tok.eos_token_id is None:
        raise DataError(f"{recipe.model.path}: the tokenizer has no eos token to end documents with")
    field, window = recipe.data.text_field, recipe.model.max_length
    splits = split_and_weight(recipe, read_corpus(corpus))
    stats: dict[str, Any] = {"rows": {}, "tokens": {}}
    for split, items in splits.items():
        out = []
        for row in track(items, len(items), f"prepare {split}"):
            ids = tok(row[field], add_special_tokens=True)["input_ids"] + [tok.eos_token_id]
            for i in range(0, len(ids), window):
                chunk = ids[i : i + window]
                if len(chunk) > 1:
                    out.append({"source": row.get("source"), "input_ids": chunk, "labels": chunk})
        _write_jsonl(out_dir / f"{split}.jsonl", out)
        stats["rows"][split], stats["tokens"][split] = len(out), sum(len(r["input_ids"]) for r in out)
    meta = {"task": "sft", "format": "text", **stats, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "eos_token": tok.eos_token}
    atomic_write_json(out_dir / "meta.json", meta)
    return {"train_rows": stats["rows"]["train"], "eval_rows": stats["rows"]["eval"], "train_tokens": stats["tokens"]["train"]}


def prepare_classification(recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
    tok = load_tokenizer(recipe, require_template=False)
    field = recipe.data.text_field
    rows = read_corpus(corpus)
    multi = any(isinstance(r["label"], list) for r in rows)
    if multi:
        for r in rows:
            r["label"] = r["label"] if isinstance(r["label"], list) else [r["label"]]
    labels = sorted({lab for r in rows for lab in (r["label"] if multi else [r["label"]])})
    if len(labels) < 2:
        raise DataError(f"{corpus}: classification needs at least two labels, found {labels}")
    index = {lab: i for i, lab in enumerate(labels)}
    splits = split_and_weight(recipe, rows, stratify_on=None if multi else "label")
    truncated = 0
    for split, items in splits.items():
        out = []
        for r in track(items, len(items), f"prepare {split}"):
            ids = tok(r[field], truncation=False)["input_ids"]
            if len(ids) > recipe.model.max_length:
                truncated += 1  # an encoder reads the head of a ticket; truncation is the norm, counted in meta
                ids = tok(r[field], truncation=True, max_length=recipe.model.max_length)["input_ids"]
            target = [1.0 if lab in r["label"] else 0.0 for lab in labels] if multi else index[r["label"]]
            out.append({**r, "input_ids": ids, "label_ids": target})
        _write_jsonl(out_dir / f"{split}.jsonl", out)
    counts = Counter(lab for r in splits["train"] for lab in (r["label"] if multi else [r["label"]]))
    missing = [lab for lab in labels if not counts.get(lab)]
    if missing:
        raise DataError(f"labels {missing} occur only in the eval split; add training rows for them or drop them")
    meta = {
        "task": "classification",
        "format": "classification",
        "labels": labels,
        "multi_label": multi,
        "label_counts": {lab: counts[lab] for lab in labels},
        "rows": {s: len(v) for s, v in splits.items()},
        "truncated": truncated,
        "pad_token_id": tok.pad_token_id,
    }
    atomic_write_json(out_dir / "meta.json", meta)
    return {"train_rows": meta["rows"]["train"], "eval_rows": meta["rows"]["eval"], "labels": len(labels), "multi_label": multi}


def prepare_preference(recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
    task = recipe.train.task
    tok = load_tokenizer(recipe)
    splits = split_and_weight(recipe, read_corpus(corpus))
    keys = ("prompt", "chosen", "rejected") if task == "dpo" else ("prompt", "completion", "label")
    for split, items in splits.items():
        _write_jsonl(out_dir / f"{split}_{task}.jsonl", [{k: r[k] for k in keys} for r in items])
    if task == "kto":
        labels = Counter(r["label"] for r in splits["train"])
        if not labels[True] or not labels[False]:
            raise DataError(f"kto needs desirable and undesirable examples in the training split; got {dict(labels)}")
    # chat rows of the preferred answers: the chat eval and export's contract check read these
    eot_ids: set[int] = set()
    stats = {}
    with atomic_file(out_dir / "rejects.jsonl") as rej_f:
        for split, items in splits.items():
            good = [{"source": r.get("source"), "messages": r["prompt"] + (r["chosen"] if task == "dpo" else r["completion"])} for r in items if task == "dpo" or r["label"]]
            with atomic_file(out_dir / f"{split}.jsonl") as f:
                stats[split] = write_chat_rows(tok, good, "messages", recipe.model.max_length, f, rej_f, eot_ids, f"prepare {split}")
    if not stats["eval"]["rows"]:
        raise DataError("the eval split holds no preferred/desirable answer to evaluate and check export with; raise data.splits.eval")
    meta = {"task": task, "format": recipe.data.format, "rows": {s: len(v) for s, v in splits.items()}, **chat_meta(tok, eot_ids)}
    atomic_write_json(out_dir / "meta.json", meta)
    return {"train_rows": meta["rows"]["train"], "eval_rows": meta["rows"]["eval"], "end_of_turn": meta["end_of_turn_token"]}
