"""Streaming readers for the corpora users bring: JSONL, JSON, CSV, Parquet, plain text,
HTML, and folders of them. Each yields one :class:`RawDoc` per input record, bad records
included (with the reason), so the clean stage can account for every one of them.

What a record is, defined once and shared by :func:`count` (progress totals, score's ETA)
and :func:`read`, so the two agree by construction:

- JSONL: one record per line, and a line ends at ``\\n`` only (the JSON Lines rule). ``\\r\\n``
  works because ``\\r`` is JSON whitespace. A lone ``\\r`` is *not* a line break: between JSON
  values it is whitespace, inside a string it is invalid JSON, so a file with old-Mac ``\\r``
  line breaks is one ``invalid_json`` record whose reason says so, rather than records
  guessed at. Lines of only whitespace are not records.
- CSV: one record per row after the header (the csv module's rules: quoted cells may span
  lines, blank rows are skipped).
- JSON: one record per item of the top-level list (or of the one list in a top-level object).
- Parquet: one record per row. Plain text and HTML: one record per file.

Text is UTF-8; a byte-order mark is dropped (Excel and Notepad write one) and undecodable
bytes become U+FFFD, so a bad byte costs at most its record, never the file. JSON escapes of
lone surrogates (``"\\ud800"``), which cannot be written back as UTF-8, become U+FFFD too.

A file that cannot be read at all (a truncated Parquet file, no permission): when it is the
only input, a DataError naming it, from :func:`count` or the first read, before the stage
writes anything; when it is one input of several, one reject with reason ``unreadable_file``
(and :func:`count` counts it as that one record).
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from nlpforge.errors import DataError

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text", ".md": "text", ".html": "html", ".htm": "html"}
ENCODING = "utf-8-sig"  # UTF-8 that drops a leading byte-order mark
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
            hint = "; a URI such as s3://bucket/prefix is read by clean.engine: ray" if "://" in name else ""
            raise DataError(f"data.inputs: {name}: no such file or folder (paths are relative to {Path.cwd()}){hint}")
    return out


def read(paths: list[str], text_field: str = "text") -> Iterator[RawDoc]:
    """Every record of every input file, in order; see the module docstring for unreadable files."""
    files = expand(paths)
    for path in files:
        yield from read_file(path, text_field, alone=len(files) == 1)


def count(paths: list[str]) -> int | None:
    """How many records :func:`read` yields (None when a JSON file makes that a full parse)."""
    files = expand(paths)
    total = 0
    for path in files:
        n = count_file(path, alone=len(files) == 1)
        if n is None:
            return None
        total += n
    return total


def read_file(path: Path, text_field: str = "text", alone: bool = True) -> Iterator[RawDoc]:
    kind = SUFFIXES[path.suffix.lower()]
    try:
        yield from READERS[kind](path, text_field)
    except _unreadable() as exc:
        yield _unreadable_reject(path, kind, exc, alone)


def count_file(path: Path, alone: bool = True) -> int | None:
    kind = SUFFIXES[path.suffix.lower()]
    try:
        return COUNTERS[kind](path)
    except _unreadable() as exc:
        _unreadable_reject(path, kind, exc, alone)
        return 1


def _unreadable() -> tuple[type[BaseException], ...]:
    """What a file that cannot be read raises: I/O errors, Arrow's errors (a truncated or
    non-Parquet file), and ValueError (UnicodeError, pyarrow.ArrowInvalid)."""
    try:
        from pyarrow.lib import ArrowException
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        return (OSError, ValueError, csv.Error)
    return (OSError, ValueError, csv.Error, ArrowException)


def _unreadable_reject(path: Path, kind: str, exc: BaseException, alone: bool) -> RawDoc:
    reason = f"cannot read this {kind} file: {type(exc).__name__}: {exc}"
    if alone:
        raise DataError(f"{path}: {reason}") from None
    return RawDoc(str(path), None, f"unreadable_file: {reason}", "")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The JSONL records of a file: (line number, line) for every line that is not blank."""
    with open(path, encoding=ENCODING, errors="replace", newline="\n") as f:  # newline="\n": split at \n only
        for lineno, line in enumerate(f, 1):
            line = line.lstrip("\ufeff")  # a BOM mid-file: files concatenated with cat
            if line.strip():
                yield lineno, line


def _no_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    return value


def _parse(text: str) -> Any:
    """``json.loads``; JSONDecodeError or RecursionError (nesting deeper than Python's stack) on bad input."""
    value = json.loads(text)
    return _no_surrogates(value) if _SURROGATE_ESCAPE.search(text) else value


def _jsonl(path: Path, text_field: str) -> Iterator[RawDoc]:
    for lineno, raw in _lines(path):
        source = f"{path}:{lineno}"
        try:
            record = _parse(raw)
        except json.JSONDecodeError as exc:
            hint = " (the line holds a lone \\r: JSONL lines end at \\n only, and a raw \\r inside a string is invalid JSON)" if "\r" in raw.rstrip("\r\n") else ""
            yield RawDoc(source, None, f"invalid_json: {exc.msg} at column {exc.colno}{hint}", raw)
            continue
        except RecursionError:
            yield RawDoc(source, None, "invalid_json: nested too deeply", raw)
            continue
        if not isinstance(record, dict):
            yield RawDoc(source, None, f"invalid_schema: expected a JSON object, got {type(record).__name__}", raw)
            continue
        yield RawDoc(source, record, None, raw)


def _json(path: Path, text_field: str) -> Iterator[RawDoc]:
    # a JSON document is read whole: it has no record boundaries to stream on
    try:
        data = _parse(path.read_text(encoding=ENCODING, errors="replace"))
    except json.JSONDecodeError as exc:
        yield RawDoc(str(path), None, f"invalid_json: {exc.msg} at line {exc.lineno}", "")
        return
    except RecursionError:
        yield RawDoc(str(path), None, "invalid_json: nested too deeply", "")
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


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str] | None, list[str], str | None]]:
    """The CSV records of a file: (line number, cells or None, header, csv error)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding=ENCODING, errors="replace", newline="") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader has consumed the bad line and can go on
                if header is None:
                    raise
                yield reader.line_num, None, header, str(exc)
                continue
            if not row:
                continue  # a blank line is no row (as in csv.DictReader)
            if header is None:
                header = row
                continue
            yield reader.line_num, row, header, None


def _csv(path: Path, text_field: str) -> Iterator[RawDoc]:
    for line, row, header, error in _csv_rows(path):
        source = f"{path}:{line}"
        if row is None:
            yield RawDoc(source, None, f"invalid_csv: {error}", "")
        elif len(row) > len(header):
            yield RawDoc(source, None, f"invalid_csv: {len(row)} cells for {len(header)} columns", json.dumps(row)[:2000])
        else:
            yield RawDoc(source, dict(zip(header, row + [None] * (len(header) - len(row)))), None, "")  # type: ignore[list-item]


def _parquet(path: Path, text_field: str) -> Iterator[RawDoc]:
    import pyarrow.parquet as pq

    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            n += 1
            yield RawDoc(f"{path}:row{n}", record, None, "")


def _text(path: Path, text_field: str) -> Iterator[RawDoc]:
    yield RawDoc(str(path), {text_field: path.read_text(encoding=ENCODING, errors="replace")}, None, "")


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
    text = html_to_text(path.read_text(encoding=ENCODING, errors="replace"))
    yield RawDoc(str(path), {text_field: text}, None, "")


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows  # the footer; the reader yields one record per row


READERS: dict[str, Callable[[Path, str], Iterator[RawDoc]]] = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet, "text": _text, "html": _html}
COUNTERS: dict[str, Callable[[Path], int | None]] = {
    "jsonl": lambda path: sum(1 for _ in _lines(path)),
    "json": lambda path: None,  # a full parse; the progress bar goes without a total
    "csv": lambda path: sum(1 for _ in _csv_rows(path)),
    "parquet": _parquet_rows,
    "text": lambda path: 1,
    "html": lambda path: 1,
}
