"""Prepared token rows as a memory-mapped Arrow file beside the JSONL that prepare writes:
training reads ``input_ids`` and ``labels`` from it without holding the split in RAM (the
JSONL keeps the rendered conversations for people and for eval). Written in record batches
with pyarrow's IPC stream format, the one ``datasets.Dataset.from_file`` memory-maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlpforge.atomic import atomic_file
from nlpforge.jsonl import iter_jsonl, read_jsonl

COLUMNS = ("input_ids", "labels")
BATCH_ROWS = 10_000


def arrow_path(prepared: Path, split: str) -> Path:
    return prepared / f"{split}.arrow"


def write_token_rows(jsonl: Path, out: Path) -> int:
    """``input_ids`` and ``labels`` of every row of ``jsonl`` into ``out`` (atomically), streamed."""
    import pyarrow as pa

    schema = pa.schema([(c, pa.list_(pa.int32())) for c in COLUMNS])
    n = 0
    with atomic_file(out, "wb") as f, pa.ipc.new_stream(f, schema) as writer:
        batch: dict[str, list] = {c: [] for c in COLUMNS}

        def flush() -> None:
            writer.write_batch(pa.record_batch([pa.array(batch[c], type=pa.list_(pa.int32())) for c in COLUMNS], schema=schema))
            for c in COLUMNS:
                batch[c].clear()

        for row in iter_jsonl(jsonl):
            for c in COLUMNS:
                batch[c].append(row[c])
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
    return [{c: r[c] for c in COLUMNS} for r in read_jsonl(prepared / f"{split}.jsonl")]
