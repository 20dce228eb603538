"""Reading JSONL records for the eval commands, with errors that name file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

from nlpforge.errors import DataError


def read_records(path: Path, required: list[str] | None = None) -> list[dict]:
    """Every line a JSON object; ``required`` fields must hold strings (empty allowed)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise DataError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            for key in required or []:
                if not isinstance(rec.get(key), str):
                    have = ", ".join(sorted(rec)) or "none"
                    raise DataError(f"{path}:{n}: field '{key}' must be a string (fields on this line: {have})")
            records.append(rec)
    if not records:
        raise DataError(f"{path}: no records")
    return records
