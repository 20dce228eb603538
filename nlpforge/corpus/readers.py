"""Streaming readers for the corpora users bring: JSONL, JSON, CSV, Parquet, plain text,
HTML, and folders of them. Each yields one :class:`RawDoc` per input record, bad records
included (with the reason), so the clean stage can account for every one of them."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from nlpforge.errors import DataError

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text", ".md": "text", ".html": "html", ".htm": "html"}


@dataclass
class RawDoc:
    source: str  # "file:line" (JSONL, CSV, JSON index), "file:row" (Parquet) or "file"
    record: dict[str, Any] | None  # None when the record could not be parsed
    error: str | None  # why it could not be parsed
    raw: str  # the raw text, for the rejects file


def expand(paths: list[str]) -> list[Path]:
    """Files named directly, and the supported files inside named folders (sorted)."""
    out: list[Path] = []
    for name in paths:
        p = Path(name)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                raise DataError(f"data.inputs: {name}: folder holds no file of a supported kind ({', '.join(sorted(SUFFIXES))})")
            out += found
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                raise DataError(f"data.inputs: {name}: unsupported file type {p.suffix!r}; supported: {', '.join(sorted(SUFFIXES))}")
            out.append(p)
        else:
            raise DataError(f"data.inputs: {name}: no such file or folder (paths are relative to {Path.cwd()})")
    return out


def read(paths: list[str], text_field: str = "text") -> Iterator[RawDoc]:
    for path in expand(paths):
        kind = SUFFIXES[path.suffix.lower()]
        yield from READERS[kind](path, text_field)


def _jsonl(path: Path, text_field: str) -> Iterator[RawDoc]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            source = f"{path}:{lineno}"
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield RawDoc(source, None, f"invalid_json: {exc.msg} at column {exc.colno}", raw)
                continue
            if not isinstance(record, dict):
                yield RawDoc(source, None, f"invalid_schema: expected a JSON object, got {type(record).__name__}", raw)
                continue
            yield RawDoc(source, record, None, raw)


def _json(path: Path, text_field: str) -> Iterator[RawDoc]:
    # a JSON document is read whole: it has no record boundaries to stream on
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        yield RawDoc(str(path), None, f"invalid_json: {exc.msg} at line {exc.lineno}", "")
        return
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        yield RawDoc(str(path), None, "invalid_schema: expected a list of objects or an object", "")
        return
    for i, record in enumerate(data):
        source = f"{path}[{i}]"
        if isinstance(record, dict):
            yield RawDoc(source, record, None, "")
        else:
            yield RawDoc(source, None, f"invalid_schema: item is {type(record).__name__}, not an object", json.dumps(record)[:2000])


def _csv(path: Path, text_field: str) -> Iterator[RawDoc]:
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return
        for row in reader:
            source = f"{path}:{reader.line_num}"
            if None in row:  # more cells than header columns
                yield RawDoc(source, None, f"invalid_csv: {len(row[None]) + len(reader.fieldnames)} cells for {len(reader.fieldnames)} columns", json.dumps(row, default=str)[:2000])
                continue
            yield RawDoc(source, dict(row), None, "")


def _parquet(path: Path, text_field: str) -> Iterator[RawDoc]:
    import pyarrow.parquet as pq

    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            n += 1
            yield RawDoc(f"{path}:row{n}", record, None, "")


def _text(path: Path, text_field: str) -> Iterator[RawDoc]:
    yield RawDoc(str(path), {text_field: path.read_text(encoding="utf-8", errors="replace")}, None, "")


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: script, style and head content dropped, block
    elements turned into line breaks (the stdlib's tolerant HTML parser does the parsing)."""

    SKIP = {"script", "style", "head", "noscript", "template", "svg"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "\n".join(line.strip() for line in "".join(parser.parts).splitlines() if line.strip())


def _html(path: Path, text_field: str) -> Iterator[RawDoc]:
    text = html_to_text(path.read_text(encoding="utf-8", errors="replace"))
    yield RawDoc(str(path), {text_field: text}, None, "")


READERS = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet, "text": _text, "html": _html}
