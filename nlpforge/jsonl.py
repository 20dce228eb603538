"""JSON Lines, the format of every artifact nlpforge writes row by row: one reader and one
writer. Reading an artifact nlpforge wrote itself; user inputs go through
``nlpforge.corpus.readers``, which accounts for every bad line instead of raising."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nlpforge.atomic import atomic_file
from nlpforge.errors import DataError, StageError


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Each non-blank line as an object; a line that is not one is a DataError naming file:line."""
    for _, row in _numbered(path):
        yield row


def _numbered(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, parse_row(line, f"{path}:{n}")


def iter_jsonl_offsets(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(line number, byte offset, row) of each non-blank line: what reading a row again later needs."""
    pos = 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, pos, parse_row(line, f"{path}:{n}")
            pos += len(line)


def parse_row(line: str | bytes, where: str) -> dict[str, Any]:
    """One line as an object; else a DataError naming ``where`` (file:line)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def read_jsonl(path: Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every row of an artifact; a missing file names the stage that writes it. ``required``
    fields must hold strings (empty allowed), else a DataError names file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: missing; run the stage that writes it first")
    rows = []
    for n, row in _numbered(path):
        for key in required:
            if not isinstance(row.get(key), str):
                have = ", ".join(sorted(row)) or "none"
                raise DataError(f"{path}:{n}: field '{key}' must be a string (fields on this line: {have})")
        rows.append(row)
    return rows


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename); returns how many."""
    n = 0
    with atomic_file(Path(path)) as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            n += 1
    return n
