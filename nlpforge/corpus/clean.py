"""The clean stage over chat conversations.

Order: parse -> normalise -> redact PII -> length filter (spaCy tokens) -> exact dedup.
Dedup runs after redaction, so tickets that differ only in a customer's email collapse.
Every input line ends up in ``corpus.jsonl`` or in ``rejects.jsonl`` with a reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import unicodedata
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import spacy

from nlpforge.console import track
from nlpforge.corpus.pii import redact
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig
from nlpforge.runs import atomic_file, atomic_write_json

_KEEP_CONTROL = {"\n", "\t"}
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")
ROLES = {"system", "user", "assistant"}


def normalize_text(text: str, form: str = "NFKC") -> str:
    """Unicode normal form, no control or zero-width characters, single spaces, trimmed lines."""
    text = unicodedata.normalize(form, text)
    text = "".join(c for c in text if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
    text = text.replace("\u00a0", " ")  # NFC keeps no-break spaces; NFKC already folded them
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def read_records(paths: list[str], field: str) -> Iterator[tuple[str, dict | None, str | None, str]]:
    """Yield ``(source, record, reject_reason, raw_line)``; ``source`` is ``file:line``."""
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise DataError(f"data.inputs: {name}: no such file (paths are relative to {Path.cwd()})")
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                source = f"{name}:{lineno}"
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as exc:
                    yield source, None, f"invalid_json: {exc.msg} at column {exc.colno}", raw
                    continue
                problem = _check_messages(record, field)
                yield source, (None if problem else record), problem, raw


def _check_messages(record: Any, field: str) -> str | None:
    if not isinstance(record, dict) or field not in record:
        return f"invalid_schema: no '{field}' field"
    messages = record[field]
    if not isinstance(messages, list) or not messages:
        return f"invalid_schema: '{field}' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"invalid_schema: {field}[{i}] needs role in {sorted(ROLES)} and string content"
    if not any(m["role"] == "assistant" for m in messages):
        return "invalid_schema: no assistant turn to learn from"
    return None


def count_lines(paths: list[str]) -> int:
    total = 0
    for name in paths:
        if Path(name).is_file():
            with open(name, "rb") as f:
                total += sum(1 for line in f if line.strip())
    return total


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values), "max": max(values)}


def run_clean(data: DataConfig, cfg: CleanConfig, out_dir: Path) -> dict[str, Any]:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    field = data.messages_field
    total = count_lines(data.inputs)

    rejected: Counter = Counter()
    rejected_chars: Counter = Counter()
    examples: dict[str, list[str]] = {}
    pii: Counter = Counter()
    words_before: list[int] = []
    words_after: list[int] = []
    seen: dict[str, str] = {}
    kept = 0
    sentences = 0

    def parsed() -> Iterator[tuple[str, dict | None, str | None, str, str]]:
        """Normalise and redact before spaCy sees the text; yield the joined text too."""
        for source, record, reason, raw in read_records(data.inputs, field):
            if record is None:
                yield source, None, reason, raw, ""
                continue
            messages = []
            for m in record[field]:
                content, counts = redact(normalize_text(m["content"], cfg.normalize), cfg.pii, cfg.pii_operator)
                pii.update(counts)
                messages.append({"role": m["role"], "content": content})
            record = {**record, field: messages}
            yield source, record, None, raw, "\n".join(m["content"] for m in messages)

    out_dir.mkdir(parents=True, exist_ok=True)
    stream = parsed()
    buffer: deque = deque()
    texts = (item[4] for item in _tee(stream, buffer))
    docs = nlp.pipe(texts, batch_size=cfg.batch_size, n_process=cfg.n_process)
    with atomic_file(out_dir / "corpus.jsonl") as kept_f, atomic_file(out_dir / "rejects.jsonl") as rej_f:

        def reject(source: str, reason: str, text: str, detail: str = "") -> None:
            key = reason.split(":")[0]
            rejected[key] += 1
            rejected_chars[key] += len(text)
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append(f"{source}: {text[:160]}")
            row = {"source": source, "reason": key, "detail": detail or reason, "text": text[:2000]}
            rej_f.write(json.dumps(row, ensure_ascii=False) + "\n")

        for doc in track(docs, total, "clean"):
            source, record, reason, raw, text = buffer.popleft()
            if record is None:
                # the raw line may hold PII too: redact it before it lands in the rejects file
                reject(source, reason or "invalid", redact(raw.strip(), cfg.pii, cfg.pii_operator)[0])
                continue
            n_words = sum(1 for t in doc if not (t.is_punct or t.is_space))
            words_before.append(n_words)
            if n_words < cfg.min_words:
                reject(source, "too_short", text, f"too_short: {n_words} words < clean.min_words={cfg.min_words}")
                continue
            if n_words > cfg.max_words:
                reject(source, "too_long", text, f"too_long: {n_words} words > clean.max_words={cfg.max_words}")
                continue
            if cfg.dedup == "exact":
                key = hashlib.sha256(json.dumps(record[field], sort_keys=True).encode()).hexdigest()
                if key in seen:
                    reject(source, "duplicate", text, f"duplicate: same conversation as {seen[key]}")
                    continue
                seen[key] = source
            kept += 1
            words_after.append(n_words)
            sentences += sum(1 for _ in doc.sents)
            kept_f.write(json.dumps({**record, "source": source}, ensure_ascii=False) + "\n")

    n_rejected = sum(rejected.values())
    if kept + n_rejected != total:
        raise DataError(f"clean: {total} input lines but {kept} kept + {n_rejected} rejected; this is a bug")
    if kept == 0:
        raise DataError(f"clean: no conversation survived cleaning; see {out_dir / 'rejects.jsonl'}")
    report = {
        "input_docs": total,
        "kept_docs": kept,
        "rejected_docs": n_rejected,
        "rejected": {k: {"docs": rejected[k], "chars": rejected_chars[k], "examples": examples[k]} for k in sorted(rejected)},
        "pii_redacted": dict(sorted(pii.items())),
        "words_before": _stats(words_before),
        "words_after": _stats(words_after),
        "sentences_kept": sentences,
    }
    atomic_write_json(out_dir / "report.json", report)
    return {"kept": kept, "rejected": n_rejected, "pii_redacted": sum(pii.values())}


def _tee(stream: Iterator, buffer: deque) -> Iterator:
    """Pass items on to spaCy while keeping them, in order, for the consumer of its docs."""
    for item in stream:
        buffer.append(item)
        yield item
