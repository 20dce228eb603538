#!/usr/bin/env python
"""Independent, realistic labelled PII evaluation set (JSONL) with exact character spans.

Written from format specifications (RFC 5321/5322 addresses, RFC 3986 URLs, RFC 4291 / RFC 5952
IPv6 text forms, RFC 4632 CIDR, RFC 4007 zone ids, NANP numbering rules, SSA SSN rules, ISO 8601,
ISO 13616 IBAN mod-97, ISO 3779 VIN check digit, Luhn for cards and IMEIs, the HIPAA Safe Harbor
identifier list) and from how people actually write: chat logs, support tickets, clinical notes,
e-mails with greetings and signatures, and log lines. Values come from Faker (many locales) or are
built from the specs above. It deliberately shares no code with nlpforge's own PII set or detectors.

Record (one JSON object a line)::

    {"id", "genre", "text", "seed",
     "spans": [{"start", "end", "entity", "form", "subtype"?, "locale"?}],
     "negatives": [{"start", "end", "kind"}]}

``text[start:end]`` is exactly the inserted value (asserted at build time); spans never overlap
and negatives never overlap spans. ``form`` names the surface form (e.g. ``ipv6_bracket_port``,
``nanp_nosep``, ``ssn_nosep_ctx``) so recall can be broken down per form.

Labelling conventions (decisions, applied everywhere):

* Entity names follow Presidio: PERSON, LOCATION, DATE_TIME, EMAIL_ADDRESS, PHONE_NUMBER, US_SSN,
  IP_ADDRESS, URL, CREDIT_CARD, IBAN_CODE, plus HIPAA ids named by their context:
  MEDICAL_RECORD_NUMBER, HEALTH_PLAN_ID, ACCOUNT_NUMBER, LICENSE_NUMBER, VEHICLE_ID (VIN, plates),
  DEVICE_ID (serial numbers, IMEI, MAC).
* PERSON: the name only; a courtesy title ("Dr.", "Ms.", "Herr") is NOT part of the span, nor is
  a possessive "'s". "Smith, John" (clinical header order) is one span.
* LOCATION: a full street address "1420 Oak Street, Apt 4B, Denver, CO 80203" is ONE span
  (subtype STREET); a street line alone is STREET; a city ("Denver" or "Denver, CO") is CITY; a
  ZIP or ZIP+4 alone is ZIP.
* DATE_TIME: dates, times and datetimes in every common form; a date and a time written as one
  timestamp ("2024-03-14 10:30:05", "Mar 14 10:30:05") are one span; "on <date> at <time>" is two.
  Ages carry subtype AGE: the span is the number plus its unit when a unit follows ("72-year-old",
  "45 y/o", "45 years old"), and only the number when a cue word precedes ("age 45" -> "45").
* PHONE_NUMBER: includes a "+1"/"1-" country prefix and parentheses around the area code; an
  extension ("x123", "ext. 45") is NOT part of the span.
* IP_ADDRESS: with a port ("1.2.3.4:8080", "[2001:db8::1]:443") only the address is labelled (no
  brackets, no port); CIDR notation ("10.0.0.0/8", "2001:db8::/32") is labelled address+prefix as
  one span; an IPv6 zone id ("fe80::1%eth0") is part of the span.
* URL: the URL without surrounding punctuation ("(", ")", "<", ">", a trailing "." or ","); in a
  markdown link only the target; for "mailto:" links the address is an EMAIL_ADDRESS (the "mailto:"
  is not labelled).
* Hard negatives (order/ticket ids, SKUs, versions, durations, build numbers, clinical values,
  amounts, card last-4s, hashes, UUIDs, bare ports, rooms, model numbers, percentages, HTTP status
  codes, impossible IPv4s, Luhn-failing 16-digit references, phone-shaped numbers with an invalid
  NANP area code in a part-number context, hex error codes, plain job numbers) are listed in
  ``negatives`` and must stay unlabelled. Timestamps are never used as negatives (a timestamp is a
  HIPAA date element).

Seeds: DEV_SEEDS (0..4) for development, TEST_SEEDS (100..104) held out; ``--split dev|test``
picks one list, ``--seeds 0-9`` / ``--seeds 3,7`` overrides it. Output is deterministic per seed.

    python scripts/make_pii_realworld.py --split dev --out /tmp/pii_rw_dev.jsonl
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import re
import string
import sys
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

DEV_SEEDS = (0, 1, 2, 3, 4)
TEST_SEEDS = (100, 101, 102, 103, 104)
DEFAULT_PER_SEED = 600
GENRES = ("chat", "ticket", "clinical", "email", "log")

ENTITIES = (
    "PERSON",
    "LOCATION",
    "DATE_TIME",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "IP_ADDRESS",
    "URL",
    "CREDIT_CARD",
    "IBAN_CODE",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "ACCOUNT_NUMBER",
    "LICENSE_NUMBER",
    "VEHICLE_ID",
    "DEVICE_ID",
)

NAME_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "pt_BR", "ja_JP", "zh_CN", "hi_IN", "en_IN", "nl_NL", "tr_TR", "vi_VN")
ALL_LOCALES = ("en_US", "en_GB", *NAME_LOCALES)

# words that keep their spelling in chat (typos never hit the context cue a detector may need)
CUES = {
    "ssn",
    "social",
    "security",
    "phone",
    "cell",
    "call",
    "email",
    "mail",
    "address",
    "zip",
    "code",
    "mrn",
    "member",
    "account",
    "acct",
    "license",
    "licence",
    "plate",
    "serial",
    "imei",
    "mac",
    "vin",
    "iban",
    "card",
    "credit",
    "visa",
    "number",
    "born",
    "dob",
    "age",
    "aged",
    "ip",
    "from",
    "url",
    "link",
    "site",
    "website",
    "name",
    "this",
    "ext",
    "text",
    "policy",
    "insurance",
    "medicare",
    "record",
    "routing",
}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# real US cities (name, state, 3-digit ZIP prefix)
US_CITIES = [
    ("New York", "NY", "100"),
    ("Brooklyn", "NY", "112"),
    ("Buffalo", "NY", "142"),
    ("Los Angeles", "CA", "900"),
    ("San Diego", "CA", "921"),
    ("San Francisco", "CA", "941"),
    ("Oakland", "CA", "946"),
    ("Sacramento", "CA", "958"),
    ("Fresno", "CA", "937"),
    ("Chicago", "IL", "606"),
    ("Springfield", "IL", "627"),
    ("Houston", "TX", "770"),
    ("Dallas", "TX", "752"),
    ("Austin", "TX", "787"),
    ("San Antonio", "TX", "782"),
    ("El Paso", "TX", "799"),
    ("Phoenix", "AZ", "850"),
    ("Tucson", "AZ", "857"),
    ("Philadelphia", "PA", "191"),
    ("Pittsburgh", "PA", "152"),
    ("Columbus", "OH", "432"),
    ("Cleveland", "OH", "441"),
    ("Cincinnati", "OH", "452"),
    ("Indianapolis", "IN", "462"),
    ("Jacksonville", "FL", "322"),
    ("Miami", "FL", "331"),
    ("Tampa", "FL", "336"),
    ("Orlando", "FL", "328"),
    ("Charlotte", "NC", "282"),
    ("Raleigh", "NC", "276"),
    ("Seattle", "WA", "981"),
    ("Spokane", "WA", "992"),
    ("Denver", "CO", "802"),
    ("Boulder", "CO", "803"),
    ("Boston", "MA", "021"),
    ("Worcester", "MA", "016"),
    ("Nashville", "TN", "372"),
    ("Memphis", "TN", "381"),
    ("Detroit", "MI", "482"),
    ("Ann Arbor", "MI", "481"),
    ("Portland", "OR", "972"),
    ("Eugene", "OR", "974"),
    ("Las Vegas", "NV", "891"),
    ("Reno", "NV", "895"),
    ("Baltimore", "MD", "212"),
    ("Milwaukee", "WI", "532"),
    ("Madison", "WI", "537"),
    ("Albuquerque", "NM", "871"),
    ("Atlanta", "GA", "303"),
    ("Savannah", "GA", "314"),
    ("Omaha", "NE", "681"),
    ("Minneapolis", "MN", "554"),
    ("St. Paul", "MN", "551"),
    ("New Orleans", "LA", "701"),
    ("Baton Rouge", "LA", "708"),
    ("Salt Lake City", "UT", "841"),
    ("Boise", "ID", "837"),
    ("Anchorage", "AK", "995"),
    ("Honolulu", "HI", "968"),
    ("Burlington", "VT", "054"),
    ("Providence", "RI", "029"),
    ("Hartford", "CT", "061"),
    ("Newark", "NJ", "071"),
    ("Jersey City", "NJ", "073"),
    ("Richmond", "VA", "232"),
    ("Arlington", "VA", "222"),
    ("Louisville", "KY", "402"),
    ("Kansas City", "MO", "641"),
    ("St. Louis", "MO", "631"),
    ("Tulsa", "OK", "741"),
    ("Des Moines", "IA", "503"),
    ("Little Rock", "AR", "722"),
    ("Birmingham", "AL", "352"),
    ("Charleston", "SC", "294"),
    ("Fargo", "ND", "581"),
]
STREET_NAMES = [
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Elm",
    "Pine",
    "Washington",
    "Lincoln",
    "Park",
    "Lake",
    "Hill",
    "Sunset",
    "Highland",
    "Church",
    "Mill",
    "Spring",
    "Ridge",
    "Walnut",
    "Chestnut",
    "Jefferson",
    "Madison",
    "Franklin",
    "River",
    "Forest",
    "Meadow",
    "Willow",
    "Broad",
    "Market",
    "1st",
    "2nd",
    "3rd",
    "5th",
    "12th",
    "42nd",
    "Martin Luther King Jr",
    "Old Mill",
    "North Lake",
    "West End",
    "Cherry Creek",
    "Peachtree",
]
STREET_SUFFIXES = ["St", "St.", "Street", "Ave", "Ave.", "Avenue", "Blvd", "Boulevard", "Rd", "Road", "Dr", "Drive", "Ln", "Lane", "Ct", "Court", "Way", "Pl", "Place", "Pkwy", "Terrace", "Circle"]
UNITS = ["Apt 4B", "Apt. 12", "Suite 210", "Ste 300", "#12", "Unit 3", "Apt 1107", "Fl 2"]
DIRECTIONS = ["N", "S", "E", "W", "North", "South", "NE", "SW"]

COMPANIES = [
    "Northwind Logistics",
    "Acme Corp",
    "Bluebird Analytics",
    "Harbor Health",
    "Summit Dental",
    "Crestline Insurance",
    "Pinecone Labs",
    "Lakeside Clinic",
    "Ironclad Storage",
    "Brightpath Telecom",
]
FREE_MAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "proton.me", "gmx.de", "web.de", "orange.fr", "libero.it", "wp.pl", "uol.com.br", "comcast.net"]
TLDS_EXTRA = ["io", "co", "org", "net", "dev", "health", "co.uk", "com.au", "de"]
IFACES = ["eth0", "en0", "wlan0", "ens192", "3", "enp0s31f6", "lo"]

TITLES_EN = ["Dr.", "Dr", "Mr.", "Ms.", "Mrs.", "Prof.", "Mx."]
TITLES_INTL = {"de_DE": ["Herr", "Frau", "Dr."], "fr_FR": ["M.", "Mme", "Dr"], "es_ES": ["Sr.", "Sra.", "Dra."], "it_IT": ["Sig.", "Sig.ra", "Dott."], "pt_BR": ["Sr.", "Sra.", "Dra."]}


# ---------------------------------------------------------------------------------------------
# text builder


def E(value: str, entity: str, form: str, subtype: str | None = None, **extra) -> tuple:
    return ("E", value, entity, form, subtype, extra)


def N(value: str, kind: str) -> tuple:
    return ("N", value, kind)


def R(value: str) -> tuple:
    """Raw text written verbatim (never chat-ified), e.g. a phone extension."""
    return ("R", value)


_LEAD = re.compile(r"^[^\w\s]*")
_TRAIL = re.compile(r"[^\w\s]*$")
_CHAT_STRIP = re.compile(r"[.,;:!?'\"]")


@dataclass
class Doc:
    rng: random.Random
    style: str  # chat | prose | log
    parts: list[str] = field(default_factory=list)
    n: int = 0
    spans: list[dict] = field(default_factory=list)
    negatives: list[dict] = field(default_factory=list)
    cap_next: bool = False  # prose: capitalise the first filler letter of a sentence

    def _put(self, s: str) -> None:
        self.parts.append(s)
        self.n += len(s)

    def raw(self, s: str) -> None:
        self._put(s)

    def text(self, s: str) -> None:
        """Filler: in chat it is lower-cased, loses its punctuation and gets the odd typo."""
        if self.style == "chat" and s:
            s = _chatify(s, self.rng)
        elif self.cap_next and s[:1].isalpha() and not re.match(r"\S*[_=]", s):  # keep key=value / snake_case keys as written
            s = s[0].upper() + s[1:]
        self.cap_next = False
        self._put(s)

    def item(self, it: tuple) -> None:
        self.cap_next = False
        if it[0] == "R":
            self._put(it[1])
            return
        start = self.n
        self._put(it[1])
        if it[0] == "E":
            _, value, entity, form, subtype, extra = it
            span = {"start": start, "end": self.n, "entity": entity, "form": form}
            if subtype:
                span["subtype"] = subtype
            span.update(extra)
            span["_value"] = value
            self.spans.append(span)
        else:
            _, value, kind = it
            self.negatives.append({"start": start, "end": self.n, "kind": kind, "_value": value})

    def fill(self, tpl: str, *items: tuple) -> None:
        """Write a template whose "{}" are replaced by items. Punctuation glued to a placeholder
        (brackets, quotes, a trailing comma) is written raw so it survives chat styling."""
        pieces = tpl.split("{}")
        assert len(pieces) == len(items) + 1, (tpl, items)
        for k, piece in enumerate(pieces):
            lead = trail = ""
            if k > 0:
                lead = _LEAD.match(piece).group()
                piece = piece[len(lead) :]
            if k < len(items) and piece:
                trail = _TRAIL.search(piece).group()
                piece = piece[: len(piece) - len(trail)]
            self.raw(lead)
            self.text(piece)
            self.raw(trail)
            if k < len(items):
                self.item(items[k])

    def end_sentence(self, rng: random.Random) -> None:
        if self.style == "prose":
            self.raw(rng.choices([".", "!", "?", ""], [80, 5, 5, 10])[0])

    def record(self) -> tuple[str, list[dict], list[dict]]:
        text = "".join(self.parts)
        for s in self.spans + self.negatives:
            assert text[s["start"] : s["end"]] == s.pop("_value"), s
        return text, self.spans, self.negatives


def _chatify(s: str, rng: random.Random) -> str:
    s = _CHAT_STRIP.sub("", s.lower())
    out = []
    for w in re.split(r"(\s+)", s):
        if len(w) >= 4 and w.isalpha() and w not in CUES and rng.random() < 0.07:
            i = rng.randrange(len(w) - 1)
            op = rng.randrange(3)
            if op == 0:
                w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]  # swap
            elif op == 1:
                w = w[:i] + w[i + 1 :]  # drop
            else:
                w = w[: i + 1] + w[i] + w[i + 1 :]  # double
        out.append(w)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# value generators (from the specs)


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(digits: str) -> bool:
    return luhn_check_digit(digits[:-1]) == digits[-1]


def iban_check(country: str, bban: str) -> str:
    num = "".join(str(int(c, 36)) for c in (bban + country + "00"))
    return f"{98 - int(num) % 97:02d}"


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


IBAN_BBAN = {  # country -> BBAN layout (n digits / a upper letters / c alnum), ISO 13616 registry lengths
    "DE": [("n", 8), ("n", 10)],
    "GB": [("a", 4), ("n", 6), ("n", 8)],
    "FR": [("n", 5), ("n", 5), ("c", 11), ("n", 2)],
    "ES": [("n", 4), ("n", 4), ("n", 2), ("n", 10)],
    "IT": [("a", 1), ("n", 5), ("n", 5), ("c", 12)],
    "NL": [("a", 4), ("n", 10)],
    "BE": [("n", 3), ("n", 7), ("n", 2)],
    "PL": [("n", 8), ("n", 16)],
    "CH": [("n", 5), ("c", 12)],
    "AT": [("n", 5), ("n", 11)],
}
VIN_TRANS = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
MBI_ALPHA = "ACDEFGHJKMNPQRTUVWXY"  # CMS MBI letters: no S, L, O, I, B, Z


def vin_ok(vin: str) -> bool:
    total = sum(VIN_TRANS[c] * w for c, w in zip(vin, VIN_WEIGHTS))
    r = total % 11
    return vin[8] == ("X" if r == 10 else str(r))


class Gen:
    """All randomness for one seed."""

    def __init__(self, seed: int):
        from faker import Faker

        self.seed = seed
        self.rng = random.Random(seed * 7919 + 17)
        self.fk = {}
        for loc in ALL_LOCALES:
            f = Faker(loc)
            f.seed_instance(seed * 1_000_003 + zlib.crc32(loc.encode()))
            for prov in f.get_providers():  # it_IT builds its city list from a set: fix its order (PYTHONHASHSEED)
                if isinstance(getattr(prov, "cities", None), list):
                    prov.cities = sorted(prov.cities)
            self.fk[loc] = f
        self.en = self.fk["en_US"]

    # -- small helpers
    def pick(self, seq):
        return self.rng.choice(seq)

    def digits(self, n: int, first_nonzero: bool = False) -> str:
        s = "".join(self.rng.choice(string.digits) for _ in range(n))
        if first_nonzero and s[0] == "0":
            s = str(self.rng.randint(1, 9)) + s[1:]
        return s

    def letters(self, n: int, alphabet: str = string.ascii_uppercase) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def alnum(self, n: int) -> str:
        return self.letters(n, string.ascii_uppercase + string.digits)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- people
    def person(self, locale: str | None = None) -> tuple[str, str, str]:
        if locale is None:
            r = self.rng.random()
            locale = "en_US" if r < 0.55 else "en_GB" if r < 0.62 else self.pick(NAME_LOCALES)
        f = self.fk[locale]
        if locale in ("ja_JP", "zh_CN") and self.chance(0.7):
            first, last = f.first_romanized_name(), f.last_romanized_name()
        else:
            first, last = f.first_name(), f.last_name()
        return first, last, locale

    def full_name(self, first: str, last: str, locale: str) -> str:
        if locale in ("ja_JP", "zh_CN") and not first.isascii():
            return last + first if self.chance(0.5) else f"{last} {first}"
        return f"{first} {last}"

    @staticmethod
    def ascii_fold(s: str) -> str:
        return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower().replace(" ", "")

    def email(self, first: str | None = None, last: str | None = None) -> str:
        if first is None:
            first, last, _ = self.person("en_US")
        f, ln = self.ascii_fold(first), self.ascii_fold(last or "")
        if not f or not ln:
            f, ln = self.ascii_fold(self.en.first_name()), self.ascii_fold(self.en.last_name())
        local = self.pick([f"{f}.{ln}", f"{f[0]}{ln}", f"{f}_{ln}{self.rng.randint(1, 99)}", f"{f}{ln[0]}", f"{ln}.{f}", self.en.user_name(), f"{f}{self.rng.randint(1970, 2005)}"])
        domain = self.pick(FREE_MAIL) if self.chance(0.55) else self.domain()
        return f"{local}@{domain}"

    def domain(self) -> str:
        d = self.en.domain_name()
        if self.chance(0.25):
            d = d.rsplit(".", 1)[0] + "." + self.pick(TLDS_EXTRA)
        return d

    # -- phones (NANP: NPA and NXX start 2-9, NPA middle digit 0-8, neither is N11)
    def nanp(self) -> tuple[str, str, str]:
        while True:
            npa = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 8)}{self.rng.randint(0, 9)}"
            if npa[1:] != "11":
                break
        while True:
            nxx = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 9)}{self.rng.randint(0, 9)}"
            if nxx[1:] != "11":
                break
        return npa, nxx, self.digits(4)

    def ssn(self) -> tuple[str, str, str]:
        while True:
            area = self.rng.randint(1, 899)
            if area != 666:
                break
        return f"{area:03d}", f"{self.rng.randint(1, 99):02d}", f"{self.rng.randint(1, 9999):04d}"

    # -- network
    def ipv4(self, kind: str = "any") -> str:
        if kind == "private" or (kind == "any" and self.chance(0.35)):
            r = self.rng.randrange(3)
            if r == 0:
                return f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            if r == 1:
                return f"172.{self.rng.randint(16, 31)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            return f"192.168.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
        while True:
            a = self.rng.randint(1, 223)
            if a not in (10, 127, 172, 192, 169, 100):
                break
        return f"{a}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def ipv6_int(self, zero_run: bool) -> int:
        g = [self.rng.randrange(0x10000) for _ in range(8)]
        g[0] = self.pick([0x2001, 0x2600, 0x2607, 0x2A00, 0x2A02, 0x2C0F, 0x2403, 0xFD12])
        if g[0] == 0x2001 and self.chance(0.6):
            g[1] = 0x0DB8
        for i in range(2, 8):  # real addresses have many short groups
            if self.chance(0.3):
                g[i] = self.rng.randrange(0x100)
        if zero_run:
            k = self.rng.randint(2, 5)
            pos = self.rng.randint(2, 7 - k)  # keep a non-zero last group: a bare trailing "::" is its own form
            for j in range(k):
                g[pos + j] = 0
            g[7] = g[7] or 1
        else:
            g = [x or 1 for x in g]
        return int("".join(f"{x:04x}" for x in g), 16)

    def ipv6(self, form: str) -> str:
        if form == "ipv6_full":
            a = self.ipv6_int(zero_run=self.chance(0.3))
            return ":".join(f"{(a >> (16 * (7 - i))) & 0xFFFF:04x}" for i in range(8))
        if form == "ipv6_full_nopad":
            a = self.ipv6_int(zero_run=self.chance(0.3))
            return ":".join(f"{(a >> (16 * (7 - i))) & 0xFFFF:x}" for i in range(8))
        if form == "ipv6_compressed":
            return str(ipaddress.IPv6Address(self.ipv6_int(zero_run=True)))
        if form == "ipv6_upper":
            return str(ipaddress.IPv6Address(self.ipv6_int(zero_run=self.chance(0.7)))).upper()
        if form == "ipv6_leading":
            return self.pick(["::1", "::1", "::2", f"::{self.rng.randint(1, 0xFFFF):x}:{self.rng.randint(1, 0xFFFF):x}"])
        if form == "ipv6_trailing":
            return self.pick(["fe80::", "2001:db8::", f"2001:db8:{self.rng.randint(1, 0xFFFF):x}::", f"2a02:{self.rng.randint(0x100, 0xFFFF):x}::", "ff02::"])
        if form == "ipv6_v4mapped":
            pref = self.pick(["::ffff:", "::ffff:", "::FFFF:", "64:ff9b::"])
            return pref + self.ipv4()
        if form == "ipv6_zone":
            iid = self.pick(["1", f"{self.rng.randint(1, 0xFFFF):x}", str(ipaddress.IPv6Address(self.ipv6_int(False))).split(":", 4)[-1]])
            return f"fe80::{iid}%{self.pick(IFACES)}"
        if form == "ipv6_cidr":
            a = ipaddress.IPv6Address(self.ipv6_int(False))
            plen = self.pick([32, 48, 56, 64])
            return str(ipaddress.IPv6Network(f"{a}/{plen}", strict=False))
        raise ValueError(form)

    def ipv4_cidr(self) -> str:
        plen = self.pick([8, 12, 16, 20, 22, 24, 24, 24, 28, 32])
        return str(ipaddress.IPv4Network(f"{self.ipv4()}/{plen}", strict=False))

    def url(self, form: str) -> str:
        dom = self.domain()
        path = self.pick(["", "/", f"/{self.en.uri_path()}", f"/{self.en.uri_path()}", f"/{self.en.word()}/{self.en.slug()}", "/support/ticket", "/login", "/en-us/account/settings"])
        query = self.pick(
            [
                "",
                "",
                "",
                f"?id={self.rng.randint(10, 99999)}",
                f"?q={self.en.word()}&page={self.rng.randint(1, 9)}",
                f"?utm_source=email&utm_campaign={self.en.word()}",
                f"?ref={self.alnum(6).lower()}",
            ]
        )
        if form in ("url_scheme", "url_markdown", "url_angle", "url_paren"):
            return f"{self.pick(['https', 'https', 'https', 'http'])}://{self.pick(['', '', 'www.', 'app.', 'portal.', 'docs.'])}{dom}{path}{query}"
        if form == "url_http":
            return f"http://{dom}{path}{query}"
        if form == "url_port_fragment":
            return f"https://{self.pick(['portal.', 'api.', ''])}{dom}:{self.pick([8443, 8080, 3000, 9000])}{path or '/'}{query}#{self.en.word()}"
        if form == "url_www":
            return f"www.{dom}{self.pick(['', '', '/contact', '/help', path])}"
        if form == "url_bare_path":
            return f"{dom}{self.pick(['/help', '/pricing', path or '/docs', '/reset-password'])}{query or '?q=1'}"
        if form == "url_bare_domain":
            return dom
        raise ValueError(form)

    # -- dates
    def date(self, lo: int = 2018, hi: int = 2026) -> tuple[int, int, int]:
        y = self.rng.randint(lo, hi)
        m = self.rng.randint(1, 12)
        d = self.rng.randint(1, [31, 29 if y % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1])
        return y, m, d

    @staticmethod
    def ordinal(d: int) -> str:
        suf = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
        return f"{d}{suf}"

    def date_str(self, form: str, dob: bool = False) -> str:
        y, m, d = self.date(1930, 2006) if dob else self.date()
        mon, mab = MONTHS[m - 1], MONTHS[m - 1][:3]
        if form == "date_mdy_slash":
            return f"{m:02d}/{d:02d}/{y}"
        if form == "date_mdy_short":
            return f"{m}/{d}/{y % 100:02d}"
        if form == "date_mdy_nopad":
            return f"{m}/{d}/{y}"
        if form == "date_iso":
            return f"{y}-{m:02d}-{d:02d}"
        if form == "date_dmy_long":
            return f"{d} {mon} {y}"
        if form == "date_mdy_long_ord":
            return f"{mon} {self.ordinal(d)}, {y}"
        if form == "date_mdy_long":
            return f"{mon} {d}, {y}"
        if form == "date_mon_day":
            return self.pick([f"{mab} {d}", f"{mab}. {d}", f"{mon} {d}", f"{mab} {self.ordinal(d)}"])
        if form == "date_mon_day_year":
            return self.pick([f"{mab} {d}, {y}", f"{mab}. {d}, {y}", f"{d}-{mab}-{y}", f"{d:02d}-{mab.upper()}-{y}"])
        if form == "date_dmy_dot":
            return f"{d:02d}.{m:02d}.{y}"
        if form == "date_dmy_slash":
            return f"{d:02d}/{m:02d}/{y}"
        if form == "date_month_year":
            return self.pick([f"{mon} {y}", f"{mab} {y}", f"{m:02d}/{y}"])
        if form == "date_weekday":
            wd = self.pick(WEEKDAYS)
            return self.pick([f"{wd}, {mon} {d}, {y}", f"{wd[:3]}, {d} {mab} {y}", f"{wd} {mon} {self.ordinal(d)}"])
        raise ValueError(form)

    def time_str(self, form: str) -> str:
        h, mm, ss = self.rng.randint(0, 23), self.rng.randint(0, 59), self.rng.randint(0, 59)
        if form == "time_12h":
            h12 = h % 12 or 12
            ap = self.pick(["am", "pm", "AM", "PM", "a.m.", "p.m."])
            if self.chance(0.25):
                return f"{h12}{self.pick(['', ' '])}{ap}"
            return f"{h12}:{mm:02d}{self.pick([' ', ' ', ''])}{ap}"
        if form == "time_24h":
            return f"{h:02d}:{mm:02d}" if self.chance(0.7) else f"{h:02d}:{mm:02d}:{ss:02d}"
        raise ValueError(form)

    def datetime_str(self, form: str) -> str:
        y, m, d = self.date()
        h, mm, ss = self.rng.randint(0, 23), self.rng.randint(0, 59), self.rng.randint(0, 59)
        iso = f"{y}-{m:02d}-{d:02d}T{h:02d}:{mm:02d}:{ss:02d}"
        if form == "datetime_iso":
            return self.pick([iso + "Z", iso + f".{self.digits(3)}Z", iso + self.pick(["+02:00", "-05:00", "+05:30", "+00:00"]), iso, f"{y}-{m:02d}-{d:02d}T{h:02d}:{mm:02d}Z"])
        if form == "datetime_log":
            return self.pick([f"{y}-{m:02d}-{d:02d} {h:02d}:{mm:02d}:{ss:02d}", f"{y}-{m:02d}-{d:02d} {h:02d}:{mm:02d}:{ss:02d},{self.digits(3)}", f"{y}/{m:02d}/{d:02d} {h:02d}:{mm:02d}:{ss:02d}"])
        if form == "datetime_syslog":
            return f"{MONTHS[m - 1][:3]} {d:2d} {h:02d}:{mm:02d}:{ss:02d}"
        if form == "datetime_us":
            h12 = h % 12 or 12
            return f"{m:02d}/{d:02d}/{y} {h12}:{mm:02d} {self.pick(['AM', 'PM'])}"
        raise ValueError(form)

    # -- money / banking
    def card(self) -> tuple[str, str]:
        brand = self.pick(["visa", "visa", "mc", "mc2", "amex", "discover"])
        if brand == "visa":
            body = "4" + self.digits(14)
        elif brand == "mc":
            body = f"5{self.rng.randint(1, 5)}" + self.digits(13)
        elif brand == "mc2":
            body = str(self.rng.randint(2221, 2720)) + self.digits(11)
        elif brand == "amex":
            body = self.pick(["34", "37"]) + self.digits(12)
        else:
            body = self.pick(["6011", "65" + self.digits(2)]) + self.digits(11)
        return body + luhn_check_digit(body), brand

    def group_card(self, num: str, sep: str) -> str:
        if len(num) == 15:
            return sep.join([num[:4], num[4:10], num[10:]])
        return sep.join(num[i : i + 4] for i in range(0, len(num), 4))

    def iban(self) -> str:
        cc = self.pick(list(IBAN_BBAN))
        bban = ""
        for kind, n in IBAN_BBAN[cc]:
            if kind == "c":  # alphanumeric field: mostly digits in practice
                bban += "".join(self.pick(string.ascii_uppercase) if self.chance(0.1) else self.pick(string.digits) for _ in range(n))
            else:
                bban += self.digits(n) if kind == "n" else self.letters(n)
        return cc + iban_check(cc, bban) + bban

    # -- HIPAA ids
    def vin(self) -> str:
        wmi = self.pick(["1HG", "1FT", "1G1", "WVW", "JHM", "5YJ", "3VW", "2T1", "KMH", "WBA", "JTD", "1C4", "4T1", "SAL"])
        body = wmi + "".join(self.pick(VIN_CHARS) for _ in range(5)) + "0" + self.pick("ABCDEFGHJKLMNPRSTVWXY123456789") + "".join(self.pick(VIN_CHARS) for _ in range(7))
        total = sum(VIN_TRANS[c] * w for c, w in zip(body, VIN_WEIGHTS))
        r = total % 11
        return body[:8] + ("X" if r == 10 else str(r)) + body[9:]

    def plate(self) -> str:
        return self.pick(
            [
                f"{self.rng.randint(1, 9)}{self.letters(3)}{self.digits(3)}",
                f"{self.letters(3)}-{self.digits(4)}",
                f"{self.letters(3)} {self.digits(4)}",
                f"{self.letters(2)}{self.digits(2)} {self.letters(3)}",
                f"{self.digits(3)} {self.letters(3)}",
            ]
        )

    def imei(self) -> str:
        body = self.pick(["35209900", "35332509", "86891303", "49015420", "01326300"]) + self.digits(6)
        return body + luhn_check_digit(body)

    def mac(self) -> str:
        octs = [self.rng.randrange(256) for _ in range(6)]
        octs[0] &= 0xFC
        sep = self.pick([":", ":", "-"])
        s = sep.join(f"{o:02x}" for o in octs)
        return s.upper() if self.chance(0.5) else s

    def dea(self, last: str) -> str:
        first = self.pick("ABFGMPR")
        second = (self.ascii_fold(last)[:1] or "x").upper()
        d = [self.rng.randint(0, 9) for _ in range(6)]
        chk = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
        return first + second + "".join(map(str, d)) + str(chk)

    def mbi(self) -> str:
        an = MBI_ALPHA + string.digits
        s = (
            str(self.rng.randint(1, 9))
            + self.pick(MBI_ALPHA)
            + self.pick(an)
            + self.digits(1)
            + self.pick(MBI_ALPHA)
            + self.pick(an)
            + self.digits(1)
            + self.pick(MBI_ALPHA)
            + self.pick(MBI_ALPHA)
            + self.digits(2)
        )
        return s if self.chance(0.5) else f"{s[:4]}-{s[4:7]}-{s[7:]}"

    # -- places
    def us_city(self) -> tuple[str, str, str]:
        name, st, zp = self.pick(US_CITIES)
        return name, st, zp + self.digits(2)

    def street(self) -> str:
        num = self.pick([str(self.rng.randint(1, 99)), str(self.rng.randint(100, 999)), str(self.rng.randint(1000, 19999))])
        name = self.pick(STREET_NAMES) if self.chance(0.8) else self.en.last_name()
        s = f"{num} {self.pick(DIRECTIONS) + ' ' if self.chance(0.15) else ''}{name} {self.pick(STREET_SUFFIXES)}"
        if self.chance(0.3):
            s += self.pick([", ", " "]) + self.pick(UNITS)
        return s

    def full_address(self) -> str:
        city, st, zp = self.us_city()
        if self.chance(0.2):
            zp += "-" + self.digits(4)
        return f"{self.street()}, {city}, {st} {zp}"

    def intl_address(self) -> str:
        loc = self.pick(["de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL"])
        f = self.fk[loc]
        street = " ".join(f.street_address().split())
        return f"{street}, {f.postcode()} {f.city()}"


# ---------------------------------------------------------------------------------------------
# slots: one sentence that carries one surface form (with its context)

SLOTS: list[tuple[str, object]] = []


def slot(name: str):
    def deco(fn):
        SLOTS.append((name, fn))
        return fn

    return deco


def _case(d: Doc, g: Gen, value: str, p: float = 0.85) -> str:
    return value.lower() if d.style == "chat" and g.chance(p) else value


def _name_item(d: Doc, g: Gen, form: str, locale: str | None = None) -> tuple:
    first, last, loc = g.person(locale)
    name = _case(d, g, g.full_name(first, last, loc))
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    return E(name, "PERSON", form, **extra)


# -- PERSON
@slot("person_full")
def _(d, g):
    tpl = g.pick(
        [
            "I spoke with {} about the refund",
            "Please forward this to {}",
            "{} called about the invoice",
            "Assigned to {}",
            "Referred by {}",
            "Patient {} was seen in clinic",
            "cc {}",
            "{} will cover the desk",
            "Escalated by {} from billing",
            "Spouse {} is the emergency contact",
        ]
    )
    d.fill(tpl, _name_item(d, g, "person_full", locale=g.pick(["en_US", "en_US", "en_GB"])))


@slot("person_title_last")
def _(d, g):
    first, last, loc = g.person()
    title = g.pick(TITLES_INTL.get(loc, TITLES_EN)) if g.chance(0.5) else g.pick(TITLES_EN)
    tpl = g.pick(["{} {} will review the results", "I have an appointment with {} {}", "Per {} {}, hold the medication", "Thanks {} {}", "Seen by {} {}", "please ask {} {} to call me"])
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    d.fill(tpl, R(title) if d.style != "chat" else R(title.lower().rstrip(".")), E(_case(d, g, last), "PERSON", "person_title_last", **extra))


@slot("person_title_full")
def _(d, g):
    first, last, loc = g.person()
    title = g.pick(TITLES_EN)
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    d.fill(
        g.pick(["Attending: {} {}", "Consult requested from {} {}", "Dear {} {}", "Our account manager {} {} will follow up"]),
        R(title),
        E(_case(d, g, g.full_name(first, last, loc)), "PERSON", "person_title_full", **extra),
    )


@slot("person_my_name_is")
def _(d, g):
    d.fill(
        g.pick(["My name is {} and I need help with my order", "Hi, my name is {}", "my name's {}", "Hello, this is {} calling back", "I am {}, the account holder"]),
        _name_item(d, g, "person_my_name_is"),
    )


@slot("person_lower")
def _(d, g):
    first, last, loc = g.person()
    name = g.full_name(first, last, loc).lower()
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    d.fill(g.pick(["this is {}", "hey its {} again", "{} here", "im {} btw", "u can ask for {}"]), E(name, "PERSON", "person_lower", **extra))


@slot("person_intl")
def _(d, g):
    tpl = g.pick(["I spoke with {} about the refund", "The form was signed by {}", "Contact person: {}", "{} from our European team says hi", "Booking is under {}", "{} checked in at the front desk"])
    d.fill(tpl, _name_item(d, g, "person_intl", locale=g.pick(NAME_LOCALES)))


@slot("person_initial")
def _(d, g):
    first, last, loc = g.person("en_US")
    d.fill(g.pick(["Approved by {}", "Tech: {}", "Per {}"]), E(f"{first[0]}. {last}", "PERSON", "person_initial"))


@slot("person_possessive")
def _(d, g):
    d.fill(g.pick(["{}'s laptop was replaced", "Updated {}'s mailing preferences", "{}'s insurance card is attached"]), _name_item(d, g, "person_possessive"))


@slot("person_two_names")
def _(d, g):
    d.fill(g.pick(["Both {} and {} were on the call", "Parents: {} and {}", "{} handed the case to {}"]), _name_item(d, g, "person_two_names"), _name_item(d, g, "person_two_names"))


# -- LOCATION
@slot("addr_full")
def _(d, g):
    d.fill(
        g.pick(["Please ship it to {}", "My address is {}", "Address: {}", "Mail the check to {}", "Patient lives at {}", "new billing address {}", "The package went to {} instead"]),
        E(_case(d, g, g.full_address(), 0.5), "LOCATION", "addr_full", "STREET"),
    )


@slot("addr_street")
def _(d, g):
    d.fill(
        g.pick(["I live at {} near the park", "The office at {} is closed", "Leave it at the back door of {}", "Meet me at {}", "we moved to {} last spring"]),
        E(_case(d, g, g.street(), 0.5), "LOCATION", "addr_street", "STREET"),
    )


@slot("addr_intl")
def _(d, g):
    d.fill(g.pick(["Our European office is at {}", "Delivery address: {}", "Please use {} for the return"]), E(g.intl_address(), "LOCATION", "addr_intl", "STREET"))


@slot("city")
def _(d, g):
    name = g.us_city()[0] if g.chance(0.75) else g.fk[g.pick(["de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "nl_NL"])].city()
    d.fill(
        g.pick(["I'm based in {}", "Flying to {} for the conference", "The patient recently moved from {}", "Our {} warehouse is backed up", "Is the {} branch open", "she grew up in {}"]),
        E(_case(d, g, name), "LOCATION", "city", "CITY"),
    )


@slot("city_state")
def _(d, g):
    city, st, _ = g.us_city()
    d.fill(g.pick(["Location: {}", "Resides in {} with her daughter", "Shipping from {}", "relocating to {} soon"]), E(_case(d, g, f"{city}, {st}", 0.4), "LOCATION", "city_state", "CITY"))


@slot("zip5")
def _(d, g):
    d.fill(g.pick(["zip {}", "ZIP code: {}", "my zip is {}", "Delivery area {} is delayed", "postal code {}"]), E(g.us_city()[2], "LOCATION", "zip5", "ZIP"))


@slot("zip4")
def _(d, g):
    d.fill(g.pick(["ZIP: {}", "zip code {}", "use ZIP+4 {} on the form"]), E(g.us_city()[2] + "-" + g.digits(4), "LOCATION", "zip4", "ZIP"))


# -- DATE_TIME
for _form, _tpls, _dob in [
    ("date_mdy_slash", ["DOB: {}", "Date of birth {}", "The invoice dated {} is unpaid", "Last visit {}", "Admitted {}", "born {}"], None),
    ("date_mdy_short", ["seen {}", "DOB {}", "Started the new dose {}", "f/u {}", "Shipped {}"], None),
    ("date_mdy_nopad", ["Appointment on {}", "The lease ends {}", "returned it on {}", "DOB: {}"], None),
    ("date_iso", ["Date of service: {}", "Expires {}", "Scheduled for {}", "dob={}", "Report generated {}"], None),
    ("date_dmy_long", ["The meeting is on {}", "Signed on {}", "born on {}", "Discharged {}"], None),
    ("date_mdy_long_ord", ["Your appointment is on {}", "We received it on {}", "Her birthday is {}"], None),
    ("date_mdy_long", ["Effective {}", "Date: {}", "Surgery was on {}"], None),
    ("date_mon_day", ["see you {}", "Due {}", "The outage on {} lasted a while", "Pick up on {}"], None),
    ("date_mon_day_year", ["Last updated {}", "Admission date: {}", "Test collected {}"], None),
    ("date_dmy_dot", ["Geburtsdatum {}", "Order placed {}", "Vaccinated on {}"], None),
    ("date_dmy_slash", ["Date of birth (UK format): {}", "Arrived {}"], None),
    ("date_month_year", ["Diagnosed in {}", "Member since {}", "Last colonoscopy {}"], None),
    ("date_weekday", ["Can we meet {}", "The clinic is closed {}", "Rescheduled to {}"], None),
]:

    def _mk(form=_form, tpls=_tpls):
        def fn(d, g):
            tpl = g.pick(tpls)
            dob = any(w in tpl.lower() for w in ("dob", "birth", "born", "geburt"))
            d.fill(tpl, E(g.date_str(form, dob=dob), "DATE_TIME", form))

        return fn

    slot(_form)(_mk())


@slot("time_12h")
def _(d, g):
    d.fill(
        g.pick(["Call me after {} please", "The pharmacy closes at {} on weekdays", "Took the first dose at {} with food", "we open at {} sharp"]), E(g.time_str("time_12h"), "DATE_TIME", "time_12h")
    )


@slot("time_24h")
def _(d, g):
    d.fill(g.pick(["The job failed at {} again", "Meds given at {}", "Shift starts {}", "last login {}"]), E(g.time_str("time_24h"), "DATE_TIME", "time_24h"))


@slot("date_and_time")
def _(d, g):
    d.fill(
        g.pick(["Your appointment is on {} at {}", "Scheduled {} at {}", "The incident began {} around {}"]),
        E(g.date_str(g.pick(["date_mdy_slash", "date_mdy_long", "date_iso", "date_mon_day"])), "DATE_TIME", "date_and_time"),
        E(g.time_str(g.pick(["time_12h", "time_24h"])), "DATE_TIME", "date_and_time"),
    )


@slot("datetime_iso")
def _(d, g):
    d.fill(g.pick(["created_at={}", "Timestamp: {}", "The token expired at {}", "last seen {}"]), E(g.datetime_str("datetime_iso"), "DATE_TIME", "datetime_iso"))


@slot("datetime_us")
def _(d, g):
    d.fill(g.pick(["Submitted {}", "Received: {}", "Voicemail left {}"]), E(g.datetime_str("datetime_us"), "DATE_TIME", "datetime_us"))


for _form, _tpls in [
    ("age_hyphen", ["A {} male presents with chest pain", "{} woman with a history of asthma", "Pt is a {} retired teacher", "my dad is a {} veteran"]),
    ("age_yo", ["{} F with hx of diabetes", "{} M here for follow up", "my son is {}"]),
    ("age_cue", ["Patient, age {}, reports dizziness", "aged {}, no prior surgeries", "Age: {}", "a man aged {} was admitted"]),
    ("age_years_old", ["She is {}", "I'm {} and never had this before", "The patient is {} and lives alone"]),
]:

    def _mk_age(form=_form, tpls=_tpls):
        def fn(d, g):
            tpl = g.pick(tpls)
            n = g.rng.randint(18, 97) if g.chance(0.85) else g.rng.randint(1, 17)
            if form == "age_hyphen":
                v = g.pick([f"{n}-year-old", f"{n} year old", f"{n}-yr-old"])
            elif form == "age_yo":
                v = g.pick([f"{n} y/o", f"{n} yo", f"{n}yo", f"{n} y.o."])
            elif form == "age_cue":
                v = str(n)  # the cue word ("age", "aged") is context, not part of the span
            else:
                v = g.pick([f"{n} years old", f"{n} years of age", f"{n} yrs old"])
            d.fill(tpl, E(v, "DATE_TIME", form, "AGE"))

        return fn

    slot(_form)(_mk_age())


# -- EMAIL_ADDRESS
@slot("email_plain")
def _(d, g):
    first, last, _ = g.person()
    d.fill(
        g.pick(["Email me at {}", "Email: {}", "Send the form to {}", "my email is {}", "You can contact {} for access", "reply-to {}", "E-mail address on file: {}"]),
        E(g.email(first, last), "EMAIL_ADDRESS", "email_plain"),
    )


@slot("email_angle")
def _(d, g):
    first, last, loc = g.person()
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    d.fill(
        g.pick(["From: {} <{}>", "cc: {} <{}>", "Forwarded message from {} <{}>"]),
        E(g.full_name(first, last, loc), "PERSON", "person_mailbox", **extra),
        E(g.email(first, last), "EMAIL_ADDRESS", "email_angle"),
    )


@slot("email_mailto_md")
def _(d, g):
    d.fill(g.pick(["[Email support](mailto:{})", "Questions? [Contact us](mailto:{})"]), E(g.email(), "EMAIL_ADDRESS", "email_mailto_md"))


@slot("email_paren")
def _(d, g):
    d.fill(g.pick(["Contact the owner ({}) first", "Loop in the backup ({})", "the admin ({}) approved it"]), E(g.email(), "EMAIL_ADDRESS", "email_paren"))


@slot("email_quoted")
def _(d, g):
    d.fill(g.pick(['The address "{}" bounced', "It says '{}' is not registered", 'login: "{}"']), E(g.email(), "EMAIL_ADDRESS", "email_quoted"))


@slot("email_plus_sub")
def _(d, g):
    first, last, _ = g.person("en_US")
    f, ln = g.ascii_fold(first), g.ascii_fold(last)
    v = g.pick([f"{f}+{g.en.word()}@gmail.com", f"{f}.{ln}@mail.{g.domain()}", f"{f[0]}{ln}@{g.en.word()}.ac.uk", f"{first}.{last}@{g.domain().capitalize()}"])
    d.fill(g.pick(["Use {} for receipts", "Email: {}", "Account email changed to {}"]), E(v, "EMAIL_ADDRESS", "email_plus_sub"))


# -- PHONE_NUMBER
PHONE_FORMS = {
    "nanp_dash": lambda a, b, c: f"{a}-{b}-{c}",
    "nanp_dot": lambda a, b, c: f"{a}.{b}.{c}",
    "nanp_space": lambda a, b, c: f"{a} {b} {c}",
    "nanp_paren": lambda a, b, c: f"({a}) {b}-{c}",
    "nanp_paren_nospace": lambda a, b, c: f"({a}){b}-{c}",
    "nanp_nosep": lambda a, b, c: f"{a}{b}{c}",
    "nanp_1dash": lambda a, b, c: f"1-{a}-{b}-{c}",
    "nanp_1paren": lambda a, b, c: f"1 ({a}) {b}-{c}",
    "nanp_plus1_space": lambda a, b, c: f"+1 {a} {b} {c}",
    "nanp_plus1_dash": lambda a, b, c: f"+1-{a}-{b}-{c}",
    "nanp_plus1_paren": lambda a, b, c: f"+1 ({a}) {b}-{c}",
    "nanp_plus1_nosep": lambda a, b, c: f"+1{a}{b}{c}",
    "nanp_plus1_dot": lambda a, b, c: f"+1.{a}.{b}.{c}",
}
PHONE_TPLS = [
    "You can reach me at {}",
    "Phone: {}",
    "call me on {}",
    "my cell is {}",
    "Please call back at {}",
    "Tel.: {}",
    "Mobile {}",
    "text me at {} thanks",
    "cb# {}",
    "The pharmacy number is {}",
    "(m) {}",
    "fax {}",
]

for _form, _fmt in PHONE_FORMS.items():

    def _mk_phone(form=_form, fmt=_fmt):
        def fn(d, g):
            d.fill(g.pick(PHONE_TPLS), E(fmt(*g.nanp()), "PHONE_NUMBER", form))

        return fn

    slot(_form)(_mk_phone())


@slot("nanp_extension")
def _(d, g):
    form = g.pick([f for f in PHONE_FORMS if "nosep" not in f])
    ext = g.pick([f" x{g.rng.randint(10, 9999)}", f" ext. {g.rng.randint(10, 999)}", f" ext {g.rng.randint(10, 9999)}", f" Ext. {g.rng.randint(1, 99)}", f" x {g.rng.randint(100, 999)}"])
    d.fill(
        g.pick(["Direct line {}{} if you need me", "Call the front desk at {}{}", "Office: {}{}", "reach our billing team at {}{} today"]),
        E(PHONE_FORMS[form](*g.nanp()), "PHONE_NUMBER", "nanp_extension"),
        R(ext),
    )


@slot("phone_intl")
def _(d, g):
    v = g.pick(
        [
            f"+44 20 {g.digits(4)} {g.digits(4)}",
            f"+44 7{g.digits(3)} {g.digits(6)}",
            f"+49 30 {g.digits(8)}",
            f"+49 (0){g.rng.randint(30, 89)} {g.digits(7)}",
            f"+33 6 {g.digits(2)} {g.digits(2)} {g.digits(2)} {g.digits(2)}",
            f"+91 9{g.digits(4)} {g.digits(5)}",
            f"+55 11 9{g.digits(4)}-{g.digits(4)}",
            f"+81 3-{g.digits(4)}-{g.digits(4)}",
            f"+34 6{g.digits(2)} {g.digits(3)} {g.digits(3)}",
            f"+39 3{g.digits(2)} {g.digits(3)} {g.digits(4)}",
        ]
    )
    d.fill(g.pick(["Our London desk: {}", "WhatsApp me at {}", "Phone (intl): {}", "call {} from abroad"]).replace("London ", "overseas "), E(v, "PHONE_NUMBER", "phone_intl"))


# -- US_SSN
@slot("ssn_dash")
def _(d, g):
    d.fill(
        g.pick(["SSN: {}", "my social is {}", "Social Security Number {}", "verify {} before releasing records", "SSN# {}", "ss# {} on the W-2 is wrong"]), E("-".join(g.ssn()), "US_SSN", "ssn_dash")
    )


@slot("ssn_space_ctx")
def _(d, g):
    d.fill(g.pick(["SSN {}", "social security number: {}", "my ssn is {}", "Soc Sec # {}"]), E(" ".join(g.ssn()), "US_SSN", "ssn_space_ctx"))


@slot("ssn_nosep_ctx")
def _(d, g):
    d.fill(g.pick(["SSN: {}", "ssn {}", "my social security number is {}", "SSN={}", "last time I gave you my ssn {}", "Social: {}"]), E("".join(g.ssn()), "US_SSN", "ssn_nosep_ctx"))


# -- IP_ADDRESS
IP_TPLS = ["Login from {} was blocked", "client ip {}", "src={}", "The server at {} stopped responding", "Whitelist {} please", "my IP is {}", "host {} unreachable", "connection from {}"]


@slot("ipv4")
def _(d, g):
    d.fill(g.pick(IP_TPLS), E(g.ipv4(), "IP_ADDRESS", "ipv4"))


@slot("ipv4_port")
def _(d, g):
    d.fill(
        g.pick(["connect to {}{}", "upstream {}{} timed out", "The proxy runs on {}{}", "listen={}{}"]),
        E(g.ipv4(), "IP_ADDRESS", "ipv4_port"),
        R(f":{g.pick([22, 80, 443, 3306, 5432, 8080, 8443, 6379, 9200, 27017])}"),
    )


@slot("ipv4_cidr")
def _(d, g):
    d.fill(g.pick(["allow {} in the firewall", "subnet {}", "Route {} via the VPN", "deny from {}"]), E(g.ipv4_cidr(), "IP_ADDRESS", "ipv4_cidr"))


for _form in ("ipv6_full", "ipv6_full_nopad", "ipv6_compressed", "ipv6_upper", "ipv6_leading", "ipv6_trailing", "ipv6_v4mapped", "ipv6_zone", "ipv6_cidr"):

    def _mk_ip6(form=_form):
        def fn(d, g):
            tpls = IP_TPLS if form not in ("ipv6_trailing", "ipv6_cidr") else ["prefix {}", "Route {} via the VPN", "the router advertises {}", "allow {} in the firewall"]
            d.fill(g.pick(tpls), E(g.ipv6(form), "IP_ADDRESS", form))

        return fn

    slot(_form)(_mk_ip6())


@slot("ipv6_bracket_port")
def _(d, g):
    form = g.pick(["ipv6_compressed", "ipv6_compressed", "ipv6_leading", "ipv6_full_nopad"])
    d.fill(
        g.pick(["connect to [{}]{}", "upstream [{}]{} timed out", "peer=[{}]{}", "Listening on [{}]{}"]),
        E(g.ipv6(form), "IP_ADDRESS", "ipv6_bracket_port"),
        R(f":{g.pick([22, 443, 8080, 8443, 53, 5060])}"),
    )


# -- URL
URL_TPLS = ["See {}", "Docs: {}", "You can download it from {}", "link: {}", "I tried {} but got an error", "reset your password at {}, then log in", "More info at {}"]
for _form in ("url_scheme", "url_http", "url_www", "url_bare_path", "url_bare_domain", "url_port_fragment"):

    def _mk_url(form=_form):
        def fn(d, g):
            tpls = URL_TPLS if form != "url_bare_domain" else ["Visit {} for details", "I bought it on {}", "is {} down for everyone", "check out {}"]
            d.fill(g.pick(tpls), E(g.url(form), "URL", form))

        return fn

    slot(_form)(_mk_url())


@slot("url_markdown")
def _(d, g):
    d.fill(g.pick(["Follow [this guide]({}) to reset it", "[Click here]({})", "Details in the [runbook]({})"]), E(g.url("url_markdown"), "URL", "url_markdown"))


@slot("url_angle")
def _(d, g):
    d.fill(g.pick(["Portal: <{}>", "see <{}>", "Unsubscribe: <{}>"]), E(g.url("url_angle"), "URL", "url_angle"))


@slot("url_paren")
def _(d, g):
    d.fill(g.pick(["The patch notes (see {}) mention it", "Check the FAQ ({})", "our status page ({}) says all green"]), E(g.url("url_paren"), "URL", "url_paren"))


# -- CREDIT_CARD
for _form, _sep in (("cc_space", " "), ("cc_dash", "-"), ("cc_nosep", "")):

    def _mk_cc(form=_form, sep=_sep):
        def fn(d, g):
            num, brand = g.card()
            tpl = g.pick(["card number {}", "Please charge {} for the balance", "CC: {}", "my card is {}", "Card: {}", "use card {} for the renewal", "cc# {} exp next year"])
            d.fill(tpl, E(g.group_card(num, sep), "CREDIT_CARD", form, brand=brand))

        return fn

    slot(_form)(_mk_cc())


# -- IBAN_CODE
for _form in ("iban_compact", "iban_grouped"):

    def _mk_iban(form=_form):
        def fn(d, g):
            v = g.iban()
            if form == "iban_grouped":
                v = " ".join(v[i : i + 4] for i in range(0, len(v), 4))
            d.fill(g.pick(["IBAN: {}", "Please wire it to IBAN {}", "refund to {}", "bank account (IBAN) {}"]), E(v, "IBAN_CODE", form))

        return fn

    slot(_form)(_mk_iban())


# -- HIPAA identifiers named by their context
@slot("mrn")
def _(d, g):
    v = g.pick([g.digits(8), g.digits(7), "00" + g.digits(6), f"{g.letters(1)}{g.digits(7)}", f"{g.digits(3)}-{g.digits(2)}-{g.digits(2)}"])
    d.fill(g.pick(["MRN: {}", "MRN {}", "MR# {}", "Medical record number {}", "Chart #{}", "mrn {} pulled up"]), E(v, "MEDICAL_RECORD_NUMBER", "mrn"))


@slot("health_plan_id")
def _(d, g):
    kind = g.rng.randrange(4)
    if kind == 0:
        v, tpl = g.mbi(), g.pick(["Medicare MBI {}", "Medicare ID: {}", "MBI {}"])
    elif kind == 1:
        v, tpl = f"{g.letters(3)}{g.digits(9)}", g.pick(["Member ID: {}", "member id {}", "Subscriber ID {}"])
    elif kind == 2:
        v, tpl = g.digits(11, True), g.pick(["Insurance ID {}", "Member #: {}", "health plan ID {}"])
    else:
        v, tpl = f"{g.letters(2)}-{g.digits(5)}-{g.digits(2)}", g.pick(["Policy number: {}", "policy # {}"])
    d.fill(tpl, E(v, "HEALTH_PLAN_ID", "health_plan_id"))


@slot("account_number")
def _(d, g):
    v = g.pick([g.digits(12), g.digits(10), f"{g.digits(4)}-{g.digits(4)}-{g.digits(2)}", f"{g.digits(2)}-{g.digits(6)}-{g.digits(2)}", "00" + g.digits(8)])
    d.fill(g.pick(["account number {}", "Acct #: {}", "acct no {}", "Billing account {} is past due", "Account: {}", "checking account {}"]), E(v, "ACCOUNT_NUMBER", "account_number"))


@slot("license_number")
def _(d, g):
    first, last, _ = g.person("en_US")
    kind = g.rng.randrange(4)
    if kind == 0:
        v, tpl = f"{g.letters(1)}{g.digits(7)}", g.pick(["driver's license {}", "DL# {}", "Driver License No. {}"])
    elif kind == 1:
        v, tpl = f"{g.letters(1)}{g.digits(3)}-{g.digits(4)}-{g.digits(4)}", g.pick(["DL {}", "license no. {}"])
    elif kind == 2:
        v, tpl = g.dea(last), g.pick(["DEA # {}", "DEA number {}"])
    else:
        v, tpl = f"{g.letters(1)}{g.digits(5)}", g.pick(["State medical license {}", "RN license {}"])
    d.fill(tpl, E(v, "LICENSE_NUMBER", "license_number"))


@slot("vin")
def _(d, g):
    d.fill(g.pick(["VIN {}", "VIN: {}", "The vehicle ({}) was towed", "vin# {}"]), E(g.vin(), "VEHICLE_ID", "vin"))


@slot("plate")
def _(d, g):
    d.fill(g.pick(["license plate {}", "Plate: {}", "a silver sedan, plate {}", "tag # {}"]), E(g.plate(), "VEHICLE_ID", "plate"))


@slot("device_serial")
def _(d, g):
    v = g.pick([f"C02{g.alnum(9)}", f"SN-{g.alnum(8)}", f"{g.letters(3)}{g.digits(6)}{g.letters(1)}", f"{g.digits(4)}-{g.alnum(6)}", g.alnum(10)])
    d.fill(g.pick(["S/N: {}", "serial number {}", "Pump serial # {}", "device serial {}", "Pacemaker serial no. {}"]), E(v, "DEVICE_ID", "device_serial"))


@slot("device_imei")
def _(d, g):
    v = g.imei()
    if g.chance(0.3):
        v = f"{v[:2]}-{v[2:8]}-{v[8:14]}-{v[14]}"
    d.fill(g.pick(["IMEI {}", "IMEI: {}", "phone IMEI {} reported stolen"]), E(v, "DEVICE_ID", "device_imei"))


@slot("device_mac")
def _(d, g):
    d.fill(g.pick(["MAC {}", "mac address {}", "hwaddr={}", "Device MAC: {}"]), E(g.mac(), "DEVICE_ID", "device_mac", "MAC"))


# ---------------------------------------------------------------------------------------------
# hard negatives (must stay unlabelled)

NEG_SLOTS: list[tuple[str, object]] = []


def neg(kind: str):
    def deco(fn):
        NEG_SLOTS.append((kind, fn))
        return fn

    return deco


@neg("order_id")
def _(d, g):
    v = g.pick([f"ORD-{g.rng.randint(2019, 2026)}-{g.digits(5)}", f"PO-{g.digits(5)}", f"SO{g.digits(8)}", f"{g.letters(2)}-{g.digits(6)}"])
    d.fill(g.pick(["Order {} shipped", "re: order {}", "Your order {} is delayed", "PO {} approved"]), N(v, "order_id"))


@neg("ticket_id")
def _(d, g):
    v = g.pick([f"#{g.digits(5, True)}", f"INC{g.digits(7)}", f"JIRA-{g.rng.randint(100, 9999)}", f"CASE-{g.digits(6)}"])
    d.fill(g.pick(["Re: ticket {}", "Duplicate of {}", "See {} for history", "closing {} as resolved"]), N(v, "ticket_id"))


@neg("sku")
def _(d, g):
    v = g.pick(
        [f"WH-{g.rng.randint(100, 9999)}XM{g.rng.randint(2, 6)}-BLK", f"{g.digits(2)}-{g.digits(4)}-{g.letters(3)}", f"SKU{g.digits(6)}", f"{g.letters(3)}-{g.digits(3)}-{g.letters(1)}{g.digits(2)}"]
    )
    d.fill(g.pick(["SKU {} is out of stock", "item {} was backordered", "reorder SKU: {}"]), N(v, "sku"))


@neg("version")
def _(d, g):
    v = g.pick(
        [
            f"v{g.rng.randint(1, 9)}.{g.rng.randint(0, 30)}.{g.rng.randint(0, 20)}",
            f"{g.rng.randint(1, 4)}.{g.rng.randint(0, 20)}.{g.rng.randint(0, 12)}",
            f"10.0.{g.rng.randint(10000, 22631)}",
            f"{g.rng.randint(1, 20)}.{g.rng.randint(0, 9)}",
        ]
    )
    d.fill(g.pick(["after upgrading to {} it crashes", "running version {}", "Windows build {}", "the app is on {}", "fixed in release {}"]), N(v, "version"))


@neg("build_number")
def _(d, g):
    d.fill(g.pick(["build {} failed", "CI build #{} is green", "firmware build {}"]), N(str(g.rng.randint(100, 99999)), "build_number"))


@neg("duration")
def _(d, g):
    v = g.pick([f"{g.rng.randint(5, 2000)} ms", f"{g.rng.randint(1, 59)}.{g.rng.randint(0, 9)}s", f"{g.rng.randint(1, 120)}ms", f"{g.rng.randint(2, 90)} sec"])
    d.fill(g.pick(["the request took {}", "latency {}", "timeout after {}", "GC pause of {}"]), N(v, "duration"))


@neg("clinical_value")
def _(d, g):
    k = g.rng.randrange(9)
    if k == 0:
        v, tpl = f"{g.rng.randint(95, 180)}/{g.rng.randint(55, 110)}", "BP {}"
    elif k == 1:
        v, tpl = f"{g.rng.randint(5, 11)}.{g.rng.randint(0, 9)}%", "HbA1c {}"
    elif k == 2:
        v, tpl = f"{g.rng.randint(96, 103)}.{g.rng.randint(0, 9)}°F", "Temp {}"
    elif k == 3:
        v, tpl = f"0.{g.rng.randint(1, 9)} mg/kg", "dose {} IV"
    elif k == 4:
        v, tpl = f"{g.rng.randint(50, 130)} bpm", "HR {}"
    elif k == 5:
        v, tpl = f"{g.rng.randint(70, 350)} mg/dL", "glucose {}"
    elif k == 6:
        v, tpl = g.pick(["5/325", "10/325", "7.5/325"]), "hydrocodone/APAP {} q6h prn"
    elif k == 7:
        v, tpl = f"{g.rng.randint(88, 100)}%", "SpO2 {} on room air"
    else:
        v, tpl = f"{g.rng.randint(36, 39)}.{g.rng.randint(0, 9)} °C", "temperature {}"
    d.fill(tpl, N(v, "clinical_value"))


@neg("amount")
def _(d, g):
    v = g.pick([f"${g.rng.randint(1, 9)},{g.digits(3)}.{g.digits(2)}", f"${g.rng.randint(1, 999)}.{g.digits(2)}", f"€{g.rng.randint(10, 999)}.00", f"USD {g.rng.randint(100, 9999)}"])
    d.fill(g.pick(["you charged me {} twice", "balance due: {}", "refund of {} issued", "the copay is {}"]), N(v, "amount"))


@neg("card_last4")
def _(d, g):
    d.fill(g.pick(["card ending {}", "the Visa ending in {} was declined", "last four {}", "card ****{} on file"]), N(g.digits(4), "card_last4"))


@neg("hash")
def _(d, g):
    v = g.pick(["".join(g.pick("0123456789abcdef") for _ in range(n)) for n in (7, 12, 32, 40, 64)])
    d.fill(g.pick(["commit {} broke the build", "sha256:{}", "checksum {} does not match", "reverted {}"]), N(v, "hash"))


@neg("uuid")
def _(d, g):
    v = str(uuid.UUID(int=g.rng.getrandbits(128), version=4))
    d.fill(g.pick(["request_id={}", "trace id {}", "correlation ID: {}"]), N(v.upper() if g.chance(0.2) else v, "uuid"))


@neg("port")
def _(d, g):
    d.fill(g.pick(["port {} is closed", "open port {} on the firewall", "it listens on port {}"]), N(str(g.pick([22, 80, 443, 3306, 5432, 8080, 8443, 6379, 9200, 27017, 5060])), "port"))


@neg("room_number")
def _(d, g):
    v = g.pick([str(g.rng.randint(100, 999)), f"{g.rng.randint(1, 9)}{g.pick('ABCD')}", f"{g.rng.randint(1, 40)}"])
    d.fill(g.pick(["transferred to Room {}", "bed {} needs linens", "conference room {}", "rm {}"]), N(v, "room_number"))


@neg("model_number")
def _(d, g):
    v = g.pick([f"XPS-{g.rng.randint(9000, 9999)}", f"A{g.rng.randint(1000, 2999)}", f"T{g.rng.randint(14, 16)}s", f"WF-{g.rng.randint(100, 999)}", f"RT-AX{g.rng.randint(50, 99)}U"])
    d.fill(g.pick(["model {} keeps overheating", "the {} router reboots", "replaced with a model {}"]), N(v, "model_number"))


@neg("percentage")
def _(d, g):
    v = g.pick([f"{g.rng.randint(1, 100)}%", f"{g.rng.randint(90, 99)}.{g.rng.randint(0, 99)}%"])
    d.fill(g.pick(["CPU at {}", "disk is {} full", "uptime {}"]), N(v, "percentage"))


@neg("http_status")
def _(d, g):
    v = str(g.pick([400, 401, 403, 404, 409, 429, 500, 502, 503, 504]))
    d.fill(g.pick(["the API returned {}", "HTTP {} on checkout", "status={}"]), N(v, "http_status"))


@neg("invalid_ipv4")
def _(d, g):
    v = g.pick(
        [
            f"{g.rng.randint(256, 999)}.{g.rng.randint(0, 255)}.{g.rng.randint(0, 255)}.{g.rng.randint(0, 255)}",
            f"{g.rng.randint(1, 223)}.{g.rng.randint(256, 999)}.{g.rng.randint(0, 255)}.{g.rng.randint(1, 254)}",
            f"{g.rng.randint(1, 223)}.{g.rng.randint(0, 255)}.{g.rng.randint(0, 255)}.{g.rng.randint(256, 999)}",
        ]
    )
    d.fill(g.pick(["rejected malformed value {}", "config has a typo: {}", "parser error near {}"]), N(v, "invalid_ipv4"))


@neg("luhn_fail_16")
def _(d, g):
    while True:
        s = g.digits(16, True)
        if not luhn_ok(s):
            break
    if g.chance(0.4):
        s = " ".join(s[i : i + 4] for i in range(0, 16, 4))
    d.fill(g.pick(["tracking number {}", "reference {}", "confirmation code {}"]), N(s, "luhn_fail_16"))


@neg("invalid_nanp")
def _(d, g):
    v = f"{g.rng.randint(0, 1)}{g.digits(2)}-{g.digits(3)}-{g.digits(4)}"
    d.fill(g.pick(["part no. {} is discontinued", "lot {} was recalled", "catalog item {}"]), N(v, "invalid_nanp"))


@neg("error_code")
def _(d, g):
    v = g.pick([f"0x{g.rng.getrandbits(32):08X}", f"E{g.rng.randint(1000, 9999)}", f"ERR_{g.rng.randint(100, 999)}"])
    d.fill(g.pick(["failed with {}", "error code {}", "the printer shows {}"]), N(v, "error_code"))


@neg("job_number")
def _(d, g):
    d.fill(g.pick(["job {} finished", "batch {} was reprocessed", "queue item {} retried"]), N(g.digits(5, True), "job_number"))


# ---------------------------------------------------------------------------------------------
# genres

CHAT_FILLER = ["hi", "hey", "hello?", "ok thanks", "one sec", "thx", "any update", "still not working", "pls help", "sure", "lol ok", "got it"]
PROSE_FILLER = [
    "The app keeps crashing when I upload files",
    "Please advise",
    "Thanks in advance for your help",
    "I have attached the screenshot",
    "This is the second time this has happened",
    "Let me know if you need anything else",
    "The issue started after the last update",
    "Please treat this as urgent",
]
SUBJECTS = ["Cannot log in", "Refund request", "Billing question", "Address change", "Password reset not working", "Wrong item delivered", "Account locked", "Update my records"]
COMPLAINTS = ["chest pain", "shortness of breath", "a persistent cough", "lower back pain", "dizziness", "a rash on both arms", "fatigue"]
LOG_COMPONENTS = ["auth", "api", "billing", "sshd", "nginx", "worker", "gateway", "scheduler"]
LOG_LEVELS = ["INFO", "WARN", "ERROR", "DEBUG"]


def _body(d: Doc, g: Gen, slots: list, negs: list, sep_choices=(" ", " ", "\n")) -> None:
    """Slot sentences and negatives interleaved with filler, in prose."""
    items = [("s", s) for s in slots] + [("n", n) for n in negs]
    g.rng.shuffle(items)
    for k, (_, fn) in enumerate(items):
        if k:
            d.raw(g.pick(sep_choices))
        if g.chance(0.15):
            d.text(g.pick(PROSE_FILLER))
            d.end_sentence(g.rng)
            d.raw(" ")
        d.cap_next = d.style == "prose"
        fn(d, g)
        d.end_sentence(g.rng)


def genre_chat(d: Doc, g: Gen, slots, negs) -> None:
    items = [("s", s) for s in slots] + [("n", n) for n in negs]
    g.rng.shuffle(items)
    speakers = g.pick([("customer", "agent"), ("me", "support"), ("user", "bot"), ("visitor", "rep")])
    if g.chance(0.5):
        d.raw(f"{speakers[0]}: ")
        d.text(g.pick(CHAT_FILLER))
        d.raw("\n")
    for k, (_, fn) in enumerate(items):
        if g.chance(0.3):
            d.raw("[")
            d.item(E(g.time_str(g.pick(["time_24h", "time_12h"])), "DATE_TIME", "chat_timestamp"))
            d.raw("] ")
        d.raw(f"{speakers[0] if g.chance(0.75) else speakers[1]}: ")
        if g.chance(0.2):
            d.text(g.pick(CHAT_FILLER) + " ")
        fn(d, g)
        d.raw("\n" if k < len(items) - 1 else "")


def genre_ticket(d: Doc, g: Gen, slots, negs) -> None:
    d.raw("Ticket ")
    d.item(N(f"#{g.digits(5, True)}", "ticket_id"))
    d.raw(f" | Priority: {g.pick(['Low', 'Normal', 'High', 'Urgent'])}\nSubject: {g.pick(SUBJECTS)}\n")
    if g.chance(0.5):
        first, last, loc = g.person()
        extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
        d.raw("Requester: ")
        d.item(E(g.full_name(first, last, loc), "PERSON", "ticket_requester", **extra))
        d.raw(" <")
        d.item(E(g.email(first, last), "EMAIL_ADDRESS", "email_angle"))
        d.raw(">\n")
    d.raw("\n")
    _body(d, g, slots, negs)
    if g.chance(0.4):
        d.raw("\n\nThanks,\n")
        first, last, loc = g.person()
        d.item(E(first, "PERSON", "signature_first", **({"locale": loc} if loc not in ("en_US", "en_GB") else {})))


def genre_clinical(d: Doc, g: Gen, slots, negs) -> None:
    if g.chance(0.7):
        first, last, loc = g.person()
        extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
        name = f"{last}, {first}"
        d.raw("Patient: ")
        d.item(E(name.upper() if g.chance(0.3) else name, "PERSON", "person_last_comma_first", **extra))
        if g.chance(0.7):
            d.raw("    DOB: ")
            d.item(E(g.date_str(g.pick(["date_mdy_slash", "date_mdy_slash", "date_iso", "date_mdy_nopad"]), dob=True), "DATE_TIME", "header_dob"))
        d.raw("\n")
    if g.chance(0.6):
        d.raw("Date of service: ")
        d.item(E(g.date_str(g.pick(["date_mdy_slash", "date_iso"])), "DATE_TIME", "header_dos"))
        d.raw("\n")
    d.raw("\nHPI: ")
    n = g.rng.randint(19, 95)
    v = g.pick([f"{n}-year-old", f"{n} y/o", f"{n} yo"])
    d.item(E(v, "DATE_TIME", "age_hyphen" if "year" in v else "age_yo", "AGE"))
    d.text(f" {g.pick(['male', 'female', 'M', 'F', 'patient'])} presents with {g.pick(COMPLAINTS)}")
    d.raw(". ")
    _body(d, g, slots, negs, sep_choices=(" ", " ", "\n"))
    if g.chance(0.6):
        d.raw("\n\nElectronically signed by Dr. ")
        first, last, loc = g.person()
        d.item(E(g.full_name(first, last, loc) if g.chance(0.5) else last, "PERSON", "clinician_signature", **({"locale": loc} if loc not in ("en_US", "en_GB") else {})))
        if g.chance(0.5):
            d.raw(", MD")


def genre_email(d: Doc, g: Gen, slots, negs) -> None:
    first, last, loc = g.person()
    extra = {"locale": loc} if loc not in ("en_US", "en_GB") else {}
    k = g.rng.randrange(5)
    if k == 0:
        d.raw(g.pick(["Hi ", "Hello ", "Hey "]))
        d.item(E(first, "PERSON", "greeting_first", **extra))
        d.raw(",\n\n")
    elif k == 1:
        d.raw(f"Dear {g.pick(TITLES_INTL.get(loc, ['Mr.', 'Ms.', 'Dr.', 'Mrs.']))} ")
        d.item(E(last, "PERSON", "greeting_title", **extra))
        d.raw(",\n\n")
    elif k == 2:
        d.raw("Hi ")
        d.item(E(first, "PERSON", "greeting_first", **extra))
        d.raw(" - ")
    elif k == 3:
        d.raw("Good morning ")
        d.item(E(g.full_name(first, last, loc), "PERSON", "greeting_full", **extra))
        d.raw(",\n\n")
    else:
        d.raw("Hello,\n\n")
    _body(d, g, slots, negs)
    sfirst, slast, sloc = g.person()
    sextra = {"locale": sloc} if sloc not in ("en_US", "en_GB") else {}
    d.raw(f"\n\n{g.pick(['Best', 'Thanks', 'Regards', 'Best regards', 'Cheers', 'Sincerely', 'Kind regards'])},\n")
    if g.chance(0.6):
        d.item(E(g.full_name(sfirst, slast, sloc), "PERSON", "signature_full", **sextra))
    else:
        d.item(E(sfirst, "PERSON", "signature_first", **sextra))
    if g.chance(0.5):
        d.raw(f"\n{g.pick(['Support Lead', 'Account Manager', 'Office Manager', 'RN, Care Coordinator'])}, {g.pick(COMPANIES)}")
    if g.chance(0.4):
        d.raw("\n")
        a, b, c = g.nanp()
        form = g.pick(["nanp_dash", "nanp_paren", "nanp_dot", "nanp_plus1_space"])
        d.item(E(PHONE_FORMS[form](a, b, c), "PHONE_NUMBER", form))
        if g.chance(0.5):
            d.raw(" | ")
            d.item(E(g.email(sfirst, slast), "EMAIL_ADDRESS", "email_signature"))


def genre_log(d: Doc, g: Gen, slots, negs) -> None:
    items = [("s", s) for s in slots] + [("n", n) for n in negs]
    g.rng.shuffle(items)
    ts_form = g.pick(["datetime_iso", "datetime_log", "datetime_syslog"])
    for k, (_, fn) in enumerate(items):
        if k:
            d.raw("\n")
        d.item(E(g.datetime_str(ts_form), "DATE_TIME", "log_timestamp"))
        d.raw(f" {g.pick(LOG_LEVELS)} [{g.pick(LOG_COMPONENTS)}] ")
        if g.chance(0.25):
            d.raw('msg="')
            fn(d, g)
            d.raw('"')
        else:
            fn(d, g)


GENRE_FN = {"chat": genre_chat, "ticket": genre_ticket, "clinical": genre_clinical, "email": genre_email, "log": genre_log}
STYLE = {"chat": "chat", "ticket": "prose", "clinical": "prose", "email": "prose", "log": "log"}


def make_records(seed: int, n: int = DEFAULT_PER_SEED) -> list[dict]:
    g = Gen(seed)
    order = list(range(len(SLOTS)))
    g.rng.shuffle(order)
    neg_order = list(range(len(NEG_SLOTS)))
    g.rng.shuffle(neg_order)
    out = []
    for i in range(n):
        genre = GENRES[(i + seed) % len(GENRES)]
        # every slot is forced once per len(SLOTS) texts, so each form shows up in any 600-text seed
        forced = SLOTS[order[i % len(order)]][1]
        extra = [SLOTS[g.rng.randrange(len(SLOTS))][1] for _ in range(g.rng.randint(1, 4))]
        slots = [forced, *extra]
        negs = [NEG_SLOTS[neg_order[i % len(neg_order)]][1]] + [NEG_SLOTS[g.rng.randrange(len(NEG_SLOTS))][1] for _ in range(g.rng.randint(0, 2))]
        d = Doc(g.rng, STYLE[genre])
        GENRE_FN[genre](d, g, slots, negs)
        text, spans, negatives = d.record()
        validate(text, spans, negatives)
        out.append({"id": f"rw-{seed}-{i:04d}", "genre": genre, "text": text, "spans": spans, "negatives": negatives, "seed": seed})
    return out


def validate(text: str, spans: list[dict], negatives: list[dict]) -> None:
    prev_end = -1
    for s in sorted(spans, key=lambda s: s["start"]):
        assert 0 <= s["start"] < s["end"] <= len(text), s
        assert s["start"] >= prev_end, f"overlapping spans in {text!r}"
        assert s["entity"] in ENTITIES, s
        assert text[s["start"] : s["end"]] == text[s["start"] : s["end"]].strip(), (s, text)
        prev_end = s["end"]
    for n in negatives:
        assert not any(n["start"] < s["end"] and s["start"] < n["end"] for s in spans), n


def parse_seeds(arg: str) -> list[int]:
    seeds: list[int] = []
    for part in arg.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            seeds.extend(range(int(a), int(b) + 1))
        else:
            seeds.append(int(part))
    return seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["dev", "test"], default="dev", help=f"dev = seeds {DEV_SEEDS}, test = seeds {TEST_SEEDS}")
    ap.add_argument("--seeds", help="explicit seeds, e.g. 0-9 or 3,7,100-104 (overrides --split)")
    ap.add_argument("--n", type=int, default=DEFAULT_PER_SEED, help="texts per seed")
    ap.add_argument("--out", required=True, help="output JSONL path")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds) if args.seeds else list(DEV_SEEDS if args.split == "dev" else TEST_SEEDS)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    n_texts = n_neg = 0
    with path.open("w", encoding="utf-8") as fh:
        for seed in seeds:
            for rec in make_records(seed, args.n):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_texts += 1
                n_neg += len(rec["negatives"])
                for s in rec["spans"]:
                    counts[s["entity"]] = counts.get(s["entity"], 0) + 1
    print(f"wrote {n_texts} texts (seeds {seeds}) to {path}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f", negatives={n_neg}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
