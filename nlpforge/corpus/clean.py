"""The clean stage, over chat conversations (``data.format: messages``) or documents
(``data.format: text``).

Order: read -> normalise (unicode, mojibake, whitespace) -> anonymise PII -> one spaCy
pass (tokens, sentences) -> length and quality rules -> exact dedup -> near-dup (MinHash).
Dedup runs after anonymisation, so tickets that differ only in a customer's email
collapse. Every input record ends up in ``corpus.jsonl`` or in ``rejects.jsonl`` with a
reason; none vanish.

Scale-out: each step is a pure function of one document (:func:`normalize_text`,
:class:`~nlpforge.corpus.pii.Anonymizer`, :func:`~nlpforge.corpus.quality.check`), so
under Ray Data they map over batches unchanged; only the dedup indexes are global state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import unicodedata
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ftfy
import spacy
from datasketch import MinHash, MinHashLSH

from nlpforge.console import track
from nlpforge.corpus import quality
from nlpforge.corpus.pii import Anonymizer
from nlpforge.corpus.readers import RawDoc, read
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig
from nlpforge.runs import atomic_file, atomic_write_json

_KEEP_CONTROL = {"\n", "\t"}
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+")
ROLES = {"system", "user", "assistant"}


def normalize_text(text: str, form: str = "NFKC", fix_mojibake: bool = False) -> str:
    """Unicode normal form, no control or zero-width characters, single spaces, trimmed lines."""
    if fix_mojibake:
        text = ftfy.fix_text(text, normalization=None)
    text = unicodedata.normalize(form, text)
    text = "".join(c for c in text if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
    text = text.replace("\u00a0", " ")  # NFC keeps no-break spaces; NFKC already folded them
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def check_messages(record: dict, field: str) -> str | None:
    messages = record.get(field)
    if messages is None:
        return f"invalid_schema: no '{field}' field (data.messages_field)"
    if not isinstance(messages, list) or not messages:
        return f"invalid_schema: '{field}' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"invalid_schema: {field}[{i}] needs role in {sorted(ROLES)} and string content"
    if not any(m["role"] == "assistant" for m in messages):
        return "invalid_schema: no assistant turn to learn from"
    return None


def count_records(paths: list[str], text_field: str) -> int | None:
    """Total for the progress bar: JSONL lines are cheap to count; other formats are not."""
    total = 0
    for doc in _jsonl_only(paths):
        if doc is None:
            return None
        total += doc
    return total


def _jsonl_only(paths: list[str]) -> Iterator[int | None]:
    from nlpforge.corpus.readers import expand

    for path in expand(paths):
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            yield None
            return
        with open(path, "rb") as f:
            yield sum(1 for line in f if line.strip())


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values), "max": max(values)}


class NearDuplicates:
    """MinHash LSH over word n-gram sets (datatrove/FineWeb parameters by default)."""

    def __init__(self, threshold: float, ngram: int, bands: int, rows: int):
        self.ngram, self.num_perm = ngram, bands * rows
        self.lsh = MinHashLSH(threshold=threshold, num_perm=self.num_perm, params=(bands, rows))
        self.sources: dict[str, MinHash] = {}

    def signature(self, text: str) -> MinHash:
        words = _WORD.findall(text.lower())
        grams = {" ".join(words[i : i + self.ngram]) for i in range(max(1, len(words) - self.ngram + 1))}
        m = MinHash(num_perm=self.num_perm)
        m.update_batch([g.encode() for g in grams])
        return m

    def seen(self, source: str, text: str) -> tuple[str, float] | None:
        """The earlier document this one nearly duplicates (and the estimated Jaccard), else
        record it and return None."""
        m = self.signature(text)
        for other in self.lsh.query(m):
            return other, m.jaccard(self.sources[other])
        self.lsh.insert(source, m)
        self.sources[source] = m
        return None


class Cleaner:
    """Turn one raw record into a cleaned record or a reject reason (everything but the
    spaCy pass and dedup, which need batches and global state)."""

    def __init__(self, data: DataConfig, cfg: CleanConfig):
        self.data, self.cfg = data, cfg
        salt = os.environ.get(cfg.pii_salt_env, "")
        if cfg.pii_operator in ("hash", "pseudonym") and not salt:
            raise DataError(f"clean.pii_operator={cfg.pii_operator} needs a secret salt in the environment variable {cfg.pii_salt_env} (clean.pii_salt_env)")
        self.anonymize = Anonymizer(cfg.pii, cfg.pii_operator, salt)

    def text_of(self, value: str) -> str:
        return self.anonymize(normalize_text(value, self.cfg.normalize, self.cfg.fix_mojibake))

    def __call__(self, doc: RawDoc) -> tuple[dict | None, str, str | None]:
        """``(record, joined text, reject reason)``"""
        if doc.record is None:
            return None, "", doc.error
        record = doc.record
        if self.data.format == "messages":
            problem = check_messages(record, self.data.messages_field)
            if problem:
                return None, "", problem
            messages = [{"role": m["role"], "content": self.text_of(m["content"])} for m in record[self.data.messages_field]]
            record = {**record, self.data.messages_field: messages}
            return record, "\n".join(m["content"] for m in messages), None
        value = record.get(self.data.text_field)
        if not isinstance(value, str):
            return None, "", f"invalid_schema: no string '{self.data.text_field}' field (data.text_field)"
        text = self.text_of(value)
        return {**record, self.data.text_field: text}, text, None


def run_clean(data: DataConfig, cfg: CleanConfig, out_dir: Path | None) -> dict[str, Any]:
    """Clean ``data.inputs`` into ``out_dir``; with ``out_dir=None`` (a dry run) write nothing
    and return the report."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    cleaner = Cleaner(data, cfg)
    limits = quality.thresholds(cfg.quality.preset, cfg.quality.overrides)
    rep_min_words = quality.REPETITION_MIN_WORDS[cfg.quality.preset]
    near = NearDuplicates(cfg.near_dedup.threshold, cfg.near_dedup.ngram, cfg.near_dedup.bands, cfg.near_dedup.rows) if cfg.near_dedup.enabled else None

    rejected: Counter = Counter()
    rejected_chars: Counter = Counter()
    examples: dict[str, list[str]] = {}
    words_before: list[int] = []
    words_after: list[int] = []
    seen: dict[str, str] = {}
    kept = sentences = 0

    buffer: deque = deque()

    def texts() -> Iterator[str]:
        # the spaCy pass reads texts while the loop below pops the records, in order
        for doc in read(data.inputs, data.text_field):
            record, text, reason = cleaner(doc)
            buffer.append((doc, record, text, reason))
            yield text

    docs = nlp.pipe(texts(), batch_size=cfg.batch_size, n_process=cfg.n_process)
    with _sink(out_dir, "corpus.jsonl") as kept_f, _sink(out_dir, "rejects.jsonl") as rej_f:

        def reject(source: str, reason: str, text: str) -> None:
            key = reason.split(":")[0]
            rejected[key] += 1
            rejected_chars[key] += len(text)
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append(f"{source}: {text[:160]}")
            rej_f.write(json.dumps({"source": source, "reason": key, "detail": reason, "text": text[:2000]}, ensure_ascii=False) + "\n")

        total = count_records(data.inputs, data.text_field)
        for spacy_doc in track(docs, total, "clean"):
            raw, record, text, reason = buffer.popleft()
            if record is None:
                # the raw line may hold PII too: anonymise it before it lands in the rejects file
                reject(raw.source, reason or "invalid", cleaner.anonymize(raw.raw.strip()))
                continue
            words = [t.text for t in spacy_doc if not (t.is_punct or t.is_space)]
            n_sents = sum(1 for _ in spacy_doc.sents)
            words_before.append(len(words))
            if len(words) < cfg.min_words:
                reject(raw.source, f"too_short: {len(words)} words < clean.min_words={cfg.min_words}", text)
                continue
            if len(words) > cfg.max_words:
                reject(raw.source, f"too_long: {len(words)} words > clean.max_words={cfg.max_words}", text)
                continue
            failed = quality.check(text, words, n_sents, limits, rep_min_words)
            if failed:
                reject(raw.source, failed[1], text)
                continue
            if cfg.dedup == "exact":
                content = record[data.messages_field] if data.format == "messages" else text
                key = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
                if key in seen:
                    reject(raw.source, f"duplicate: same content as {seen[key]}", text)
                    continue
                seen[key] = raw.source
            if near is not None:
                hit = near.seen(raw.source, text)
                if hit:
                    reject(raw.source, f"near_duplicate: estimated Jaccard {hit[1]:.2f} with {hit[0]}", text)
                    continue
            kept += 1
            words_after.append(len(words))
            sentences += n_sents
            kept_f.write(json.dumps({**record, "source": raw.source}, ensure_ascii=False, default=str) + "\n")

    n_rejected = sum(rejected.values())
    if total is not None and kept + n_rejected != total:
        raise DataError(f"clean: {total} input records but {kept} kept + {n_rejected} rejected; this is a bug, please report it")
    if out_dir is not None and kept == 0:
        raise DataError(f"clean: no record survived cleaning; see {out_dir / 'rejects.jsonl'}")
    report = {
        "input_docs": kept + n_rejected,
        "kept_docs": kept,
        "rejected_docs": n_rejected,
        "rejected": {k: {"docs": rejected[k], "chars": rejected_chars[k], "examples": examples[k]} for k in sorted(rejected)},
        "pii_redacted": dict(sorted(cleaner.anonymize.counts.items())),
        "pii_operator": cfg.pii_operator,
        "quality_preset": cfg.quality.preset,
        "words_before": _stats(words_before),
        "words_after": _stats(words_after),
        "sentences_kept": sentences,
    }
    if out_dir is not None:
        atomic_write_json(out_dir / "report.json", report)
    return report


class _Null:
    def write(self, _: str) -> None:
        pass


def _sink(out_dir: Path | None, name: str) -> Any:
    import contextlib

    return atomic_file(out_dir / name) if out_dir is not None else contextlib.nullcontext(_Null())


def stage_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"kept": report["kept_docs"], "rejected": report["rejected_docs"], "pii_redacted": sum(report["pii_redacted"].values())}
