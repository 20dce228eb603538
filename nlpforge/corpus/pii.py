"""Pattern-based PII detection and redaction, with Presidio's entity names.

Regexes with validators rather than Presidio itself: Presidio's pattern recognizers need a
spaCy NER model at import time, which the official channel does not ship on PyPI. The
phone pattern requires 10 to 15 digits in a phone-shaped layout and refuses digit runs glued
to letters or dashes, so order numbers such as ``NW-483920`` are not flagged.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
PHONE = re.compile(
    r"(?<![\w-])"
    r"(?:\+\d{1,3}[ .-]?)?"  # country code
    r"(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])"  # area code
    r"\d{2,4}(?:[ .-]?\d{2,4}){1,2}"
    r"(?![\w-])"
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity: str


def _phone_ok(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 10 <= digits <= 15


def find_pii(text: str, entities: list[str]) -> list[Span]:
    spans: list[Span] = []
    if "EMAIL_ADDRESS" in entities:
        spans += [Span(m.start(), m.end(), "EMAIL_ADDRESS") for m in EMAIL.finditer(text)]
    if "PHONE_NUMBER" in entities:
        taken = [(s.start, s.end) for s in spans]
        for m in PHONE.finditer(text):
            if _phone_ok(m.group()) and not any(a < m.end() and m.start() < b for a, b in taken):
                spans.append(Span(m.start(), m.end(), "PHONE_NUMBER"))
    return sorted(spans, key=lambda s: s.start)


def redact(text: str, entities: list[str], operator: str = "replace") -> tuple[str, Counter]:
    """``replace`` puts ``<ENTITY_TYPE>`` in place of the value; ``redact`` removes it."""
    counts: Counter = Counter()
    out, pos = [], 0
    for span in find_pii(text, entities):
        out.append(text[pos : span.start])
        out.append(f"<{span.entity}>" if operator == "replace" else "")
        counts[span.entity] += 1
        pos = span.end
    out.append(text[pos:])
    return "".join(out), counts
