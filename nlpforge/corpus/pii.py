"""Pattern-based PII detection and anonymisation, with Presidio's entity and operator names.

Regexes with validators rather than Presidio itself: Presidio's analyzer loads a spaCy NER
model at start-up, which the official channel does not ship on PyPI; its pattern
recognizers are what we re-create here, validators included (Luhn for cards, mod-97 for
IBANs, the ``ipaddress`` module for IPs, SSA rules for SSNs). Hard negatives matter as much
as hits: order numbers (``NW-483920``), SKUs, versions and Luhn-failing digit runs are not
flagged, because every digit pattern refuses a match glued to letters or dashes and every
number-like entity has a validator.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL", "US_SSN", "DATE_TIME")
OPERATORS = ("replace", "redact", "mask", "hash", "pseudonym")

_EDGE_L, _EDGE_R = r"(?<![\w\-/.])", r"(?![\w\-]|\.\d)"
PATTERNS: dict[str, re.Pattern] = {
    "EMAIL_ADDRESS": re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"),
    "URL": re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]"),
    "CREDIT_CARD": re.compile(_EDGE_L + r"(?<![A-Z0-9]{4} )(?:\d[ -]?){12,18}\d" + _EDGE_R),
    "IBAN_CODE": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    "IP_ADDRESS": re.compile(r"(?<![\w.:])(?:(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![\w.:])"),
    "US_SSN": re.compile(_EDGE_L + r"\d{3}[- ]\d{2}[- ]\d{4}" + _EDGE_R),
    "PHONE_NUMBER": re.compile(
        # not the tail of an IBAN-like run of 4-character groups ("NL67 VKOC 2312 6783 50")
        _EDGE_L + r"(?<![A-Z0-9]{4} )"
        r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,5}"  # international, +country code
        r"|(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]?\d{4}"  # North American
        r"|0\d{1,4}[ .-]\d{2,4}(?:[ .-]?\d{2,4}){1,3})"  # national with a trunk 0 (UK, EU)
        + _EDGE_R
    ),
    "DATE_TIME": re.compile(
        r"\b(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"
        r"|\d{1,2}/\d{1,2}/\d{2,4}"
        r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}"
        r"|\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]* \d{4})\b"
    ),
}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ip_ok(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == 6 or text.count(".") == 3


def _ssn_ok(text: str) -> bool:
    d = re.sub(r"\D", "", text)
    if len(set(re.findall(r"[- ]", text))) > 1:  # mixed separators: not an SSN layout
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _phone_ok(text: str) -> bool:
    # national numbers have 10 or 11 digits; longer runs must carry a +country code, so
    # account numbers and Luhn-failing card numbers are not taken for phones
    digits = sum(c.isdigit() for c in text)
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", text):  # a dotted quad is an (invalid) IPv4, not a phone
        return False
    return 10 <= digits <= 11 or (text.startswith("+") and 8 <= digits <= 15)


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "CREDIT_CARD": _card_ok,
    "IBAN_CODE": _iban_ok,
    "IP_ADDRESS": _ip_ok,
    "US_SSN": _ssn_ok,
    "PHONE_NUMBER": _phone_ok,
}
# Earlier entities win overlaps: an email holds digits a phone pattern could match, a card
# number could look like a phone number; specific, validated entities go first.
PRIORITY = ("EMAIL_ADDRESS", "URL", "IBAN_CODE", "CREDIT_CARD", "US_SSN", "IP_ADDRESS", "DATE_TIME", "PHONE_NUMBER")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity: str
    text: str


def find_pii(text: str, entities: list[str] | tuple[str, ...], extra: list[Span] | tuple[Span, ...] = ()) -> list[Span]:
    """Validated pattern matches first, then ``extra`` spans (NER, term lists) where free."""
    spans: list[Span] = []
    for entity in PRIORITY:
        if entity not in entities:
            continue
        ok = VALIDATORS.get(entity)
        for m in PATTERNS[entity].finditer(text):
            if ok is not None and not ok(m.group()):
                continue
            if any(s.start < m.end() and m.start() < s.end for s in spans):
                continue
            spans.append(Span(m.start(), m.end(), entity, m.group()))
    for e in extra:
        if not any(s.start < e.end and e.start < s.end for s in spans):
            spans.append(e)
    return sorted(spans, key=lambda s: s.start)


class Anonymizer:
    """Apply one operator to every detected value.

    ``hash`` and ``pseudonym`` are keyed by ``salt``: the same value gets the same output
    across the corpus (and across runs with the same salt), and nobody without the salt can
    confirm a guessed value by hashing it.
    """

    def __init__(self, entities: list[str], operator: str = "replace", salt: str = "", mask_char: str = "*", mask_keep: int = 4):
        self.entities, self.operator, self.salt = list(entities), operator, salt
        self.mask_char, self.mask_keep = mask_char, mask_keep
        self.counts: Counter = Counter()

    def _digest(self, value: str) -> str:
        return hashlib.sha256((self.salt + "\x00" + value).encode()).hexdigest()

    def _replacement(self, span: Span) -> str:
        op = self.operator
        if op == "replace":
            return f"<{span.entity}>"
        if op == "redact":
            return ""
        if op == "mask":
            keep = self.mask_keep
            chars = [c if not c.isalnum() else self.mask_char for c in span.text[:-keep]] if keep else [self.mask_char if c.isalnum() else c for c in span.text]
            return "".join(chars) + (span.text[-keep:] if keep else "")
        if op == "hash":
            return self._digest(span.text)[:16]
        return pseudonym(span.entity, self._digest(span.text))

    def __call__(self, text: str, extra: list[Span] | tuple[Span, ...] = ()) -> str:
        out, pos = [], 0
        for span in find_pii(text, self.entities, extra):
            out.append(text[pos : span.start])
            out.append(self._replacement(span))
            self.counts[span.entity] += 1
            pos = span.end
        out.append(text[pos:])
        return "".join(out)


def pseudonym(entity: str, digest: str) -> str:
    """A well-formed fake value chosen by the digest (reserved ranges where they exist)."""
    n = int(digest[:12], 16)
    if entity == "EMAIL_ADDRESS":
        return f"user{n % 10**6:06d}@example.com"
    if entity == "PHONE_NUMBER":
        return f"+1 555-01{n % 100:02d}-{(n // 100) % 10000:04d}"  # 555-01xx: reserved for fiction
    if entity == "CREDIT_CARD":
        body = f"400000{n % 10**9:09d}"
        check = next(d for d in "0123456789" if luhn_ok(body + d))
        return body + check
    if entity == "IP_ADDRESS":
        return f"192.0.2.{n % 254 + 1}"  # TEST-NET-1
    if entity == "US_SSN":
        return f"9{n % 100:02d}-{(n // 100) % 90 + 10:02d}-{(n // 10**4) % 9000 + 1000:04d}"  # 9xx: never issued
    if entity == "URL":
        return f"https://example.com/{digest[:10]}"
    return f"<{entity}_{digest[:8]}>"


def redact(text: str, entities: list[str], operator: str = "replace", salt: str = "") -> tuple[str, Counter]:
    """One-off convenience over :class:`Anonymizer`: the new text and the counts per entity."""
    anon = Anonymizer(entities, operator, salt)
    return anon(text), anon.counts
