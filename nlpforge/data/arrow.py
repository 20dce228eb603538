"""Prepared token rows as a memory-mapped Arrow file beside the JSONL that prepare writes:
training reads ``input_ids`` and ``labels`` from it without holding the split in RAM (the
JSONL keeps the rendered conversations or texts for people and for eval). Written in record
batches with pyarrow's IPC stream format, the one ``datasets.Dataset.from_file`` memory-maps.
Causal LMs: ``labels`` are token ids (-100 where no loss); classifiers: the class index, or
per-label 0/1 floats for multi-label (prepare's ``label_ids``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlpforge.atomic import atomic_file
from nlpforge.jsonl import iter_jsonl, read_jsonl

COLUMNS = ("input_ids", "labels")
BATCH_ROWS = 10_000


def arrow_path(prepared: Path, split: str) -> Path:
    return prepared / f"{split}.arrow"


def write_token_rows(jsonl: Path, out: Path, labels: str = "tokens") -> int:
    """``input_ids`` and the labels of every row of ``jsonl`` into ``out`` (atomically), streamed.
    ``labels``: ``tokens`` (the rows' ``labels``), ``class`` or ``multi_label`` (their ``label_ids``)."""
    import pyarrow as pa

    types = {"tokens": pa.list_(pa.int32()), "class": pa.int64(), "multi_label": pa.list_(pa.float32())}
    if labels not in types:
        raise ValueError(f"labels={labels!r}: valid values are {', '.join(types)}")
    source = {"input_ids": "input_ids", "labels": "labels" if labels == "tokens" else "label_ids"}
    schema = pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", types[labels])])
    n = 0
    with atomic_file(out, "wb") as f, pa.ipc.new_stream(f, schema) as writer:
        batch: dict[str, list] = {c: [] for c in COLUMNS}

        def flush() -> None:
            writer.write_batch(pa.record_batch([pa.array(batch[c], type=schema.field(c).type) for c in COLUMNS], schema=schema))
            for c in COLUMNS:
                batch[c].clear()

        for row in iter_jsonl(jsonl):
            for c in COLUMNS:
                batch[c].append(row[source[c]])
            n += 1
            if len(batch["input_ids"]) == BATCH_ROWS:
                flush()
        if batch["input_ids"] or n == 0:
            flush()
    return n


def token_rows(prepared: Path, split: str) -> Any:
    """A split's token rows: the memory-mapped Arrow file when prepare wrote one, else (a run
    prepared by an older nlpforge) the JSONL's rows in a list."""
    path = arrow_path(prepared, split)
    if path.is_file():
        from datasets import Dataset

        return Dataset.from_file(str(path))
    return [{"input_ids": r["input_ids"], "labels": r["labels"] if "labels" in r else r["label_ids"]} for r in read_jsonl(prepared / f"{split}.jsonl")]
