"""Inputs named by URI (``s3://bucket/prefix``, ``gs://...``, ``hdfs://...``: whatever
``pyarrow.fs`` reads, which is also what Ray Data reads), for ``clean.engine: ray``. Each file is
fetched by the Ray task that reads it into a local temporary file and parsed there by nlpforge's
own readers, so its records, rejects and ``source`` names ("URI:line") are those of a local file.
Credentials and endpoints come from the usual environment (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL``, ...) or from the URI's query (``?endpoint_override=...``)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from nlpforge.errors import DataError


def is_uri(name: str) -> bool:
    return "://" in name and not name.startswith("file://")


def _fs(uri: str) -> tuple[object, str, str, str]:
    """(filesystem, path inside it, scheme, query) of a URI."""
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid / OSError per scheme
        raise DataError(f"data.inputs: {uri}: {exc}") from None
    parts = urlsplit(uri)
    return fs, path, parts.scheme, parts.query


def _uri(scheme: str, path: str, query: str) -> str:
    return f"{scheme}://{path}" + (f"?{query}" if query else "")


def expand(uri: str, suffixes: dict[str, str]) -> list[str]:
    """The file a URI names, or the supported files under it (sorted), as URIs."""
    import pyarrow.fs as pafs

    fs, path, scheme, query = _fs(uri)
    info = fs.get_file_info(path)  # type: ignore[attr-defined]
    if info.type == pafs.FileType.File:
        if Path(path).suffix.lower() not in suffixes:
            raise DataError(f"data.inputs: {uri}: unsupported file type {Path(path).suffix!r}; supported: {', '.join(sorted(suffixes))}")
        return [uri]
    found = sorted(i.path for i in _listing(fs, path) if Path(i.path).suffix.lower() in suffixes)
    if not found:
        what = "holds no file of a supported kind" if info.type == pafs.FileType.Directory else "no such object or prefix"
        raise DataError(f"data.inputs: {uri}: {what} ({', '.join(sorted(suffixes))})")
    return [_uri(scheme, p, query) for p in found]


def _listing(fs: object, path: str) -> list:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    return [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]  # type: ignore[attr-defined]


def fingerprint(uri: str) -> str:
    """What the pipeline's cache keys a remote input on: the names, sizes and modification times
    under it (its bytes would mean downloading it to decide whether to download it)."""
    fs, path, _, _ = _fs(uri)
    h = hashlib.sha256(uri.encode())
    entries = [fs.get_file_info(path), *_listing(fs, path)]  # type: ignore[attr-defined]
    for i in entries:
        h.update(f"{i.path}\0{i.size}\0{i.mtime_ns}\n".encode())
    return h.hexdigest()


@contextmanager
def fetched(uri: str) -> Iterator[Path]:
    """A local copy of the file ``uri`` names, removed when the caller is done with it."""
    fs, path, _, _ = _fs(uri)
    with tempfile.TemporaryDirectory(prefix="nlpforge-fetch-") as tmp:
        local = Path(tmp) / Path(path).name
        with fs.open_input_stream(path) as src, open(local, "wb") as dst:  # type: ignore[attr-defined]
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        yield local
