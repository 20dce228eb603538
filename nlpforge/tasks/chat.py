"""Supervised fine-tuning of a causal LM: on conversations (formats messages, alpaca, sharegpt,
which clean already turned into messages) with loss on the assistant turns and their
end-of-turn token, or on documents (format text: continued pretraining, loss on every token)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from nlpforge.artifacts import PrepareMeta
from nlpforge.atomic import atomic_file
from nlpforge.console import track
from nlpforge.data.arrow import arrow_path, write_token_rows
from nlpforge.data.chat import chat_meta, write_chat_rows
from nlpforge.data.splits import CorpusRows, read_corpus, split_and_weight
from nlpforge.data.stream import split_stream, text_windows
from nlpforge.errors import DataError
from nlpforge.jsonl import write_jsonl
from nlpforge.models import load_tokenizer
from nlpforge.recipe import Recipe
from nlpforge.tasks.base import TrainingTask


def write_arrow(out_dir: Path, splits: Iterable[str]) -> None:
    """The token rows of each split as memory-mapped Arrow, which training reads."""
    for split in splits:
        write_token_rows(out_dir / f"{split}.jsonl", arrow_path(out_dir, split))


def splits_of(recipe: Recipe, corpus: Path, out_dir: Path) -> tuple[dict[str, CorpusRows], dict[str, Any]]:
    """The splits prepare tokenises, and what meta.json records about streaming: with
    ``data.streaming`` only the eval split (training reads the corpus itself)."""
    if not recipe.data.streaming:
        return split_and_weight(recipe, read_corpus(corpus)), {}
    held, n_train = split_stream(recipe, corpus)
    return {"eval": held}, {"streaming_corpus": os.path.relpath(corpus, out_dir), "streaming_rows": n_train}


class ChatSFT(TrainingTask):
    name = "sft"
    formats = ("messages", "alpaca", "sharegpt")

    def prepare(self, recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
        tok = load_tokenizer(recipe)
        splits, streamed = splits_of(recipe, corpus, out_dir)
        eot_ids: set[int] = set()
        stats: dict[str, dict[str, int]] = {"tokens": {}, "loss_tokens": {}, "rows": {}}
        rejects = 0
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(out_dir / "rejects.jsonl") as rej_f:
            for split, items in splits.items():
                with atomic_file(out_dir / f"{split}.jsonl") as f:
                    st = write_chat_rows(tok, items, recipe.data.messages_field, recipe.model.max_length, f, rej_f, eot_ids, f"prepare {split}", recipe.data.num_proc)
                rejects += st["rejected"]
                stats["rows"][split], stats["tokens"][split], stats["loss_tokens"][split] = st["rows"], st["tokens"], st["loss_tokens"]
        write_arrow(out_dir, splits)
        meta = PrepareMeta(task="sft", format=recipe.data.format, **stats, rejected_too_long=rejects, **chat_meta(tok, eot_ids), **streamed)
        meta.write(out_dir)
        return {"train_rows": meta.train_rows, "eval_rows": stats["rows"]["eval"], "end_of_turn": meta.end_of_turn_token}

    def prepared_files(self, recipe: Recipe) -> tuple[str, ...]:
        return ("prepare/eval.jsonl", "prepare/meta.json") if recipe.data.streaming else self.prepare_outputs

    def train(self, recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
        from nlpforge.train.sft import run_train

        return run_train(recipe, prepared, out_dir)


class TextSFT(ChatSFT):
    """Continued pretraining: no template; every token carries loss, EOS closes each document
    (so the model learns where documents end), long documents become several windows."""

    formats = ("text",)
    eval_outputs: ClassVar[tuple[str, ...]] = ("eval/results.json",)

    def prepare(self, recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
        tok = load_tokenizer(recipe, require_template=False)
        if tok.eos_token_id is None:
            raise DataError(f"{recipe.model.path}: the tokenizer has no eos token to end documents with")
        field, window = recipe.data.text_field, recipe.model.max_length
        stats: dict[str, dict[str, int]] = {"rows": {}, "tokens": {}}
        splits, streamed = splits_of(recipe, corpus, out_dir)
        for split, items in splits.items():
            tokens = 0

            def windows(items: CorpusRows = items, split: str = split) -> Any:  # streamed to the file, not held as token lists
                nonlocal tokens
                for row in track(items, len(items), f"prepare {split}"):
                    for ids in text_windows(tok, row[field], window):
                        tokens += len(ids)
                        yield {"source": row.get("source"), "input_ids": ids, "labels": ids}

            stats["rows"][split] = write_jsonl(out_dir / f"{split}.jsonl", windows())
            stats["tokens"][split] = tokens
        write_arrow(out_dir, splits)
        meta = PrepareMeta(task="sft", format="text", **stats, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, eos_token=tok.eos_token, **streamed)
        meta.write(out_dir)
        return {"train_rows": meta.train_rows, "eval_rows": stats["rows"]["eval"], "train_tokens": stats["tokens"].get("train")}

    def evaluate(self, recipe: Recipe, prepared: Path, adapter: Path, out_dir: Path) -> dict[str, Any]:
        from nlpforge.evals.chat import run_text_eval

        return run_text_eval(recipe, prepared, adapter, out_dir)
