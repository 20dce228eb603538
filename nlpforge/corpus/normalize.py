"""Normalisation: unicode, mojibake, whitespace, boilerplate and C4 lines; and the
:class:`Cleaner` that turns one raw record into a normalised record of the recipe's format
or a reject reason. Pure functions of one document (bar the boilerplate pass), so they map
over batches unchanged in a process pool or under Ray Data."""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter

import ftfy

from nlpforge.corpus import quality
from nlpforge.corpus.filters import chars_problem, check_messages
from nlpforge.corpus.pii import Span
from nlpforge.corpus.pii_presets import build_anonymizer
from nlpforge.corpus.readers import RawDoc, read
from nlpforge.data.formats import CHAT_FORMATS, FormatProblem, message_fields, to_canonical
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

_KEEP_CONTROL = {"\n", "\t"}
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str, form: str = "NFKC", fix_mojibake: bool = False) -> str:
    """Unicode normal form, no control or zero-width characters, single spaces, trimmed lines."""
    if fix_mojibake:
        text = ftfy.fix_text(text, normalization=None)
    text = unicodedata.normalize(form, text)
    text = "".join(c for c in text if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
    text = text.replace("\u00a0", " ")  # NFC keeps no-break spaces; NFKC already folded them
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def boilerplate_lines(data: DataConfig, cfg: CleanConfig) -> set[str]:
    """Lines held by many documents (a first streaming pass over the inputs)."""
    if not (cfg.boilerplate.enabled and data.format == "text"):
        return set()
    counts: Counter = Counter()
    n_docs = 0
    for doc in read(data.all_inputs, data.text_field):
        value = (doc.record or {}).get(data.text_field)
        if isinstance(value, str):
            n_docs += 1
            counts.update({line for line in normalize_text(value, cfg.normalize, cfg.fix_mojibake).split("\n") if line.strip()})
    floor = max(cfg.boilerplate.min_docs, cfg.boilerplate.min_fraction * n_docs)
    return {line for line, n in counts.items() if n >= floor}


class Cleaner:
    """Turn one raw record into a normalised record or a reject reason (the steps that need
    no corpus-wide state; anonymisation follows the spaCy pass, which finds NER entities)."""

    def __init__(self, data: DataConfig, cfg: CleanConfig, boilerplate: set[str] | None = None):
        self.data, self.cfg = data, cfg
        self.boilerplate = boilerplate or set()
        self.boilerplate_removed = 0
        c4 = cfg.quality.c4_lines
        self.c4_lines = (cfg.quality.preset == "web") if c4 is None else c4
        self.c4_removed = 0
        self.patterns = {label: re.compile(p) for label, p in cfg.pii_patterns.items()}
        salt = os.environ.get(cfg.pii_salt_env, "")
        if cfg.pii_operator in ("hash", "pseudonym") and not salt:
            raise DataError(f"clean.pii_operator={cfg.pii_operator} needs a secret salt in the environment variable {cfg.pii_salt_env} (clean.pii_salt_env)")
        self.anonymize = build_anonymizer(cfg.pii, cfg.pii_operator, salt, cfg.pii_preset, cfg.pii_context)

    def normalize(self, value: str) -> str:
        text = normalize_text(value, self.cfg.normalize, self.cfg.fix_mojibake)
        if self.boilerplate:
            lines = text.split("\n")
            kept = [line for line in lines if line not in self.boilerplate]
            self.boilerplate_removed += len(lines) - len(kept)
            text = "\n".join(kept).strip()
        if self.c4_lines:
            lines = [line for line in text.split("\n") if line.strip()]
            kept = [line for line in lines if quality.c4_line_ok(line)]
            self.c4_removed += len(lines) - len(kept)
            text = "\n".join(kept)
        return text

    def pattern_spans(self, text: str) -> list[Span]:
        return [Span(m.start(), m.end(), label, m.group()) for label, rx in self.patterns.items() for m in rx.finditer(text) if m.end() > m.start()]

    def __call__(self, doc: RawDoc) -> tuple[dict | None, str, str | None]:
        """``(normalised record, its text, reject reason)``; for chat, the text joins the turns
        with newlines. A record over ``clean.max_chars`` comes back as ``(None, its text,
        "too_long: ...")``: the text for the rejects file, never for spaCy."""
        record, text, reason = self._clean(doc)
        if record is not None:
            reason = chars_problem(len(text), self.cfg)
            if reason:
                return None, text, reason
        return record, text, reason

    def _clean(self, doc: RawDoc) -> tuple[dict | None, str, str | None]:
        if doc.record is None:
            return None, "", doc.error
        try:
            record = to_canonical(doc.record, self.data)  # alpaca, sharegpt, preference, ... -> one shape per task
        except FormatProblem as exc:
            return None, "", str(exc)
        fields = message_fields(self.data.format, self.data.messages_field)
        if fields:
            if self.data.format in CHAT_FORMATS:
                problem = check_messages(record, self.data.messages_field)
                if problem:
                    return None, "", problem
            for name in fields:
                record[name] = [{"role": m["role"], "content": normalize_text(m["content"], self.cfg.normalize, self.cfg.fix_mojibake)} for m in record[name]]
            return record, "\n".join(m["content"] for f in fields for m in record[f]), None
        value = record.get(self.data.text_field)
        if not isinstance(value, str):
            return None, "", f"invalid_schema: no string '{self.data.text_field}' field (data.text_field)"
        text = self.normalize(value)
        return {**record, self.data.text_field: text}, text, None

    def anonymize_record(self, record: dict, text: str, spans: list[Span]) -> tuple[dict, str]:
        """Anonymise the record's text(s), with NER spans given as offsets into ``text``."""
        fields = message_fields(self.data.format, self.data.messages_field)
        if not fields:
            new = self.anonymize(text, self.pattern_spans(text) + spans)
            return {**record, self.data.text_field: new}, new
        record, pos = dict(record), 0
        for name in fields:
            messages = []
            for m in record[name]:
                end = pos + len(m["content"])
                mine = [Span(sp.start - pos, sp.end - pos, sp.entity, sp.text) for sp in spans if pos <= sp.start and sp.end <= end]
                messages.append({"role": m["role"], "content": self.anonymize(m["content"], self.pattern_spans(m["content"]) + mine)})
                pos = end + 1  # the joining newline
            record[name] = messages
        return record, "\n".join(m["content"] for f in fields for m in record[f])
