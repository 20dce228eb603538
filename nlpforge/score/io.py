"""Streaming input (JSONL, JSON, CSV, Parquet, via nlpforge.corpus.readers, whose one
notion of a record both counts and reads the rows) and output writers.

Output parts are always JSONL (appendable, one row per line); the final file is written in
the format its suffix names, streamed part by part."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from nlpforge.atomic import atomic_file
from nlpforge.corpus.readers import RawDoc, count_file, read_file
from nlpforge.errors import DataError
from nlpforge.jsonl import iter_jsonl

INPUT_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
OUTPUT_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def input_kind(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"--input {path}: no such file")
    kind = INPUT_KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"--input {path}: unsupported file type {path.suffix!r}; supported: {', '.join(sorted(INPUT_KINDS))}")
    return kind


def output_kind(path: Path) -> str:
    kind = OUTPUT_KINDS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"--output {path}: unsupported file type {path.suffix!r}; supported: {', '.join(sorted(OUTPUT_KINDS))}")
    return kind


def read_input(path: Path) -> Iterator[RawDoc]:
    """Every input record in order, unparseable ones included (with their reason); an
    unreadable file is a DataError naming it."""
    input_kind(path)
    return read_file(path, "text")


def count_rows(path: Path) -> int | None:
    """Rows :func:`read_input` will yield, for the progress bar's total and ETA (None for a
    JSON file, which only a full parse could count)."""
    input_kind(path)
    return count_file(path)


def _cell(v: Any) -> Any:
    return json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (list, dict)) else v


def write_output(path: Path, parts: list[Path]) -> None:
    """Concatenate JSONL parts into ``path`` (atomic: a kill here leaves the parts intact)."""
    kind = output_kind(path)
    if kind == "jsonl":
        with atomic_file(path, "wb") as out:
            for part in parts:
                _copy(part, out)
    elif kind == "csv":
        import csv

        columns: dict[str, None] = {}  # first pass: the union of columns, in first-seen order
        for part in parts:
            for row in iter_jsonl(part):
                columns.update(dict.fromkeys(row))
        with atomic_file(path) as out:
            w = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            for part in parts:
                for row in iter_jsonl(part):
                    w.writerow({k: _cell(v) for k, v in row.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # first pass, one part in memory at a time: one schema for every part
        schemas = [pa.Table.from_pylist(rows).schema for rows in (list(iter_jsonl(p)) for p in parts) if rows]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        with atomic_file(path, "wb") as out:
            writer = pq.ParquetWriter(out, schema)
            for part in parts:
                rows = list(iter_jsonl(part))
                if rows:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            writer.close()


def _copy(src: Path, out: BinaryIO) -> None:
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            out.write(block)
