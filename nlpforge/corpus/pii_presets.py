"""Named PII policies (``clean.pii_preset``): which entities, how each is rewritten, and the
audit table the clean report carries so a reviewer can sign the run off.

* ``hipaa-safe-harbor`` (45 CFR 164.514(b)(2)): the identifiers of the Safe Harbor list that
  can occur in text. Names, phone, fax, e-mail, SSN, medical record, health plan, account,
  licence, vehicle and device numbers, URLs and IPs are replaced. Geography smaller than a
  state goes, but a street address keeps its state and the first three ZIP digits ("<LOCATION>,
  CO 802XX"), except the 17 restricted ZIP3 areas (20,000 people or fewer), which become 000.
  Every date element but the year goes ("<DATE_TIME:2024>"); times go; ages over 89 become
  "90+" and younger ages stay. Phone numbers after "fax" are counted as fax numbers (#5). Labels
  of ``clean.pii_patterns`` and ``clean.pii_terms`` count as "other unique identifying numbers"
  (#18); #16 (biometrics) and #17 (photographs) cannot occur in text and are listed as such.
* ``gdpr``: personal data of identified or identifiable people (Art. 4(1)): names, places,
  contact data, online identifiers (IP, URL, device ids), national, bank, card, health and
  vehicle numbers, dates, and NRP (origin, religion, politics: Art. 9 special categories).
* ``pci``: cardholder data (PCI DSS 3.4): card numbers masked to the last four digits, the
  cardholder's name, expiry dates and card security codes (which may never be stored).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from nlpforge.corpus.pii import ENTITIES, Anonymizer, Span

HIPAA_IDENTIFIERS = {
    1: "Names",
    2: "Geographic subdivisions smaller than a state",
    3: "Dates (except year) and ages over 89",
    4: "Telephone numbers",
    5: "Fax numbers",
    6: "Email addresses",
    7: "Social security numbers",
    8: "Medical record numbers",
    9: "Health plan beneficiary numbers",
    10: "Account numbers",
    11: "Certificate/license numbers",
    12: "Vehicle identifiers and serial numbers, including license plates",
    13: "Device identifiers and serial numbers",
    14: "Web URLs",
    15: "IP addresses",
    16: "Biometric identifiers",
    17: "Full-face photographs and comparable images",
    18: "Any other unique identifying number, characteristic, or code",
}
HIPAA_OF_ENTITY = {
    "PERSON": 1, "LOCATION": 2, "DATE_TIME": 3, "PHONE_NUMBER": 4, "FAX_NUMBER": 5, "EMAIL_ADDRESS": 6, "US_SSN": 7,
    "MEDICAL_RECORD_NUMBER": 8, "HEALTH_PLAN_ID": 9, "ACCOUNT_NUMBER": 10, "CREDIT_CARD": 10, "IBAN_CODE": 10,
    "LICENSE_NUMBER": 11, "VEHICLE_ID": 12, "DEVICE_ID": 13, "URL": 14, "IP_ADDRESS": 15,
}  # fmt: skip
NOT_IN_TEXT = {16: "not detectable in text: review biometric data outside the corpus", 17: "not detectable in text: remove images outside the corpus"}
# ZIP3 areas with 20,000 or fewer people (Census 2000, as HHS lists them): they become 000
RESTRICTED_ZIP3 = frozenset({"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884", "890", "893"})

_AGE = re.compile(r"\d{1,3}")
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_ZIP_ONLY = re.compile(r"(\d{3})\d{2}(?:-\d{4})?")
_STATE_ZIP_TAIL = re.compile(r",[ \t]*([A-Za-z]{2}|[A-Z][a-z]+(?: [A-Z][a-z]+)?)\.?(?:[ \t]+(\d{5})(?:-\d{4})?)?$")
_IS_AGE = re.compile(r"^\d{1,3}$|(?:year|yr|y/o|y\.o\.|yo\b)", re.IGNORECASE)
_FAX_CUE = re.compile(r"\bfax\b[^\d\n]{0,12}$", re.IGNORECASE)


def zip3(zip_code: str) -> str:
    """The ZIP3 Safe Harbor keeps: the first three digits, 000 for a restricted area."""
    head = zip_code[:3]
    return ("000" if head in RESTRICTED_ZIP3 else head) + "XX"


def safe_harbor(span: Span) -> str | None:
    """What a span becomes under Safe Harbor; None: the operator's default replacement."""
    if span.entity == "DATE_TIME":
        if _IS_AGE.search(span.text) and not _YEAR.search(span.text):
            m = _AGE.search(span.text)
            if m and int(m.group()) > 89:
                return span.text[: m.start()] + "90+" + span.text[m.end() :]
            return span.text  # ages up to 89 are not identifiers
        year = _YEAR.search(span.text)
        # a year that puts someone over 89 (a birth year) is itself an identifier: aggregate it too
        if year and int(year.group(1)) > datetime.date.today().year - 90:
            return f"<DATE_TIME:{year.group(1)}>"
        return "<DATE_TIME>"
    if span.entity == "LOCATION":
        text = span.text.strip()
        m = _ZIP_ONLY.fullmatch(text)
        if m:
            return zip3(text)
        tail = _STATE_ZIP_TAIL.search(text)
        if tail and tail.start() > 0:
            from nlpforge.corpus.pii_context import US_STATES

            state = tail.group(1)
            if state.upper() in US_STATES or state in US_STATES.values():
                return "<LOCATION>, " + state + (" " + zip3(tail.group(2)) if tail.group(2) else "")
        return "<LOCATION>"
    return None


@dataclass(frozen=True)
class Preset:
    name: str
    entities: tuple[str, ...]
    transform: Callable[[Span], str | None] | None = None
    relabel_fax: bool = False
    patterns: dict[str, str] = field(default_factory=dict)  # extra label -> regex, as clean.pii_patterns
    mask_entities: tuple[str, ...] = ()  # shown masked to the last four characters whatever the operator


def _pci(span: Span) -> str | None:
    if span.entity == "CREDIT_CARD":
        return "".join("*" if c.isdigit() else c for c in span.text[:-4]) + span.text[-4:]
    return None


PRESETS: dict[str, Preset] = {
    "hipaa-safe-harbor": Preset(
        "hipaa-safe-harbor",
        (
            "PERSON",
            "LOCATION",
            "DATE_TIME",
            "PHONE_NUMBER",
            "EMAIL_ADDRESS",
            "US_SSN",
            "MEDICAL_RECORD_NUMBER",
            "HEALTH_PLAN_ID",
            "ACCOUNT_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "LICENSE_NUMBER",
            "VEHICLE_ID",
            "DEVICE_ID",
            "URL",
            "IP_ADDRESS",
        ),
        safe_harbor,
        relabel_fax=True,
    ),  # fmt: skip
    "gdpr": Preset("gdpr", (*ENTITIES, "PERSON", "LOCATION", "NRP")),
    "pci": Preset(
        "pci",
        ("CREDIT_CARD", "PERSON"),
        _pci,
        patterns={
            "CARD_SECURITY_CODE": r"(?i)\b(?:cvv2?|cvc2?|cid|csc|security[ \t]+code)\b[ \t]*(?:code)?[ \t]*[:#=]?[ \t]*(\d{3,4})\b",
            "CARD_EXPIRY": r"(?i)\b(?:exp|expiry|expires|expiration|valid[ \t]+thru|good[ \t]+thru)\b\.?[ \t]*(?:date)?[ \t]*[:=]?[ \t]*((?:0[1-9]|1[0-2])[ \t]?/[ \t]?(?:20\d\d|\d{2}))\b",
        },
    ),
}


def entities_for(pii: list[str], preset: str | None) -> list[str]:
    """The entities a clean config asks for: its ``pii`` list and its preset's, once each."""
    wanted = list(pii)
    if preset:
        wanted += [e for e in PRESETS[preset].entities if e not in wanted]
    return wanted


def build_anonymizer(pii: list[str], operator: str, salt: str, preset: str | None = None, context: bool = True, extra_patterns: dict[str, str] | None = None) -> Anonymizer:
    """The clean stage's anonymiser: patterns, context rules and gazetteers (NER spans come in as
    ``extra``), and a preset's rewriting rules."""
    from nlpforge.corpus.pii_context import PiiDetector

    entities = entities_for(pii, preset)
    p = PRESETS[preset] if preset else None
    detector = PiiDetector(entities, context=context)
    patterns = {label: re.compile(rx) for label, rx in {**(p.patterns if p else {}), **(extra_patterns or {})}.items()}

    def detect(text: str, extra: list[Span]) -> list[Span]:
        own = [Span(*m.span(1 if rx.groups else 0), label, m.group(1 if rx.groups else 0)) for label, rx in patterns.items() for m in rx.finditer(text) if m.end() > m.start()]
        spans = detector.find(text, [*own, *extra])
        if p is not None and p.relabel_fax:
            spans = [Span(s.start, s.end, "FAX_NUMBER", s.text) if s.entity == "PHONE_NUMBER" and _FAX_CUE.search(text[max(0, s.start - 24) : s.start]) else s for s in spans]
        return spans

    def transform(span: Span) -> str | None:
        if span.entity == "FAX_NUMBER" and operator == "replace":
            return "<FAX_NUMBER>"
        return p.transform(span) if p is not None and p.transform is not None else None

    return Anonymizer(entities, operator, salt, detect=detect, transform=transform)


def audit(preset: str | None, counts: dict[str, int]) -> dict[str, dict] | None:
    """The report's sign-off table: every HIPAA identifier with its entities, count and status."""
    if preset != "hipaa-safe-harbor":
        return None if not preset else {e: {"count": counts.get(e, 0)} for e in sorted(set(PRESETS[preset].entities) | set(counts))}
    table: dict[str, dict] = {}
    for number, name in HIPAA_IDENTIFIERS.items():
        ents = sorted(e for e, n in HIPAA_OF_ENTITY.items() if n == number)
        if number == 18:
            ents = sorted(e for e in counts if e not in HIPAA_OF_ENTITY)
        row: dict = {"identifier": f"{number}. {name}", "entities": ents, "count": sum(counts.get(e, 0) for e in ents)}
        if number in NOT_IN_TEXT:
            row["status"] = NOT_IN_TEXT[number]
        elif number == 18 and not ents:
            row["status"] = "no clean.pii_patterns or pii_terms configured for other unique codes"
        else:
            row["status"] = "detected and removed" if row["count"] else "none found"
        table[str(number)] = row
    return table
