"""Preference tuning through TRL, one config and trainer per method: DPO on (prompt, chosen,
rejected) pairs and KTO on single completions labelled desirable or not (e.g. the feedback the
server exports). Rows are in TRL's conversational shape, so TRL renders them with the same chat
template as SFT and serving. With a PEFT adapter the reference model is the base with the
adapter disabled (no second copy in memory). The eval split is also written as chat rows
(prompt + preferred answer), so the chat eval and export's contract check run on these runs.

A new method (ORPO, SimPO, ...) is one entry of :data:`METHODS` plus its name in the recipe."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlpforge.artifacts import PrepareMeta
from nlpforge.atomic import atomic_file
from nlpforge.data.chat import chat_meta, write_chat_rows
from nlpforge.data.splits import read_corpus, split_and_weight
from nlpforge.errors import DataError, StageError
from nlpforge.jsonl import write_jsonl
from nlpforge.models import load_tokenizer, set_threads
from nlpforge.recipe import Recipe
from nlpforge.tasks.base import TrainingTask


@dataclass(frozen=True)
class Method:
    fields: tuple[str, ...]  # the columns of a prepared row
    config: str  # TRL config and trainer class names
    trainer: str

    def preferred(self, row: dict) -> list[dict] | None:
        """The conversation with the answer to evaluate on, or None for an undesirable example."""
        if "chosen" in row:
            return row["prompt"] + row["chosen"]
        return row["prompt"] + row["completion"] if row["label"] else None

    def extra_args(self, rows: Any) -> dict[str, Any]:
        if "label" not in self.fields:
            return {}
        n_bad = sum(1 for label in rows["label"] if not label)
        # KTO paper / TRL: desirable_weight * n_good / (undesirable_weight * n_bad) should lie in [1, 4/3]
        return {"desirable_weight": 1.0, "undesirable_weight": (len(rows) - n_bad) / max(n_bad, 1) / 1.15}


METHODS = {
    "dpo": Method(("prompt", "chosen", "rejected"), "DPOConfig", "DPOTrainer"),
    "kto": Method(("prompt", "completion", "label"), "KTOConfig", "KTOTrainer"),
}


class Preference(TrainingTask):
    def __init__(self, name: str):
        self.name = name  # type: ignore[misc]
        self.method = METHODS[name]
        self.formats = ("preference",) if name == "dpo" else ("kto",)  # type: ignore[misc]

    def prepare(self, recipe: Recipe, corpus: Path, out_dir: Path) -> dict[str, Any]:
        tok = load_tokenizer(recipe)
        splits = split_and_weight(recipe, read_corpus(corpus))
        for split, items in splits.items():
            write_jsonl(out_dir / f"{split}_{self.name}.jsonl", ({k: r[k] for k in self.method.fields} for r in items))
        if "label" in self.method.fields:
            labels = Counter(r["label"] for r in splits["train"])
            if not labels[True] or not labels[False]:
                raise DataError(f"{self.name} needs desirable and undesirable examples in the training split; got {dict(labels)}")
        eot_ids: set[int] = set()
        stats = {}
        with atomic_file(out_dir / "rejects.jsonl") as rej_f:
            for split, items in splits.items():
                good = [{"source": r.get("source"), "messages": m} for r in items if (m := self.method.preferred(r)) is not None]
                with atomic_file(out_dir / f"{split}.jsonl") as f:
                    stats[split] = write_chat_rows(tok, good, "messages", recipe.model.max_length, f, rej_f, eot_ids, f"prepare {split}")
        if not stats["eval"]["rows"]:
            raise DataError("the eval split holds no preferred/desirable answer to evaluate and check export with; raise data.splits.eval")
        meta = PrepareMeta(task=self.name, format=recipe.data.format, rows={s: len(v) for s, v in splits.items()}, **chat_meta(tok, eot_ids))  # type: ignore[arg-type]
        meta.write(out_dir)
        return {"train_rows": meta.rows["train"], "eval_rows": meta.rows["eval"], "end_of_turn": meta.end_of_turn_token}

    def train(self, recipe: Recipe, prepared: Path, out_dir: Path) -> dict[str, Any]:
        import trl

        from nlpforge.train.common import args_kwargs, callbacks, finish
        from nlpforge.train.sft import build_model

        cfg = recipe.train
        set_threads(cfg.threads)
        tok = load_tokenizer(recipe)
        with tempfile.TemporaryDirectory(prefix="nlpforge-preference-") as cache:  # the Arrow copies TRL tokenises from: memory-mapped, not a list in RAM
            train_rows = _arrow(prepared / f"train_{self.name}.jsonl", cache)
            if not len(train_rows):
                raise DataError(f"{prepared / f'train_{self.name}.jsonl'}: no training rows")
            eval_rows = _arrow(prepared / f"eval_{self.name}.jsonl", cache) if cfg.eval_steps else None
            has_eval = bool(eval_rows is not None and len(eval_rows))
            model = build_model(recipe)
            trainable, total = model.get_nb_trainable_parameters()
            kw = args_kwargs(recipe, out_dir, has_eval)
            kw.pop("remove_unused_columns")  # TRL tokenises the text columns itself
            kw.update(beta=cfg.beta, max_length=recipe.model.max_length, dataset_num_proc=None, **self.method.extra_args(train_rows))
            trainer = getattr(trl, self.method.trainer)(
                model=model, args=getattr(trl, self.method.config)(**kw), train_dataset=train_rows,
                eval_dataset=eval_rows if has_eval else None, processing_class=tok, callbacks=callbacks(recipe, out_dir, has_eval),
            )
            return finish(trainer, model, tok, recipe, out_dir, len(train_rows), None, {"trainable_params": trainable, "total_params": total, "task": self.name, "beta": cfg.beta})


def _arrow(path: Path, cache: str) -> Any:
    """A prepared JSONL split as a memory-mapped ``datasets.Dataset`` (converted into ``cache``)."""
    from datasets import Dataset, disable_progress_bars

    if not path.is_file():
        raise StageError(f"{path}: missing; run the prepare stage first")
    if not path.stat().st_size:
        return []
    disable_progress_bars()
    return Dataset.from_json(str(path), cache_dir=cache)
