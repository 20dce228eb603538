"""Property tests of the reader layer and the clean stage's accounting on hostile input: any
bytes, and mostly-valid records mixed with garbage, BOMs, \\r, \\r\\n, NULs and invalid UTF-8.

Every input record is kept or rejected with a reason, the counter and the reader agree, and
nothing raises but a DataError (which these kinds only raise when nothing survives)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpforge.corpus.clean import run_clean
from nlpforge.corpus.readers import count_file, read, read_file
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = (".jsonl", ".csv", ".json")

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["How much is the kettle?", "The Zephyr Kettle costs $49.00 and ships in two days.", "a\rb", "x\u2028y", "\x00", "\\ud800", "caf\u00e9"]
)
NOISE = [b"", b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3", b"\r", b"\r\n", b"\n", b",", b'"', b"{", b"}", b"[1]", b"null", b'{"text": "lone \\ud800 surrogate"}', b'{"text": "\\udc80"}']
noise = st.sampled_from(NOISE) | st.binary(max_size=8)
separators = st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\n\r"])


@st.composite
def jsonl_bytes(draw: st.DrawFn) -> bytes:
    """JSONL records (chat or text), some broken, joined by any line break, with noise."""
    out = [draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))]
    for _ in range(draw(st.integers(0, 6))):
        text = draw(texts)
        record = draw(st.sampled_from([{"text": text}, {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "It costs $49.00."}]}, {"other": text}]))
        line = json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        cut = draw(st.integers(0, len(line)))
        out += [line[:cut] if draw(st.integers(0, 4)) == 0 else line, draw(noise) if draw(st.integers(0, 3)) == 0 else b"", draw(separators)]
    return b"".join(out)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """A CSV with a text column, any row terminator, an optional BOM, and noise between rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    w.writerow(draw(st.sampled_from([["text", "label"], ["text"], ["body", "text", "x"]])))
    for _ in range(draw(st.integers(0, 6))):
        w.writerow([draw(texts) for _ in range(draw(st.integers(0, 4)))])
    data = buf.getvalue().encode("utf-8", "surrogatepass")
    pos = draw(st.integers(0, len(data)))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + data[:pos] + draw(noise) + data[pos:]


@st.composite
def json_bytes(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(st.one_of(st.builds(lambda t: {"text": t}, texts), texts, st.integers(), st.none()), max_size=5))
    doc = draw(st.sampled_from([items, {"rows": items}, {"a": items, "b": items}, items[:1]]))
    data = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    cut = draw(st.sampled_from([len(data), len(data), draw(st.integers(0, len(data)))]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + data[:cut] + draw(noise)


files = st.one_of(
    st.tuples(st.sampled_from(KINDS), st.binary(max_size=200)),
    st.tuples(st.just(".jsonl"), jsonl_bytes()),
    st.tuples(st.just(".csv"), csv_bytes()),
    st.tuples(st.just(".json"), json_bytes()),
)


def _write(folder: Path, i: int, suffix: str, data: bytes) -> Path:
    path = folder / f"in{i}{suffix}"
    path.write_bytes(data)
    return path


def _nonblank_lines(data: bytes) -> int:
    """The JSONL rule, independently: lines end at \\n; BOMs and whitespace-only lines are no records."""
    return sum(1 for line in data.split(b"\n") if line.decode("utf-8", "replace").lstrip("\ufeff").strip())


@settings(SETTINGS, max_examples=300)
@given(file=files)
def test_every_record_is_read_or_rejected_and_counted_alike(file: tuple[str, bytes]) -> None:
    suffix, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), 0, suffix, data)
        docs = list(read_file(path))
        n = count_file(path)
    for doc in docs:
        assert (doc.record is None) != (doc.error is None)
        assert isinstance(doc.record, dict) or doc.error.split(":")[0] in {"invalid_json", "invalid_schema", "invalid_csv"}
        if doc.record is not None:  # what a reader yields can be written back as UTF-8 JSON
            json.dumps(doc.record, ensure_ascii=False, default=str).encode("utf-8")
    if suffix == ".json":
        assert n is None  # counting a JSON document is a full parse: the progress bar goes without a total
    else:
        assert n == len(docs)
    if suffix == ".jsonl":
        assert len(docs) == _nonblank_lines(data)


@settings(SETTINGS, max_examples=20)
@given(inputs=st.lists(files, min_size=1, max_size=3), fmt=st.sampled_from(["text", "messages"]))
def test_clean_keeps_or_rejects_every_record_the_reader_gives(inputs: list[tuple[str, bytes]], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(_write(Path(tmp), i, suffix, data)) for i, (suffix, data) in enumerate(inputs)]
        data_cfg = DataConfig(inputs=paths, format=fmt)
        n_read = sum(1 for _ in read(paths))
        report = run_clean(data_cfg, CleanConfig(), None)  # a dry run: no DataError when nothing survives
        assert report["input_docs"] == report["kept_docs"] + report["rejected_docs"] == n_read
        assert sum(r["docs"] for r in report["rejected"].values()) == report["rejected_docs"]
        out = Path(tmp) / "out"
        try:
            written = run_clean(data_cfg, CleanConfig(), out)
        except DataError as exc:
            assert "no record survived" in str(exc) and report["kept_docs"] == 0
            assert not out.exists() or not list(out.iterdir())  # nothing published
            return
        assert written == report
        kept = (out / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        rejects = (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(kept) == report["kept_docs"] and len(rejects) == report["rejected_docs"]
        assert all(json.loads(line)["reason"] for line in rejects)
