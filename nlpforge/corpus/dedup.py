"""Dedup, the only corpus-wide state of the clean stage: exact (a content hash), C4's
repeated sentence spans, and near-duplicates (MinHash LSH). Under Ray Data these indexes are
global (shuffles); everything before them is per-document."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from datasketch import MinHash, MinHashLSH

from nlpforge.corpus.normalize import normalize_text

_WORD = re.compile(r"\w+")


def exact_key(record: dict, text: str, fields: tuple[str, ...]) -> str:
    """What two records must share to be exact duplicates: their message lists (chat,
    preference, kto), else the text and the label (text, classification)."""
    content = [record[f] for f in fields] if fields else [text, record.get("label")]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class ExactDuplicates:
    """The first record of each :func:`exact_key`, in input order."""

    def __init__(self, fields: tuple[str, ...]):
        self.fields, self.first = fields, {}

    def seen(self, source: str, record: dict, text: str) -> str | None:
        """The earlier record this one repeats, else record it and return None."""
        key = exact_key(record, text, self.fields)
        if key in self.first:
            return self.first[key]
        self.first[key] = source
        return None


class Decided:
    """Dedup answers computed beforehand over the whole corpus (by :mod:`nlpforge.corpus.ray_clean`):
    source -> what :class:`ExactDuplicates` or :class:`NearDuplicates` would have said."""

    def __init__(self, answers: dict[str, Any]):
        self.answers = answers

    def seen(self, source: str, *_: Any) -> Any:
        return self.answers.get(source)


def signature(text: str, ngram: int, num_perm: int) -> MinHash:
    words = _WORD.findall(text.lower())
    grams = {" ".join(words[i : i + ngram]) for i in range(max(1, len(words) - ngram + 1))}
    m = MinHash(num_perm=num_perm)
    m.update_batch([g.encode() for g in grams])
    return m


def band_keys(m: MinHash, bands: int, rows: int) -> list[str]:
    """One key per LSH band: two signatures are candidates (MinHashLSH.query) exactly when they share one."""
    hv = m.hashvalues
    return [f"{b}:{hashlib.blake2b(hv[b * rows : (b + 1) * rows].tobytes(), digest_size=16).hexdigest()}" for b in range(bands)]


class NearDuplicates:
    """MinHash LSH over word n-gram sets (datatrove/FineWeb parameters by default)."""

    def __init__(self, threshold: float, ngram: int, bands: int, rows: int):
        self.ngram, self.num_perm = ngram, bands * rows
        self.lsh = MinHashLSH(threshold=threshold, num_perm=self.num_perm, params=(bands, rows))
        self.sources: dict[str, MinHash] = {}

    def seen(self, source: str, text: str) -> tuple[str, float] | None:
        """The earlier document this one nearly duplicates (and the estimated Jaccard), else
        record it and return None. Greedy, in input order: a document is dropped when it shares
        an LSH band with a document kept before it."""
        m = signature(text, self.ngram, self.num_perm)
        for other in self.lsh.query(m):
            return other, m.jaccard(self.sources[other])
        self.lsh.insert(source, m)
        self.sources[source] = m
        return None


def span_keys(text: str, spans: list[tuple[int, int]], n: int) -> list[bytes]:
    """A key for every run of ``n`` consecutive sentences (case and spacing folded)."""
    sents = [" ".join(text[a:b].lower().split()) for a, b in spans]
    return [hashlib.sha256("\x00".join(sents[i : i + n]).encode()).digest() for i in range(len(sents) - n + 1)]


def cut_runs(text: str, spans: list[tuple[int, int]], runs: list[int], n: int) -> tuple[str, int]:
    """``text`` without the sentences of the runs of ``n`` starting at ``runs``, and how many went."""
    drop = [False] * len(spans)
    for i in runs:
        drop[i : i + n] = [True] * n
    if not any(drop):
        return text, 0
    pieces, pos = [], 0
    for (a, b), d in zip(spans, drop):
        if d:
            pieces.append(text[pos:a])
            pos = b
    pieces.append(text[pos:])
    return normalize_text("".join(pieces)), sum(drop)


class SentenceSpans:
    """C4's sentence dedup: every run of ``n`` consecutive sentences is kept only where it
    first occurs in the corpus; later copies are cut out of their documents."""

    def __init__(self, n: int):
        self.n, self.seen = n, set()

    def __call__(self, source: str, text: str, spans: list[tuple[int, int]]) -> tuple[str, int]:
        runs = []
        for i, key in enumerate(span_keys(text, spans, self.n)):
            if key in self.seen:
                runs.append(i)
            else:
                self.seen.add(key)
        return cut_runs(text, spans, runs, self.n)


class DecidedSpans(SentenceSpans):
    """:class:`SentenceSpans` answers computed beforehand over the whole corpus (by
    :mod:`nlpforge.corpus.ray_clean`): source -> the runs that occurred earlier."""

    def __init__(self, n: int, runs: dict[str, list[int]]):
        self.n, self.runs = n, runs

    def __call__(self, source: str, text: str, spans: list[tuple[int, int]]) -> tuple[str, int]:
        return cut_runs(text, spans, self.runs.get(source, []), self.n)
