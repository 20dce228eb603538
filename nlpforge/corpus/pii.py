"""Pattern-based PII detection and anonymisation, with Presidio's entity and operator names.

Regexes with validators and context words rather than Presidio itself: Presidio's analyzer
loads a spaCy NER model at start-up, which the official channel does not ship on PyPI; its
pattern recognizers and its context enhancement are what we re-create here. Each class is
fixed at its root:

* a checksum where one exists: Luhn and the issuer prefix for cards (so Luhn-valid IMEIs are
  not cards), mod-97 with the registered length per country for IBANs, the ISO 3779 check
  digit for VINs, Luhn for IMEIs;
* a parser where a format is defined: ``ipaddress`` for IPv4/IPv6 (ports, brackets, CIDR
  prefixes, zone ids, IPv4-mapped forms), NANP rules for North-American phone numbers, SSA
  rules for SSNs, calendar ranges for numeric dates;
* a context word where a bare digit string is ambiguous: ten digits are a phone number only
  next to "call"/"cell"/"fax"..., nine digits an SSN only next to "SSN"/"social security",
  and the HIPAA identifiers (medical record, health plan, account, licence, vehicle and device
  numbers) only after the word that names them.

Hard negatives matter as much as hits: order numbers (``NW-483920``), SKUs, versions,
clinical values, amounts and Luhn-failing digit runs are not flagged, because every digit
pattern refuses a match glued to letters or dashes and every number-like entity has a
validator or a context word.

Names, places and dates found by NER, context rules and gazetteers come in as ``extra`` spans
(:mod:`nlpforge.corpus.pii_context`); presets for HIPAA Safe Harbor, GDPR and PCI live in
:mod:`nlpforge.corpus.pii_presets`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

ID_ENTITIES = ("MEDICAL_RECORD_NUMBER", "HEALTH_PLAN_ID", "ACCOUNT_NUMBER", "LICENSE_NUMBER", "VEHICLE_ID", "DEVICE_ID")
ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL", "US_SSN", "DATE_TIME", *ID_ENTITIES)

_EDGE_L, _EDGE_R = r"(?<![\w\-/.+])", r"(?![\w\-]|[.,]\d)"
_I = re.IGNORECASE


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity: str
    text: str


# ---------------------------------------------------------------------------------------------
# validators


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card_brand_ok(d: str) -> bool:
    """Issuer prefix (IIN) and length: what makes a Luhn-valid digit run a card number."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if d[:2] in ("34", "37"):
        return n == 15  # Amex
    if "51" <= d[:2] <= "55" or "2221" <= d[:4] <= "2720":
        return n == 16  # Mastercard
    if d[:4] == "6011" or d[:2] == "65" or "644" <= d[:3] <= "649":
        return 16 <= n <= 19  # Discover
    if d[:2] in ("36", "38", "39") or "300" <= d[:3] <= "305":
        return 14 <= n <= 19  # Diners
    if "3528" <= d[:4] <= "3589":
        return 16 <= n <= 19  # JCB
    if d[:2] == "62" or d[:2] == "81":
        return 16 <= n <= 19  # UnionPay
    if d[:2] in ("50", "56", "57", "58", "63", "67", "68", "69") or d[:2] == "60":
        return 12 <= n <= 19  # Maestro and national schemes (RuPay 60/65/81/82, ...)
    return False


def _card_ok(text: str) -> bool:
    d = _digits(text)
    if not (13 <= len(d) <= 19) or len(set(d)) == 1 or not luhn_ok(d):
        return False
    seps = set(re.findall(r"[ -]", text))
    return len(seps) <= 1 and _card_brand_ok(d)


# ISO 13616 registry: country -> IBAN length
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or IBAN_LENGTHS.get(s[:2], len(s)) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ssn_ok(text: str) -> bool:
    d = _digits(text)
    if len(d) != 9 or len(set(re.findall(r"[- ]", text))) > 1:  # mixed separators: not an SSN layout
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _nanp_ok(ten: str) -> bool:
    """NANP: area and exchange codes start with 2-9 and are not N11 service codes."""
    area, exchange = ten[:3], ten[3:6]
    return area[0] in "23456789" and area[1:] != "11" and exchange[0] in "23456789" and exchange[1:] != "11"


_VIN_VALUES = {**{str(i): i for i in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
               **dict(zip("STUVWXYZ", range(2, 10)))}  # fmt: skip
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_ok(vin: str) -> bool:
    """ISO 3779 / 49 CFR 565 check digit (position 9)."""
    vin = vin.upper()
    if len(vin) != 17 or any(c not in _VIN_VALUES for c in vin):
        return False
    r = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS)) % 11
    return vin[8] == ("X" if r == 10 else str(r))


def _date_ok(text: str) -> bool:
    """Numeric dates: a real month and day in either order (US or European)."""
    nums = [int(x) for x in re.findall(r"\d+", text.split("T")[0].split(" ")[0])]
    if len(nums) < 2:
        return True
    if len(nums) == 2:  # MM/YYYY
        return 1 <= nums[0] <= 12
    a, b, c = nums[:3]
    if a > 999:  # YYYY-MM-DD
        return 1 <= b <= 12 and 1 <= c <= 31
    return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= a <= 31 and 1 <= b <= 12)


# ---------------------------------------------------------------------------------------------
# context words (Presidio's context enhancement, as a requirement rather than a score boost)

_ID_WORDS = (
    "part|order|tracking|account|acct|member|confirmation|reference|ref|invoice|case|ticket|serial|model|policy|claim|record|lot|"
    "item|catalog|sku|routing|card|license|licence|id|job|batch|build|transaction|booking|reservation|receipt|employee|student|"
    "version|patient|chart|group|plan|customer|registration|shipment|parcel|package|the|a|an|this|that"
)
_PHONE_CUE = re.compile(
    r"(?:\b(?:call|calling|called|phone|ph|tel|telephone|cell|cellphone|mobile|mob|fax|text|txt|sms|whatsapp|reach|contact|"
    r"cb|callback|voicemail|dial|landline|direct|office|home|work|hotline|line)\b|\((?:m|c|h|w|o|f)\)"
    r"|(?<![\w-])(?!(?:" + _ID_WORDS + r")\b)[\w-]+[ \t]+number\b|^[ \t]*number\b)",  # "pharmacy number", not "order number"
    _I,
)
_SSN_CUE = re.compile(r"\b(?:ssn|ss|social|soc\.?\s*sec|social\s+security|ssa|tin|taxpayer)\b|\bss#", _I)
_IMEI_CUE = re.compile(r"\bimei(?:sv)?\b", _I)


def _cue_before(text: str, start: int, cue: re.Pattern, window: int = 32) -> bool:
    """A cue word ends within ``window`` characters before ``start``, with no digit between."""
    left = text[max(0, start - window) : start]
    for m in cue.finditer(left):
        if not re.search(r"\d", left[m.end() :]):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# recognizers: each yields (start, end) candidates of one entity; find_pii resolves overlaps

Finder = Callable[[str], Iterator[tuple[int, int]]]


def _regex(pattern: str | re.Pattern, ok: Callable[[str], bool] | None = None, group: int | str = 0, flags: int = 0) -> Finder:
    rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

    def find(text: str) -> Iterator[tuple[int, int]]:
        for m in rx.finditer(text):
            s, e = m.span(group)
            if s < e and (ok is None or ok(text[s:e])):
                yield s, e

    return find


# e-mail: RFC 5322 atext in the local part (an apostrophe inside, as in o'brien@), a dotted domain
_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]|'(?=[A-Za-z0-9]))*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"
)

# URLs: with a scheme, www., or a bare domain under a known top-level domain (lower case, so
# ASP.NET is not a domain; file extensions that are also country codes - .py .sh .md .rs - are left out)
_TLDS = (
    "com|org|net|edu|gov|info|biz|io|dev|app|ai|co|me|health|tech|online|xyz|cloud|tv|"
    "pro|"
    "us|uk|eu|de|fr|it|es|nl|pl|br|au|ca|jp|cn|ru|ch|at|be|se|no|dk|fi|ie|nz|za|mx|ar|cl|in|tr|gr|pt|cz|hu|ro|sk|ua|kr|"
    "sg|hk|tw|il|ae|sa|vn|th|ng|ke|eg|lu|li|ee|lv|lt|si|hr|bg"
)
_URL_SCHEME = re.compile(r"\b(?:https?|ftp|sftp|wss?)://[^\s<>\"'\[\]{}|\\^`]+", _I)
_URL_WWW = re.compile(r"(?<![\w@.-])www\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+[^\s<>\"'\[\]{}|\\^`]*", _I)
_URL_BARE = re.compile(r"(?<![\w@.\-/:%+'])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:" + _TLDS + r")(?![\w-]|\.[A-Za-z0-9]|\()(?:[/?#][^\s<>\"'\[\]{}|\\^`]*)?")


def _trim_url(text: str, s: int, e: int) -> int:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a URL."""
    while e > s:
        c = text[e - 1]
        if c in ".,;:!?'\"*":
            e -= 1
        elif c == ")" and text[s:e].count("(") < text[s:e].count(")"):
            e -= 1
        elif c == ">":
            e -= 1
        else:
            break
    return e


def _urls(text: str) -> Iterator[tuple[int, int]]:
    for rx in (_URL_SCHEME, _URL_WWW, _URL_BARE):
        for m in rx.finditer(text):
            s, e = m.start(), _trim_url(text, m.start(), m.end())
            if e - s > 4:
                yield s, e


# IBAN: country, check digits, BBAN in optional groups of four; the registered length decides the end
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        s, raw = m.start(), m.group()
        length = IBAN_LENGTHS.get(raw[:2])
        lengths = [length] if length else range(min(34, len(raw.replace(" ", ""))), 14, -1)
        for n in lengths:
            seen, end = 0, None
            for i, c in enumerate(raw):
                if c != " ":
                    seen += 1
                    if seen == n:
                        end = i + 1
                        break
            if end is None:
                continue
            if end < len(raw) and raw[end] != " ":  # cut inside a group: not this length
                continue
            if _iban_ok(raw[:end]):
                yield s, s + end
                break


# cards: 13-19 digits in one grouping style; Luhn + issuer prefix + length
_CARD = re.compile(_EDGE_L + r"(?<![A-Z0-9]{4} )\d(?:[ -]?\d){12,18}" + _EDGE_R)


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD.finditer(text):
        if _card_ok(m.group()) and not _cue_before(text, m.start(), _IMEI_CUE):
            yield m.span()


# SSN: separated forms anywhere (SSA rules), nine bare digits only after an SSN cue
_SSN_SEP = re.compile(_EDGE_L + r"\d{3}([- ])\d{2}\1\d{4}" + _EDGE_R)
_SSN_BARE = re.compile(_EDGE_L + r"\d{9}" + _EDGE_R)


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN_SEP.finditer(text):
        if _ssn_ok(m.group()):
            yield m.span()
    for m in _SSN_BARE.finditer(text):
        if _ssn_ok(m.group()) and _cue_before(text, m.start(), _SSN_CUE, 28):
            yield m.span()


# IP addresses, parsed by ipaddress: IPv4 (a port after it is not part of it), CIDR prefixes,
# IPv6 in every RFC 4291/5952 text form, IPv4-mapped, with a zone id
_IPV4 = re.compile(r"(?<![\w./-])(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2}(?!\d))?(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.%-])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)(?:(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f:]+(?![0-9A-Fa-f:]|\.\d))"
    r"(?:%[A-Za-z0-9_.-]*[A-Za-z0-9])?(?:/\d{1,3}(?!\d))?"
)


def _ip_ok(text: str) -> bool:
    try:
        if "/" in text:
            net = ipaddress.ip_network(text.split("%")[0] if "%" in text else text, strict=False)
            return net.version == 6 or text.count(".") == 3
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ips(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4.finditer(text):
        if _ip_ok(m.group()):
            yield m.span()
    for m in _IPV6.finditer(text):
        s, e = m.span()
        value = m.group()
        if value.count(":") < 2 or not re.search(r"\d", value):
            continue
        if ":::" in value:
            continue
        if _ip_ok(value):
            yield s, e
        elif value.endswith(":") and _ip_ok(value[:-1]):  # "fe80::1:" as the end of a sentence or a port separator
            yield s, e - 1


# phone numbers: NANP (with +1 / 1- prefixes, parentheses, any one separator, or bare ten digits
# after a phone cue), international +CC numbers, and national trunk-0 numbers after a phone cue
_NANP = re.compile(r"(?<![\w+\-/.])(?:(?:\+1|\b1)[ .\-]?)?(?:\(\s?(\d{3})\s?\)[ .\-]?|(\d{3})([ .\-]))(\d{3})[ .\-](\d{4})(?![\w\-]|[.,]\d)")
_NANP_BARE = re.compile(r"(?<![\w+\-/.])(\+?1)?(\d{10})(?![\w\-]|[.,]\d)")
_INTL = re.compile(r"(?<![\w+])\+(?!1\b)\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]?\d{1,4}){1,5}(?![\w\-]|[.,]\d)")
_TRUNK0 = re.compile(_EDGE_L + r"0\d{1,4}[ .\-]\d{2,4}(?:[ .\-]?\d{2,4}){1,3}" + _EDGE_R)


def _phones(text: str) -> Iterator[tuple[int, int]]:
    for m in _NANP.finditer(text):
        ten = (m.group(1) or m.group(2)) + m.group(4) + m.group(5)
        if _nanp_ok(ten):
            yield m.span()
    for m in _NANP_BARE.finditer(text):
        if _nanp_ok(m.group(2)) and (m.group(1) == "+1" or _cue_before(text, m.start(), _PHONE_CUE)):
            yield m.span()
    for m in _INTL.finditer(text):
        s, e = m.span()
        while e > s:  # drop trailing groups until 8-15 digits (a date or count after the number)
            n = sum(c.isdigit() for c in text[s:e])
            if 8 <= n <= 15:
                yield s, e
                break
            cut = max(text.rfind(" ", s, e), text.rfind("-", s, e), text.rfind(".", s, e))
            if cut <= s:
                break
            e = cut
    for m in _TRUNK0.finditer(text):
        if 10 <= len(_digits(m.group())) <= 11 and _cue_before(text, m.start(), _PHONE_CUE):
            yield m.span()


# dates, times and ages (HIPAA: every date element; ages)
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_MON = _MONTH + r"\.?"
_WD = r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)\.?"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_AMPM = r"(?:\s?(?:[ap]\.m\.|[ap]m\b))"
_ZONE = r"(?:\s?(?:Z|UTC|GMT)\b|Z|[+\-](?:[01]\d|2[0-3]):?[0-5]\d)"
_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,6})?)?" + _AMPM + "?" + _ZONE + "?"
_TIME12 = r"(?:1[0-2]|0?[1-9])(?::[0-5]\d)?" + _AMPM
_AT_TIME = r"(?:(?:T|\s{1,2})(?:" + _TIME + "|" + _TIME12 + "))?"
_NUMERIC_DATE = (
    r"(?:" + _YEAR + r"-[01]\d-[0-3]\d|" + _YEAR + r"/[01]\d/[0-3]\d"  # ISO, and the slash form of logs
    r"|\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})"  # US and European
    r"|\d{1,2}\.\d{1,2}\.(?:1[89]|20)\d\d"  # German, Polish, ...
    r"|\d{1,2}-\d{1,2}-(?:1[89]|20)\d\d)"
)
_DATE = re.compile(
    r"(?<![\w/.:\-])(?=\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun))(?:"
    + _NUMERIC_DATE + _AT_TIME  # numeric date, optionally with its time
    + r"|(?:" + _WD + r",?\s)?" + _MON + r"\s{1,2}" + _DAY + _ORD + r"(?:,?\s" + _YEAR + r"(?![\d:]))?" + _AT_TIME  # Mar 3(rd)(, 2024)( 10:30)
    + r"|(?:" + _WD + r",?\s)?" + _DAY + _ORD + r"\s(?:of\s)?" + _MON + r",?\s" + _YEAR + _AT_TIME  # 3 March 2024
    + r"|" + _DAY + r"-" + _MONTH + r"-(?:" + _YEAR + r"|\d\d)"  # 22-Feb-2022
    + r"|" + _MON + r",?\s" + _YEAR  # March 2024
    + r"|(?:0?[1-9]|1[0-2])/" + _YEAR  # 03/2024
    + r")(?![\w/]|[.:\-]\d)",
    _I,
)  # fmt: skip
_TIME_ALONE = re.compile(r"(?<![\w:.\-/])(?:" + _TIME12 + r"|" + _TIME + r")(?![\w:]|[.,]\d)", _I)
_AGE = re.compile(
    r"(?<![\w.\-])(?:\d{1,3}(?:-|\s)?(?:years?|yrs?)(?:-|\s)old|\d{1,3}\s(?:years?|yrs?)\sof\sage|\d{1,3}\s?(?:y/o|y\.o\.|yo\b|yrs?\b(?=\s(?:male|female|man|woman|boy|girl|[MF]\b))))"
    r"|\b(?:age|aged|ages)\b[\s:=]*\"?(\d{1,3})(?![\w%]|[.,]\d)",
    _I,
)


_MONTH_DAY_CUED = re.compile(r"\b(?:on|due|until|till|by|from|since|before|after|through|thru)[ \t]+((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\w/]|[.,]\d)", _I)


def _dates(text: str) -> Iterator[tuple[int, int]]:
    for m in _DATE.finditer(text):
        value = m.group()
        if re.match(r"\d+[/.\-]\d+(?:[/.\-]\d+)?(?:[T ]|$)", value) and not _date_ok(value):
            continue
        if re.match(r"may\b", value) and not re.search(r"\d{4}", value):  # the verb "may", lower case, before a number
            continue
        e = m.end()
        yield m.start(), e
    for m in _TIME_ALONE.finditer(text):
        yield m.span()
    for m in _MONTH_DAY_CUED.finditer(text):  # "on 4/2": month and day without a year, after a date preposition
        yield m.span(1)
    for m in _AGE.finditer(text):
        yield m.span(1) if m.group(1) else m.span()


# HIPAA identifiers named by their context: "<cue> [no.|#|number|:] <value>"
_CONNECT = r"(?:[^\S\n]*(?:#|no\b\.?|nr\b\.?|num(?:ber)?\b|n°|id\b|is\b|was\b|:|=|\(|-)[^\S\n]*){0,3}[^\S\n]*"
_ID_BODY = r"(?=[A-Za-z\-]*\d)[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){3,24}"  # letters, digits, inner dashes; a digit somewhere
_ID_END = r"(?![\w\-]|[.,]\w)"
_ID_VALUE = r"(" + _ID_BODY + r")" + _ID_END


def _cued(cue: str, value: str = _ID_VALUE, ok: Callable[[str], bool] | None = None, flags: int = _I) -> Finder:
    return _regex(re.compile(r"(?:" + cue + r")" + _CONNECT + value, flags), ok, 1)


def _min_len(n: int) -> Callable[[str], bool]:
    return lambda v: len(v) >= n


_MAC = re.compile(r"(?<![\w:\-])[0-9A-Fa-f]{2}([:\-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:\-])")
_VIN = re.compile(r"(?<![\w\-])[A-HJ-NPR-Z0-9]{17}(?![\w\-])")
_VIN_CUE = re.compile(r"\b(?:vin|vehicle|chassis|car|truck)\b", _I)


def _vins(text: str) -> Iterator[tuple[int, int]]:
    for m in _VIN.finditer(text):
        v = m.group()
        if re.search(r"\d", v) and re.search(r"[A-Z]", v) and (vin_ok(v) or _cue_before(text, m.start(), _VIN_CUE, 24)):
            yield m.span()


_IMEI = re.compile(r"(?<![\w\-])(?:\d{15,16}|\d{2}-\d{6}-\d{6}-\d{1,2})(?![\w\-]|[.,]\d)")


def _imeis(text: str) -> Iterator[tuple[int, int]]:
    for m in _IMEI.finditer(text):
        d = _digits(m.group())
        if _cue_before(text, m.start(), _IMEI_CUE, 20) and (len(d) == 16 or luhn_ok(d)):
            yield m.span()


RECOGNIZERS: dict[str, list[Finder]] = {
    "EMAIL_ADDRESS": [_regex(_EMAIL)],
    "URL": [_urls],
    "DEVICE_ID": [
        _regex(_MAC),
        _imeis,
        _cued(r"\b(?:serial|s/n|sn|device\s+id|udi|esn|meid)\b(?:\s+(?:number|no\b\.?|#))?", r"(" + _ID_BODY + r"|(?-i:[A-Z]{2}-[A-Z]{6,12}|[A-Z]{8,16}))" + _ID_END, ok=_min_len(6)),
    ],
    "VEHICLE_ID": [_vins, _cued(r"\b(?:licen[cs]e\s+)?plate\b|\btag\s+(?:number|no\b\.?|#)", r"(?=[A-Za-z\- ]{0,5}\d)([A-Za-z0-9]{1,4}[- ]?[A-Za-z0-9]{2,5})(?![\w\-])")],
    "MEDICAL_RECORD_NUMBER": [_cued(r"\bmrn\b|\bmr\s?#|\bmedical\s+record(?:\s+(?:number|no\b\.?|#))?|\bchart\b|\bpatient\s+(?:id|number|no\b\.?)|\brecord\s+(?:number|no\b\.?|#)")],
    "HEALTH_PLAN_ID": [
        _cued(r"\b(?:member|subscriber|beneficiary|policy|insurance|insured|plan|group|medicaid|medicare(?:\s+(?:mbi|hicn))?|mbi|hicn)\b(?:\s+(?:id|number|no\b\.?|#))?", ok=_min_len(5))
    ],  # fmt: skip
    "ACCOUNT_NUMBER": [_cued(r"\b(?:bank\s+)?(?:account|acct|a/c)\b\.?(?:\s+(?:number|no\b\.?|#|num))?", ok=_min_len(6))],
    "LICENSE_NUMBER": [
        _cued(r"\b(?:driver'?s?\s+)?licen[cs]e(?!\s+plate)\b|(?<![/\d])\bdl\b|(?-i:\bDEA\b|\bNPI\b)|\bdea\s+(?:number|no\b|#)|\b(?:certificate|cert)\b\.?", ok=_min_len(5)),
    ],
    "IBAN_CODE": [_ibans],
    "CREDIT_CARD": [_cards],
    "US_SSN": [_ssns],
    "IP_ADDRESS": [_ips],
    "DATE_TIME": [_dates],
    "PHONE_NUMBER": [_phones],
}
# Earlier entities win overlaps: an email holds digits a phone pattern could match, a card
# number could look like a phone number, a value after "IMEI" or "MRN" is that identifier
# whatever else it looks like; specific, validated entities go first.
PRIORITY = tuple(RECOGNIZERS)


def find_pii(text: str, entities: Iterable[str], extra: Iterable[Span] = ()) -> list[Span]:
    """Validated pattern matches first (by PRIORITY, then the longest), then ``extra`` spans
    (NER, context rules, term lists) where free."""
    wanted = set(entities)
    spans: list[Span] = []
    for entity in PRIORITY:
        if entity not in wanted:
            continue
        found = sorted({c for finder in RECOGNIZERS[entity] for c in finder(text)}, key=lambda c: (c[0] - c[1], c[0]))
        for s, e in found:
            if not any(x.start < e and s < x.end for x in spans):
                spans.append(Span(s, e, entity, text[s:e]))
    for x in extra:
        if not any(s.start < x.end and x.start < s.end for s in spans):
            spans.append(x)
    return sorted(spans, key=lambda s: s.start)


class Anonymizer:
    """Apply one operator to every detected value.

    ``hash`` and ``pseudonym`` are keyed by ``salt``: the same value gets the same output
    across the corpus (and across runs with the same salt), and nobody without the salt can
    confirm a guessed value by hashing it. ``detect`` replaces :func:`find_pii` (a
    :class:`~nlpforge.corpus.pii_context.PiiDetector` adds context rules and gazetteers);
    ``transform`` may rewrite a span's replacement (a preset's Safe Harbor rules) and returns
    None to keep the default.
    """

    def __init__(
        self,
        entities: list[str] | tuple[str, ...],
        operator: str = "replace",
        salt: str = "",
        mask_char: str = "*",
        mask_keep: int = 4,
        detect: Callable[[str, list[Span]], list[Span]] | None = None,
        transform: Callable[[Span], str | None] | None = None,
    ):
        self.entities, self.operator, self.salt = list(entities), operator, salt
        self.mask_char, self.mask_keep = mask_char, mask_keep
        self.detect = detect or (lambda text, extra: find_pii(text, self.entities, extra))
        self.transform = transform
        self.counts: Counter = Counter()

    def _digest(self, value: str) -> str:
        return hashlib.sha256((self.salt + "\x00" + value).encode()).hexdigest()

    def _replacement(self, span: Span) -> str:
        if self.transform is not None:
            custom = self.transform(span)
            if custom is not None:
                return custom
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
        for span in self.detect(text, list(extra)):
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
