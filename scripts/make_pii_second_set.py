#!/usr/bin/env python
"""Make a second, independently written labelled PII evaluation set (JSONL).

Written from scratch, without looking at nlpforge's recognizers or at the generator they were
tuned on, to see whether they generalise to text written differently. Every value comes from
hand-written lists in this file or from generators that follow the published specs (Luhn for
cards and IMEIs, ISO 13616 mod-97 for IBANs, ISO 3779 check digit for VINs, the DEA checksum,
SSA rules for SSNs); Faker is not used at all.

Genres: forwarded e-mail threads (Outlook / Gmail / RFC 5322 headers, quoted replies), discharge
summaries, nursing notes, call-centre transcripts (ASR style, speaker tags, fillers, spoken
digits), HR letters, insurance claim forms (CMS-1500-like boxes), Slack-like chat (emoji,
typos), and server logs: nginx combined access log, journald / syslog, JSON lines.

Record: {"id", "genre", "text", "spans": [{"start","end","entity","form"}],
         "negatives": [{"start","end","kind"}], "seed"}
Spans are exact character offsets, never overlap, and no negative overlaps a span. ``seed`` is
the per-record seed: ``build_record(seed, genre_index)`` regenerates that record alone.

Labelling decisions (HIPAA Safe Harbor flavoured, Presidio entity names):

* PERSON: a person's name without the title ("Dr.", "Ms.", "RN" stay outside); "LAST, FIRST M"
  is one span; a lower-cased name in chat / ASR text is still a PERSON; "@" of a mention is
  outside. Eponyms (Parkinson's, Foley catheter, Glasgow Coma Scale) and products named after
  people (Dr Pepper, Mr. Clean) are hard negatives.
* LOCATION: street line (number + street + unit) as one span, city / town as one span, postal
  code as one span. US states and countries are NOT labelled (Safe Harbor keeps them) and are
  not negatives either.
* DATE_TIME: any calendar date or part of one finer than a year (day, month, "March '24",
  "12 Mar"), any clock time ("0930h", "14:05", "9:41 AM"), log timestamps, and quarters
  ("Q3 2024"): a quarter names a part of a year, and Safe Harbor removes every date element
  except the year, so it is a date element. Ages are labelled DATE_TIME too (form "age"),
  following measure_pii.py's AGE -> DATE_TIME alias. A year on its own ("since 2019", "FY2024")
  is a hard negative (kind year_only), as are durations that look like clock times ("00:07:43"
  call length, "[00:01:12]" transcript offsets, "took 0:00:01.532"). A date directly followed
  by a clock time ("2024-03-12 14:05", "D/C: 3/9/24 1910h") is one span (form datetime_*); a
  timestamp's zone offset ("+0100") belongs to it.
* PHONE_NUMBER includes a "+CC" prefix but not an extension. Spoken digits in transcripts
  ("five oh three, five five five, ...") are PHONE_NUMBER too (form spoken).
* URL: whole URL including scheme, port and query, also when its host is an IP address
  ("http://10.0.0.7:8080/health", form url_ip_host); a bare path in a log request line is not a
  URL, and IDs inside a bare request path are labelled; a bare service host name in a log
  ("server: api.example.org", "relay=mx.example.com") is a hard negative (service_hostname).
* IP_ADDRESS: the address only (":port", "%eth0" zone and "/24" prefix stay outside).
* MEDICAL_RECORD_NUMBER / HEALTH_PLAN_ID (member, subscriber, policy, MBI, Medicaid) /
  ACCOUNT_NUMBER (bank and billing accounts) / LICENSE_NUMBER (driver's licence, DEA, nursing
  licence) / VEHICLE_ID (VIN, licence plate) / DEVICE_ID (MAC, IMEI, implant / pump / USB
  serials): the value only, never the cue word.
* Hard negatives: invoice numbers, ticket ids, lab values, drug doses, version strings, BP
  readings, pain scores, NDC / CPT / ICD codes, EINs, routing numbers, masked cards and SSNs,
  e-mail Message-IDs (they are addr-spec shaped), trace ids, user agents, pids, file names with
  TLD-like extensions ("setup.py", "report.pl"), durations, quantities that look like ZIP codes,
  product codes, insurance group numbers, part numbers that look like SSNs, firmware versions
  that parse as IPv4, years alone, eponyms, person- and street-like product names.
* Span forms carry "@path" / "@query" / "@json" / "@answer" / "@log" when an identifier has no
  cue word next to it (a log path, a JSON key, a bare answer in a transcript), so --by-form
  separates "no cue" from "unfamiliar cue".

    python scripts/make_pii_second_set.py --seed 7 --n 1500 --out /tmp/pii_second.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import random
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import NamedTuple

# =============================================================================================
# tagged text builder


class T(NamedTuple):
    kind: str  # "E" labelled entity, "N" hard negative
    label: str  # entity name or negative kind
    text: str
    form: str = ""


def E(label: str, text: str, form: str) -> T:
    return T("E", label, text, form)


def N(kind: str, text: str) -> T:
    return T("N", kind, text, kind)


class Doc:
    """Append plain strings and tagged pieces; offsets are computed as text is written."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.spans: list[dict] = []
        self.negs: list[dict] = []

    def _w(self, s: str) -> None:
        self.parts.append(s)
        self.n += len(s)

    def add(self, *items) -> Doc:
        for it in items:
            if it is None or it == "":
                continue
            if isinstance(it, T):
                s = self.n
                self._w(it.text)
                if it.kind == "E":
                    self.spans.append({"start": s, "end": self.n, "entity": it.label, "form": it.form})
                else:
                    self.negs.append({"start": s, "end": self.n, "kind": it.label})
            elif isinstance(it, str):
                self._w(it)
            else:  # list / tuple fragment
                self.add(*it)
        return self

    def line(self, *items) -> Doc:
        self.add(*items)
        self._w("\n")
        return self

    def text(self) -> str:
        return "".join(self.parts)


def tmap(frag, fn):
    """Apply a string transform (lower / upper) to every piece of a fragment."""
    if isinstance(frag, T):
        return frag._replace(text=fn(frag.text))
    if isinstance(frag, str):
        return fn(frag)
    if frag is None:
        return None
    return [tmap(x, fn) for x in frag]


def asr_lower(frag):
    """ASR-style lower casing: words, names, places and dates lose case; codes and ids keep it."""
    if isinstance(frag, T):
        return frag._replace(text=frag.text.lower()) if frag.label in ("PERSON", "LOCATION", "DATE_TIME", "EMAIL_ADDRESS") else frag
    if isinstance(frag, str):
        return frag.lower()
    if frag is None:
        return None
    return [asr_lower(x) for x in frag]


def ctx(tag: T, where: str) -> T:
    """Mark where an identifier sits (log path, JSON field, bare answer) in its form, for --by-form."""
    return tag._replace(form=f"{tag.form}@{where}")


def plain(frag) -> str:
    if isinstance(frag, T):
        return frag.text
    if isinstance(frag, str):
        return frag
    if frag is None:
        return ""
    return "".join(plain(x) for x in frag)


# =============================================================================================
# hand-written value lists (names from many cultures; places written or derived here)

FIRST = """Amara Chidi Ngozi Oluwaseun Folake Emeka Adaeze Tunde Yetunde Kwame Akosua Kofi Abena Wanjiru
Otieno Njeri Baraka Zawadi Thandiwe Sipho Lerato Mandla Hiroshi Yuki Haruto Aiko Sakura Kenji Mei Wei Jian
Xiuying Hao Yan Min-jun Seo-yeon Ji-ho Hye-jin Thảo Minh Linh Quang Bảo Priya Arjun Ananya Rohan Deepika
Vikram Lakshmi Sanjay Kavya Rahul Meera Aditya Farhan Ayesha Imran Zainab Bilal Omar Fatima Yusuf Layla Karim
Nour Hassan Rania Tariq Samira Dariush Shirin Arash Parisa Mehmet Elif Emre Zeynep Burak Łukasz Agnieszka
Tomasz Katarzyna Wojciech Małgorzata Dmitri Svetlana Anastasia Sergei Olena Bohdan Oksana Søren Ingrid Astrid
Lars Sigrid Mikael Freja Henrik Aino Eero José María Lucía Alejandro Camila Mateo Valentina Joaquín Ximena
Santiago Guadalupe Rafael João Beatriz Thiago Luana Giulia Matteo Francesca Lorenzo Chiara Renée Étienne
Margaux Théo Amélie Siobhan Ciarán Niamh Declan Aoife Eoghan Dimitris Eleni Giorgos Katerina Keoni Leilani
Kai Malia Tenzin Pema Dorji Margaret Harold Dorothy Eugene Beverly Clarence Gladys Raymond Bernadette Walter
Tyrone Latoya DeShawn Keisha Jamal Jordan Taylor Avery Riley Quinn Rowan Sage Hope Grace Rose Faith Dawn
Zoë Nadia Elena Ivan Sara Noah Liam Ethan Chloe Hannah Isaac Miriam Esther Avi Yael Moshe Shlomo Ayaan Ifeoma
Mariam Hamza Amina Kateryna Vusi Nomvula Chayton Winona Aleksander Ewa""".split()

LAST = """Okafor Adeyemi Eze Nwosu Balogun Obi Mensah Boateng Asante Owusu Kamau Odhiambo Mwangi Njoroge
Dlamini Nkosi Khumalo Mokoena Diallo Traoré Keïta Haile Tesfaye Bekele Tanaka Watanabe Yamamoto Nakamura
Kobayashi Sato Wang Li Zhang Chen Liu Huang Zhao Kim Park Choi Jung Nguyễn Trần Lê Phạm Hoang Sharma Patel
Iyer Reddy Nair Chatterjee Banerjee Gupta Singh Mehta Qureshi Chaudhry Siddiqui Rahman Al-Farsi Haddad Khoury
Nasser El-Amin Mansour Hosseini Tehrani Karimi Yılmaz Demir Öztürk Kaya Kowalski Wiśniewski Nowak Zieliński
Lewandowska Ivanov Petrova Smirnov Kuznetsova Shevchenko Bondarenko Kovalenko Lindqvist Johansson Andersen
Nieminen Virtanen Halvorsen Bergström García Fernández Rodríguez López Hernández Morales Castillo Ortega
Ramírez Vargas Gutiérrez Domínguez Silva Oliveira Souza Pereira Costa Rossi Bianchi Esposito Romano Ricci
Conti Dubois Lefebvre Moreau Girard Fontaine O'Donnell McCarthy Gallagher Fitzgerald Byrne Papadopoulos
Georgiou Nikolaidis Kahananui Akana Sherpa Whitfield Hargreaves Pennington Thornbury Abernathy Blackwood
Ashworth Washington Jefferson Robinson Jackson Coleman Bakker Janssen Müller Schäfer Hoffmann Becker Weiß
Cohen Levi Friedman Mizrahi Katz Brown Young King Hill Moore Fox Bird Begay Yazzie Tsosie Ahmadi Kariuki
Osei Achterberg""".split() + ["van der Berg", "de Vries", "García Márquez", "Ní Bhriain", "da Costa", "ben Haim"]

CITIES = """Tacoma|Eugene|Boise|Spokane|Duluth|Fresno|Tulsa|Dayton|Akron|Savannah|Asheville|Burlington|Macon
|Pueblo|Laredo|Provo|Missoula|Bangor|Olympia|Salem|Peoria|Scranton|Erie|Toledo|Hilo|Flagstaff|Chattanooga
|Shreveport|Lubbock|Sioux Falls|Cedar Rapids|Ann Arbor|Baton Rouge|El Paso|San Bernardino|Santa Fe
|St. Cloud|Fort Collins|Grand Rapids|Kalamazoo|Leeds|Cork|Gdańsk|Wrocław|Tampere|Aarhus|Bergen|Porto
|Valencia|Bologna|Lyon|Marseille|Leipzig|Dortmund|Utrecht|Ghent|Kraków|Kumasi|Enugu|Mombasa|Durban|Pune
|Kochi|Osaka|Sapporo|Busan|Da Nang|İzmir|Tabriz|Haifa|Curitiba|Rosario|Cusco|Guadalajara|Window Rock
|Kailua-Kona|Bethel|Nome""".replace("\n", "").split("|")
US_CITIES = CITIES[: CITIES.index("Leeds")] + ["Window Rock", "Kailua-Kona", "Bethel", "Nome"]
INTL_CITIES = CITIES[CITIES.index("Leeds") : CITIES.index("Window Rock")]
CITY_PRE = "Ash Mill Stone Elder Clear Red Fair Pine Wolf Marl Thorn Bright Cold Hollow Glen Oak Black Kings Ridge Lark".split()
CITY_SUF = "ford brook field haven wick ton bury dale mouth ridge water stead port crest ley hurst".split()

US_STATES = "OR WA CA ID NV AZ NM TX OK KS NE MN WI MI OH PA NY VT ME MA CT NJ GA NC SC FL TN KY IL IN IA MO CO UT MT HI AK".split()

STREET_NAMES = """Alder|Juniper|Kestrel|Old Mill|Harborview|Cypress|Magnolia|Quarry|Tamarack|Wren|Bellweather
|Cobblestone|Foxglove|Larkspur|Saddle Creek|Whitmore|Anchor|Orchard|Bramble|Heron|Sycamore|Linden|Chestnut
|Pemberton|Galloway|Ravensworth|Cardinal|Tupelo|Sequoia|Maple Grove|Dunmore|Prospect|Hawthorne|Winslow
|Canal|Ferry|Depot|Schoolhouse|Railroad|Ocotillo|Mesquite|Paloma|Kukui|Lehua|Copper Kettle|Blue Heron
|Stillwater|Fiddlehead|Thistle|Bluebonnet|Sassafras|Gristmill|Tollgate|Lantern""".replace("\n", "").split("|")
STREET_SUF = [("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Lane", "Ln"), ("Drive", "Dr"), ("Court", "Ct"),
              ("Boulevard", "Blvd"), ("Crescent", "Cres"), ("Terrace", "Ter"), ("Way", "Way"), ("Parkway", "Pkwy"),
              ("Place", "Pl"), ("Circle", "Cir"), ("Trail", "Trl"), ("Highway", "Hwy")]
UK_ST = "Harrowgate Road|Copperfield Mews|Ladysmith Close|Wellington Row|Tannery Lane|Prior's Walk|Bankside Gardens".split("|")
DE_ST = "Lindenstraße|Am Mühlenbach|Schillerstraße|Kastanienallee|Hafenweg|Gartenstraße|Brunnenweg".split("|")
FR_ST = "rue des Lilas|avenue Jean-Jaurès|rue du Moulin|boulevard Voltaire|impasse des Tilleuls|quai Saint-Vincent".split("|")
ES_ST = "Calle de la Luna|Avenida del Puerto|Calle Mayor|Paseo de las Acacias".split("|")
PL_ST = "ul. Długa|ul. Ogrodowa|al. Wiśniowa|ul. Kwiatowa".split("|")

ORGS = [("Ridgeway Health", "ridgeway-health.org"), ("Kestrel Mutual", "kestrelmutual.com"),
        ("Northwind Logistics", "northwind-logistics.co.uk"), ("Pinecrest Family Clinic", "pinecrest-clinic.net"),
        ("Helios Billing", "helios-billing.io"), ("Stadtwerke Eberbach", "stadtwerke-eberbach.de"),
        ("Bluewater Credit Union", "bluewatercu.org"), ("Lumen Orthopaedics", "lumen-ortho.com"),
        ("Cascadia Medical Group", "cascadiamed.org"), ("Tidewater Insurance", "tidewater-ins.com"),
        ("Arbor & Finch LLP", "arborfinch.law"), ("Quillfeather Analytics", "quillfeather.ai"),
        ("Mercy Hollow Hospital", "mercyhollow.org"), ("Saint Brigid's Medical Center", "stbrigids.ie"),
        ("Oakhaven Senior Living", "oakhaven-living.com"), ("Verdant Pharmacy", "verdantrx.com")]
HOSPITALS = ["Ridgeway Health", "Pinecrest Family Clinic", "Cascadia Medical Group", "Mercy Hollow Hospital",
             "Saint Brigid's Medical Center", "Lumen Orthopaedics", "Oakhaven Senior Living", "Valley Regional Medical Center"]
PAYERS = ["Kestrel Mutual", "Tidewater Insurance", "Bluewater Health Plan", "Cascade Benefit Administrators", "Medicare Part B", "State Medicaid"]
MAILHOSTS = ["gmail.com", "outlook.com", "proton.me", "yahoo.co.uk", "icloud.com", "fastmail.fm", "web.de",
             "hotmail.fr", "mail.ru", "naver.com", "yandex.com", "gmx.net", "zoho.in"]

MONTHS = "January February March April May June July August September October November December".split()
MON = [m[:3] for m in MONTHS]
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
AREA = [201, 202, 206, 212, 213, 214, 248, 253, 303, 305, 312, 313, 404, 406, 412, 415, 503, 504, 505, 512,
        541, 602, 612, 615, 617, 646, 702, 704, 713, 719, 720, 734, 808, 816, 907, 913, 916, 919, 971, 978]

# =============================================================================================
# small helpers


def ascii_fold(s: str) -> str:
    s = s.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("ß", "ss").replace("đ", "d").replace("ı", "i")
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c))


def slug(s: str) -> str:
    return "".join(c for c in ascii_fold(s).lower() if c.isalnum())


def digits(r: random.Random, n: int) -> str:
    return "".join(str(r.randint(0, 9)) for _ in range(n))


def letters(r: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ") -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def p(r: random.Random, prob: float) -> bool:
    return r.random() < prob


ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORD_SPECIAL = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}


def words(n: int) -> str:
    if n < 20:
        return ONES[n]
    t, o = divmod(n, 10)
    return TENS[t] + ("" if o == 0 else "-" + ONES[o])


def ord_word(n: int) -> str:
    if n in ORD_SPECIAL:
        return ORD_SPECIAL[n]
    if n < 20:
        return ONES[n] + "th"
    t, o = divmod(n, 10)
    if o == 0:
        return TENS[t][:-1] + "ieth"
    return TENS[t] + "-" + ord_word(o)


def year_words(y: int) -> str:
    if 2000 <= y < 2010:
        return "two thousand" + ("" if y == 2000 else " " + ONES[y - 2000])
    hi, lo = divmod(y, 100)
    tail = "hundred" if lo == 0 else ("oh " + ONES[lo] if lo < 10 else words(lo))
    return words(hi) + " " + tail


def ordinal(n: int) -> str:
    suf = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


SPOKEN_DIGIT = {"0": "oh", **{str(i): ONES[i] for i in range(1, 10)}}

# =============================================================================================
# entity value generators


class Person:
    def __init__(self, r: random.Random):
        self.r = r
        self.first = r.choice(FIRST)
        self.last = r.choice(LAST)
        self.mi = r.choice("ABCDEFGHJKLMNPRSTW")
        self.fem = p(r, 0.5)

    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"

    def tag(self, style: str | None = None) -> T:
        r = self.r
        if style is None:
            style = r.choices(["first_last", "first_mi_last", "last_comma_first", "initial_last"], [6, 2, 1, 1])[0]
        s = {
            "first_last": f"{self.first} {self.last}",
            "first_mi_last": f"{self.first} {self.mi}. {self.last}",
            "last_comma_first": f"{self.last}, {self.first}",
            "upper_last_first": f"{self.last.upper()}, {self.first.upper()} {self.mi}",
            "initial_last": f"{self.first[0]}. {self.last}",
            "last": self.last,
            "first": self.first,
            "lower_first": self.first.lower(),
            "lower_full": f"{self.first} {self.last}".lower(),
            "first_initial": f"{self.first} {self.last[0]}.",
        }[style]
        return E("PERSON", s, style)

    def title(self) -> str:
        return self.r.choice(["Ms.", "Mrs.", "Ms"]) if self.fem else self.r.choice(["Mr.", "Mr"])


def city(r: random.Random, region: str = "us") -> T:
    roll = r.random()
    if roll < 0.6:
        c = r.choice(US_CITIES if region == "us" else INTL_CITIES)
        form = "city_listed"
    elif roll < 0.85:
        c = r.choice(CITY_PRE) + r.choice(CITY_SUF)
        form = "city_derived"
    else:
        c = r.choice(["Port ", "North ", "Lake ", "East ", "New "]) + r.choice(CITY_PRE) + r.choice(CITY_SUF)
        form = "city_derived"
    return E("LOCATION", c, form)


def street(r: random.Random, abbr: bool | None = None) -> T:
    num = r.choice([str(r.randint(1, 99)), str(r.randint(100, 9999)), str(r.randint(10000, 48999))])
    full, short = r.choice(STREET_SUF)
    suf = short if (abbr if abbr is not None else p(r, 0.5)) else full
    pre = r.choice(["", "", "", "N ", "SE ", "W ", "East "])
    s = f"{num} {pre}{r.choice(STREET_NAMES)} {suf}"
    if p(r, 0.3):
        s += r.choice([f" Apt {r.randint(1, 30)}{r.choice('ABCD')}", f", Unit {r.randint(1, 400)}", f" #{r.randint(100, 999)}",
                       f", Suite {r.randint(1, 9)}00"])
    return E("LOCATION", s, "street_us")


def zipcode(r: random.Random) -> T:
    z = f"{r.randint(1, 99499):05d}"
    if p(r, 0.2):
        z += f"-{r.randint(1, 9999):04d}"
    return E("LOCATION", z, "zip")


def us_address(r: random.Random, sep: str = ", ", upper: bool = False) -> list:
    frag = [street(r), sep, city(r), ", " + r.choice(US_STATES) + " ", zipcode(r)]
    return tmap(frag, str.upper) if upper else frag


INTL_BY_COUNTRY = {"uk": ["Leeds", "Bangor", "Norwich", "Swansea", "Derby", "Carlisle"], "de": ["Leipzig", "Dortmund", "Kassel", "Freiburg", "Rostock"],
                   "fr": ["Lyon", "Marseille", "Rennes", "Nantes", "Besançon"], "es": ["Valencia", "Bilbao", "Zaragoza", "Cádiz"],
                   "pl": ["Gdańsk", "Wrocław", "Kraków", "Poznań", "Łódź"]}


def intl_city(r: random.Random, country: str) -> T:
    if p(r, 0.75):
        return E("LOCATION", r.choice(INTL_BY_COUNTRY[country]), "city_listed")
    return city(r, "intl")


def intl_address(r: random.Random) -> list:
    k = r.randrange(5)
    if k == 0:
        st = (f"Flat {r.randint(1, 12)}, " if p(r, 0.4) else "") + f"{r.randint(1, 180)} {r.choice(UK_ST)}"
        pc = f"{r.choice(['LS', 'M', 'B', 'SW', 'N', 'EH', 'CF'])}{r.randint(1, 19)} {r.randint(1, 9)}{letters(r, 2, 'ABDEFGHJLNPQRSTUWXYZ')}"
        return [E("LOCATION", st, "street_uk"), ", ", intl_city(r, "uk"), " ", E("LOCATION", pc, "postcode_uk"), ", United Kingdom"]
    if k == 1:
        st = f"{r.choice(DE_ST)} {r.randint(1, 120)}"
        return [E("LOCATION", st, "street_de"), ", ", E("LOCATION", f"{r.randint(1067, 99998):05d}", "postcode_de"), " ", intl_city(r, "de"), ", Germany"]
    if k == 2:
        st = f"{r.randint(1, 90)}{r.choice(['', '', ' bis'])} {r.choice(FR_ST)}"
        return [E("LOCATION", st, "street_fr"), ", ", E("LOCATION", f"{r.randint(1000, 95999):05d}", "postcode_fr"), " ", intl_city(r, "fr"), ", France"]
    if k == 3:
        st = f"{r.choice(ES_ST)} {r.randint(1, 80)}, {r.randint(1, 9)}º {r.choice('ABCD')}"
        return [E("LOCATION", st, "street_es"), ", ", E("LOCATION", f"{r.randint(1000, 52999):05d}", "postcode_es"), " ", intl_city(r, "es"), ", España"]
    st = f"{r.choice(PL_ST)} {r.randint(1, 90)}/{r.randint(1, 40)}"
    return [E("LOCATION", st, "street_pl"), ", ", E("LOCATION", f"{r.randint(0, 99):02d}-{r.randint(0, 999):03d}", "postcode_pl"), " ", intl_city(r, "pl")]


def rand_date(r: random.Random, lo: int = 2019, hi: int = 2025) -> dt.date:
    return dt.date(r.randint(lo, hi), r.randint(1, 12), r.randint(1, 28))


def rand_dt(r: random.Random, lo: int = 2019, hi: int = 2025) -> dt.datetime:
    d = rand_date(r, lo, hi)
    return dt.datetime(d.year, d.month, d.day, r.randint(0, 23), r.randint(0, 59), r.randint(0, 59), r.randint(0, 999) * 1000)


DATE_FORMS = ["iso", "us_slash", "us_slash_yy", "eu_dot", "ymd_slash", "dmy_abbr_dash", "ordinal_of", "month_day_year",
              "day_month_year", "abbr_month_day", "month_apos", "month_year", "quarter", "weekday_long", "dmy_slash",
              "abbr_dot_day_year", "ordinal_month"]
DAY_FORMS = [x for x in DATE_FORMS if x not in ("month_apos", "month_year", "quarter")]  # a specific day


def date_str(r: random.Random, d: dt.date, form: str) -> str:
    y, m, dd = d.year, d.month, d.day
    if form == "iso":
        return d.isoformat()
    if form == "us_slash":
        return f"{m}/{dd}/{y}" if p(r, 0.5) else f"{m:02d}/{dd:02d}/{y}"
    if form == "us_slash_yy":
        return f"{m}/{dd}/{y % 100:02d}"
    if form == "eu_dot":
        return f"{dd:02d}.{m:02d}.{y}" if p(r, 0.7) else f"{dd}.{m}.{y % 100:02d}"
    if form == "ymd_slash":
        return f"{y}/{m}/{dd}"
    if form == "dmy_abbr_dash":
        mon = MON[m - 1]
        return f"{dd:02d}-{mon.upper() if p(r, 0.3) else mon}-{y if p(r, 0.7) else f'{y % 100:02d}'}"
    if form == "ordinal_of":
        return f"{ordinal(dd)} of {MONTHS[m - 1]}" + (f" {y}" if p(r, 0.5) else "")
    if form == "month_day_year":
        return f"{MONTHS[m - 1]} {dd}, {y}"
    if form == "day_month_year":
        return f"{dd} {MONTHS[m - 1] if p(r, 0.5) else MON[m - 1]} {y}"
    if form == "abbr_month_day":
        return f"{MON[m - 1]} {dd}" if p(r, 0.6) else f"{MON[m - 1]} {ordinal(dd)}"
    if form == "month_apos":
        return f"{MONTHS[m - 1] if p(r, 0.6) else MON[m - 1]} '{y % 100:02d}"
    if form == "month_year":
        return f"{MONTHS[m - 1] if p(r, 0.5) else MON[m - 1]} {y}"
    if form == "quarter":
        q = (m - 1) // 3 + 1
        return r.choice([f"Q{q} {y}", f"Q{q} {y}", f"Q{q}/{y % 100:02d}", f"{y}-Q{q}", f"{ordinal(q)} quarter of {y}"])
    if form == "weekday_long":
        return f"{WEEKDAYS[d.weekday()]}, {MONTHS[m - 1]} {dd}, {y}"
    if form == "dmy_slash":
        return f"{dd:02d}/{m:02d}/{y}"
    if form == "abbr_dot_day_year":
        return f"{MON[m - 1]}. {dd}, {y}" if m != 5 else f"May {dd}, {y}"
    if form == "ordinal_month":
        return f"{ordinal(dd)} {MONTHS[m - 1]}" + (f" {y}" if p(r, 0.5) else "")
    if form == "spoken":
        if p(r, 0.5):
            return f"{MONTHS[m - 1].lower()} {ord_word(dd)} {year_words(y)}"
        return f"{ord_word(dd)} of {MONTHS[m - 1].lower()} {year_words(y)}"
    raise ValueError(form)


def date(r: random.Random, d: dt.date | None = None, forms: list[str] | None = None, lo: int = 2019, hi: int = 2025) -> T:
    d = d or rand_date(r, lo, hi)
    form = r.choice(forms or DAY_FORMS)
    return E("DATE_TIME", date_str(r, d, form), form)


def dob(r: random.Random, forms: list[str] | None = None) -> T:
    return date(r, rand_date(r, 1934, 2006), forms or ["us_slash", "dmy_abbr_dash", "iso", "month_day_year", "eu_dot", "us_slash_yy", "ordinal_of", "day_month_year"])


def time_str(r: random.Random, h: int, mi: int, form: str, s: int = 0, ampm_style: int | None = None) -> str:
    if form == "mil_h":
        return f"{h:02d}{mi:02d}h"
    if form == "mil":
        return f"{h:02d}{mi:02d}"
    if form == "colon24":
        return f"{h:02d}:{mi:02d}"
    if form == "hms":
        return f"{h:02d}:{mi:02d}:{s:02d}"
    if form == "ampm":
        hh = h % 12 or 12
        styles = [f"{hh}:{mi:02d} {'AM' if h < 12 else 'PM'}", f"{hh}:{mi:02d}{'am' if h < 12 else 'pm'}", f"{hh}:{mi:02d} {'a.m.' if h < 12 else 'p.m.'}"]
        return styles[ampm_style] if ampm_style is not None else r.choice(styles)
    if form == "hrs":
        return f"{h:02d}{mi:02d} hrs"
    raise ValueError(form)


def clock(r: random.Random, forms: list[str] | None = None, h: int | None = None, mi: int | None = None) -> T:
    form = r.choice(forms or ["mil_h", "mil", "colon24", "ampm", "hrs"])
    h = r.randint(6, 21) if h is None else h
    mi = r.choice([0, 5, 10, 15, 20, 30, 40, 45, 50, r.randint(0, 59)]) if mi is None else mi
    return E("DATE_TIME", time_str(r, h, mi, form, r.randint(0, 59)), "time_" + form)


def age(r: random.Random) -> T:
    a = r.randint(19, 88) if p(r, 0.85) else r.randint(90, 101)
    s = r.choice([f"{a} yo", f"{a}yo", f"{a} y/o", f"{a}-year-old", f"{a} years old", f"{a}{r.choice('FM')}", f"{a} y.o."])
    return E("DATE_TIME", s, "age")  # "63F" (age and sex in one token) included


def nanp(r: random.Random) -> tuple[str, str, str]:
    a = str(r.choice(AREA))
    if p(r, 0.45):
        e, line = "555", f"01{r.randint(0, 99):02d}"
    else:
        while True:
            e = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(0, 9)}"
            if e[1:] != "11":
                break
        line = f"{r.randint(0, 9999):04d}"
    return a, e, line


def phone(r: random.Random, intl: float = 0.25) -> T:
    if p(r, intl):
        return intl_phone(r)
    a, e, ln = nanp(r)
    k = r.randrange(11)
    s = [f"({a}) {e}-{ln}", f"({a}) {e} {ln}", f"{a}-{e}-{ln}", f"{a}.{e}.{ln}", f"+1 {a} {e} {ln}", f"+1-{a}-{e}-{ln}",
         f"1 ({a}) {e}-{ln}", f"{a}{e}{ln}", f"{a} {e} {ln}", f"({a}){e}-{ln}", f"+1 ({a}) {e}-{ln}"][k]
    return E("PHONE_NUMBER", s, ["paren_dash", "paren_space", "dash", "dot", "plus1_space", "plus1_dash", "one_paren",
                                 "bare10", "space", "paren_tight", "plus1_paren"][k])


def intl_phone(r: random.Random) -> T:
    k = r.randrange(10)
    s = [
        f"+44 20 7946 0{digits(r, 3)}",
        f"+44 7700 900{digits(r, 3)}",
        f"+44 (0)161 496 0{digits(r, 3)}",
        f"+49 30 {r.randint(2, 9)}{digits(r, r.choice([5, 6, 7]))}",
        f"+49 (0)89 {digits(r, 4)} {digits(r, 3)}",
        f"+33 {r.randint(1, 7)} {digits(r, 2)} {digits(r, 2)} {digits(r, 2)} {digits(r, 2)}",
        f"+91 {r.choice('6789')}{digits(r, 4)} {digits(r, 5)}",
        f"+61 {r.choice(['2', '3', '7', '8'])} {digits(r, 4)} {digits(r, 4)}",
        f"+81 {r.choice(['3', '6', '90'])}-{digits(r, 4)}-{digits(r, 4)}",
        f"+234 {r.choice(['803', '805', '816', '703'])} {digits(r, 3)} {digits(r, 4)}",
    ][k]
    return E("PHONE_NUMBER", s, "intl_" + ["gb", "gb_mobile", "gb_0", "de", "de_0", "fr", "in", "au", "jp", "ng"][k])


def spoken_phone(r: random.Random) -> T:
    a, e, ln = nanp(r)
    sp = lambda g: " ".join(SPOKEN_DIGIT[c] for c in g)  # noqa: E731
    sep = r.choice([", ", "... ", " "])
    return E("PHONE_NUMBER", f"{sp(a)}{sep}{sp(e)}{sep}{sp(ln)}", "spoken")


def ssn_digits(r: random.Random) -> tuple[str, str, str]:
    while True:
        a = r.randint(1, 899)
        if a != 666:
            break
    return f"{a:03d}", f"{r.randint(1, 99):02d}", f"{r.randint(1, 9999):04d}"


def ssn(r: random.Random, forms: list[str] | None = None) -> T:
    a, g, s = ssn_digits(r)
    form = r.choice(forms or ["dash", "dash", "space", "nodash"])
    return E("US_SSN", {"dash": f"{a}-{g}-{s}", "space": f"{a} {g} {s}", "nodash": f"{a}{g}{s}"}[form], form)


def email(r: random.Random, person: Person | None = None, domain: str | None = None) -> T:
    person = person or Person(r)
    fn, ln = slug(person.first), slug(person.last)
    k = r.randrange(7)
    local = [f"{fn}.{ln}", f"{fn[0]}{ln}", f"{fn}_{ln}{r.randint(1, 99)}", f"{fn}.{ln}+{r.choice(['claims', 'billing', 'hr', 'noreply', 'receipts', 'portal'])}",
             f"{ln}.{fn[0]}", f"{fn}{r.randint(60, 2005)}", f"{fn[0]}.{ln}+{r.choice(['work', 'spam', 'ins'])}"][k]
    if domain is None:
        if p(r, 0.45):
            domain = r.choice(MAILHOSTS)
        else:
            base = r.choice(ORGS)[1]
            domain = r.choice([base, "mail." + base, r.choice(["staff", "eu", "us-west", "billing", "corp"]) + "." + base,
                               r.choice(["ops.eu.", "hr.us.", "mx1.corp."]) + base])
    form = "plus" if "+" in local else ("subdomain" if domain.count(".") >= 2 and not domain.endswith(".co.uk") else "plain")
    return E("EMAIL_ADDRESS", f"{local}@{domain}", form)


def url(r: random.Random, domain: str | None = None, scheme: bool | None = None) -> T:
    domain = domain or r.choice(ORGS)[1]
    host = r.choice(["", "www.", "portal.", "intranet.", "api.", "claims.", "my.", "status.", "files.eu."]) + domain
    port = r.choice(["", "", "", ":8443", ":8080", ":3000", ":9443"])
    path = r.choice(["", "/", "/login", "/claims/view", "/members/self-service/id-card", "/help/billing-faq",
                     "/appointments/reschedule", "/pay", "/s/3xYz9Q", "/docs/hr/benefits-2024.pdf", "/api/v1/status"])
    q = ""
    if p(r, 0.4):
        q = "?" + "&".join(r.sample([f"id={r.randint(1000, 99999)}", "tab=notes", "lang=en", f"ref={letters(r, 6)}",
                                     "utm_source=email", f"session={digits(r, 6)}", "step=2", "redirect=%2Fhome"], r.randint(1, 3)))
    if p(r, 0.1):
        q += "#section-" + str(r.randint(1, 9))
    use_scheme = scheme if scheme is not None else p(r, 0.8)
    pre = r.choice(["https://", "https://", "http://"]) if use_scheme else ""
    if not use_scheme and not host.startswith("www."):
        host = "www." + domain
    form = ("scheme" if use_scheme else "www") + ("_port" if port else "") + ("_query" if q else "")
    return E("URL", f"{pre}{host}{port}{path}{q}", form)


def ipv4(r: random.Random) -> str:
    k = r.randrange(5)
    if k == 0:
        return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    if k == 1:
        return f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}"
    if k == 2:
        return f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    if k == 3:
        return r.choice(["203.0.113", "198.51.100", "192.0.2"]) + f".{r.randint(1, 254)}"
    return f"{r.choice([23, 45, 64, 81, 91, 104, 142, 151, 185, 212])}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def ipv6(r: random.Random) -> tuple[str, str]:
    k = r.randrange(5)
    if k == 0:
        g = [f"{r.randint(0, 0xFFFF):04x}" for _ in range(8)]
        g[0], g[1] = "2001", "0db8"
        return ":".join(g), "v6_full"
    if k == 1:
        groups = [0x2001, 0xDB8, r.randint(0, 0xFFFF), 0, 0, 0, r.randint(0, 0xFFFF), r.randint(1, 0xFFFF)]
        return str(ipaddress.IPv6Address(":".join(f"{x:x}" for x in groups))), "v6_compressed"
    if k == 2:
        return f"fe80::{r.randint(0, 0xFFFF):x}:{r.randint(0, 0xFFFF):x}:{r.randint(0, 0xFFFF):x}:{r.randint(1, 0xFFFF):x}", "v6_linklocal"
    if k == 3:
        return f"::ffff:{ipv4(r)}", "v6_mapped"
    a = ipaddress.IPv6Address((0x2600 << 112) | (r.getrandbits(40) << 72) | r.getrandbits(24))
    return a.compressed, "v6_global"


def ip(r: random.Random, v6: float = 0.3) -> T:
    if p(r, v6):
        s, form = ipv6(r)
        return E("IP_ADDRESS", s, form)
    return E("IP_ADDRESS", ipv4(r), "v4")


def luhn_complete(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def luhn_ok(s: str) -> bool:
    ds = [int(c) for c in s if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card(r: random.Random) -> T:
    k = r.randrange(4)
    if k == 0:
        num, brand = luhn_complete("4" + digits(r, 14)), "visa"
    elif k == 1:
        pre = str(r.randint(51, 55)) if p(r, 0.7) else str(r.randint(2221, 2720))
        num, brand = luhn_complete(pre + digits(r, 15 - len(pre))), "mc"
    elif k == 2:
        num, brand = luhn_complete(r.choice(["34", "37"]) + digits(r, 12)), "amex"
    else:
        pre = r.choice(["6011", "65"])
        num, brand = luhn_complete(pre + digits(r, 15 - len(pre))), "discover"
    sep = r.choice([" ", "-", "", " "])
    if brand == "amex":
        s = sep.join([num[:4], num[4:10], num[10:]])
    else:
        s = sep.join(num[i:i + 4] for i in range(0, 16, 4))
    return E("CREDIT_CARD", s, f"{brand}_{'none' if sep == '' else 'space' if sep == ' ' else 'dash'}")


IBAN_SPECS = {  # country: list of (kind, count) where kind is n digits, a upper letters, c alnum
    "DE": [("n", 8), ("n", 10)], "GB": [("a", 4), ("n", 6), ("n", 8)], "FR": [("n", 5), ("n", 5), ("c", 11), ("n", 2)],
    "NL": [("a", 4), ("n", 10)], "ES": [("n", 20)], "IT": [("a", 1), ("n", 10), ("c", 12)], "BE": [("n", 12)],
    "CH": [("n", 5), ("c", 12)], "PL": [("n", 24)], "IE": [("a", 4), ("n", 6), ("n", 8)], "AT": [("n", 16)],
    "PT": [("n", 21)], "SE": [("n", 20)], "NO": [("n", 11)], "DK": [("n", 14)], "FI": [("n", 14)],
}


def iban_check(country: str, bban: str) -> str:
    s = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in s)
    return f"{98 - int(num) % 97:02d}"


def iban_ok(s: str) -> bool:
    s = s.replace(" ", "")
    r = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in r)) % 97 == 1


def iban(r: random.Random) -> T:
    c = r.choice(list(IBAN_SPECS))
    bban = ""
    for kind, n in IBAN_SPECS[c]:
        if kind == "n":
            bban += digits(r, n)
        elif kind == "a":
            bban += letters(r, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        else:
            bban += "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(n))
    s = c + iban_check(c, bban) + bban
    if p(r, 0.65):
        s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
        form = "grouped"
    else:
        form = "compact"
    return E("IBAN_CODE", s, f"{c}_{form}")


def mrn(r: random.Random) -> T:
    k = r.randrange(7)
    s = [digits(r, 8), "A" + digits(r, 8), f"{digits(r, 4)}-{digits(r, 3)}", f"MR-{digits(r, 6)}", "E" + digits(r, 7),
         f"{digits(r, 3)}-{digits(r, 2)}-{digits(r, 2)}", f"{digits(r, 2)}{letters(r, 1)}{digits(r, 6)}"][k]
    return E("MEDICAL_RECORD_NUMBER", s, ["n8", "a_n8", "n4_n3", "mr_n6", "e_n7", "n3_n2_n2", "n2_a_n6"][k])


MBI_L = "ACDEFGHJKMNPQRTUVWXY"


def mbi(r: random.Random) -> str:
    an = MBI_L + "0123456789"
    s = (str(r.randint(1, 9)) + r.choice(MBI_L) + r.choice(an) + str(r.randint(0, 9)) + r.choice(MBI_L) + r.choice(an)
         + str(r.randint(0, 9)) + r.choice(MBI_L) + r.choice(MBI_L) + str(r.randint(0, 9)) + str(r.randint(0, 9)))
    return f"{s[:4]}-{s[4:7]}-{s[7:]}" if p(r, 0.5) else s


def health_plan(r: random.Random) -> T:
    k = r.randrange(6)
    s = [letters(r, 3) + digits(r, 9), "W" + digits(r, 9), mbi(r), f"POL-{digits(r, 4)}-{digits(r, 5)}",
         f"{digits(r, 4)}-{digits(r, 3)}-{digits(r, 3)}", f"{letters(r, 2)}{digits(r, 6)}{letters(r, 1)}"][k]
    return E("HEALTH_PLAN_ID", s, ["a3_n9", "w_n9", "mbi", "pol", "n4_n3_n3", "medicaid"][k])


def account(r: random.Random) -> T:
    k = r.randrange(5)
    s = [digits(r, 12), f"{digits(r, 2)}-{digits(r, 5)}-{digits(r, 1)}", digits(r, 8), f"{digits(r, 4)}-{digits(r, 4)}-{digits(r, 2)}",
         f"{digits(r, 3)} {digits(r, 3)} {digits(r, 4)}"][k]
    return E("ACCOUNT_NUMBER", s, ["n12", "n2_n5_n1", "n8", "n4_n4_n2", "spaced"][k])


def rn_license(r: random.Random) -> T:
    return E("LICENSE_NUMBER", r.choice([f"RN{digits(r, 6)}", digits(r, 7), f"RN.{digits(r, 7)}", f"{digits(r, 3)}{letters(r, 1)}{digits(r, 4)}"]), "rn")


def dea(r: random.Random, last: str) -> str:
    ds = [r.randint(0, 9) for _ in range(6)]
    check = (ds[0] + ds[2] + ds[4] + 2 * (ds[1] + ds[3] + ds[5])) % 10
    return r.choice("ABFGM") + ascii_fold(last)[0].upper() + "".join(map(str, ds)) + str(check)


def license_no(r: random.Random, last: str = "X") -> T:
    k = r.randrange(7)
    s = ["B" + digits(r, 7) if p(r, 0.5) else letters(r, 1) + digits(r, 7),
         f"{letters(r, 1)}{digits(r, 3)}-{digits(r, 3)}-{digits(r, 2)}-{digits(r, 3)}-{digits(r, 1)}",
         f"{digits(r, 3)} {digits(r, 3)} {digits(r, 3)}",
         f"{letters(r, 1)}{digits(r, 3)}-{digits(r, 4)}-{digits(r, 4)}",
         "WDL" + "".join(r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(9)),
         dea(r, last),
         f"RN{digits(r, 6)}"][k]
    return E("LICENSE_NUMBER", s, ["dl_ca", "dl_fl", "dl_ny", "dl_il", "dl_wa", "dea", "rn"][k])


VIN_MAP = {**{str(i): i for i in range(10)}, **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7,
           "R": 9, **dict(zip("STUVWXYZ", range(2, 10)))}
VIN_W = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
VIN_CH = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def vin_ok(v: str) -> bool:
    if len(v) != 17:
        return False
    tot = sum(VIN_MAP[c] * w for c, w in zip(v, VIN_W))
    return v[8] == ("X" if tot % 11 == 10 else str(tot % 11))


def vin(r: random.Random) -> str:
    body = list(r.choice(["1HG", "JHM", "WVW", "1FT", "5YJ", "2T1", "KMH", "3VW", "WBA", "JN1", "1C4", "SAL", "YV1", "VF1"]))
    body += [r.choice(VIN_CH) for _ in range(5)] + ["0"] + [r.choice("ABCDEFGHJKLMNPRSTVWXY123456789")] + [r.choice(VIN_CH)]
    body += [str(r.randint(0, 9)) for _ in range(6)]
    tot = sum(VIN_MAP[c] * w for c, w in zip(body, VIN_W))
    body[8] = "X" if tot % 11 == 10 else str(tot % 11)
    return "".join(body)


def vehicle(r: random.Random, kind: str = "any") -> T:
    k = {"any": r.randrange(5), "vin": 0, "plate": r.randrange(2, 5)}[kind]
    if k <= 1:
        return E("VEHICLE_ID", vin(r), "vin")
    s = [f"{r.randint(1, 9)}{letters(r, 3)}{digits(r, 3)}", f"{letters(r, 3)}-{digits(r, 4)}",
         f"{letters(r, 2)}{digits(r, 2)} {letters(r, 3)}"][k - 2]
    return E("VEHICLE_ID", s, ["plate_ca", "plate_ny", "plate_uk"][k - 2])


def mac(r: random.Random) -> T:
    o = [r.randint(0, 255) for _ in range(6)]
    k = r.randrange(4)
    s = [":".join(f"{x:02x}" for x in o), ":".join(f"{x:02X}" for x in o), "-".join(f"{x:02X}" for x in o),
         ".".join(f"{o[i]:02x}{o[i + 1]:02x}" for i in (0, 2, 4))][k]
    return E("DEVICE_ID", s, ["mac_colon_lower", "mac_colon_upper", "mac_dash", "mac_cisco"][k])


def imei(r: random.Random) -> T:
    n = luhn_complete(r.choice(["35", "86", "01", "49"]) + digits(r, 12))
    s = n if p(r, 0.6) else f"{n[:2]}-{n[2:8]}-{n[8:14]}-{n[14]}"
    return E("DEVICE_ID", s, "imei")


def serial(r: random.Random) -> T:
    k = r.randrange(5)
    s = [f"{letters(r, 3)}{digits(r, 6)}{letters(r, 1)}", f"NG{digits(r, 6)}{letters(r, 1)}", digits(r, 20),
         f"{letters(r, 1)}{digits(r, 1)}{letters(r, 1)}{digits(r, 1)}{letters(r, 2)}", f"SN{digits(r, 4)}-{letters(r, 2)}{digits(r, 5)}"][k]
    return E("DEVICE_ID", s, ["serial_pacer", "serial_pump", "serial_usb", "serial_cgm", "serial_sn"][k])


# =============================================================================================
# hard negatives


def neg_invoice(r):
    return N("invoice_number", r.choice([f"INV-{r.randint(2019, 2025)}{r.randint(1, 12):02d}{r.randint(1, 28):02d}-{digits(r, 4)}",
                                         f"INV{digits(r, 7)}", f"#{digits(r, 6)}-{letters(r, 2)}", f"FAC-{digits(r, 5)}"]))


def neg_ticket(r):
    return N("ticket_id", r.choice([f"INC{digits(r, 7)}", f"OPS-{r.randint(100, 9999)}", f"CHG{digits(r, 7)}",
                                    f"SR-{digits(r, 3)}-{digits(r, 4)}", f"#{r.randint(10000, 99999)}"]))


def neg_version(r):
    return N("version", r.choice([f"v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 20)}", f"{r.randint(1, 4)}.{r.randint(0, 18)}.{r.randint(0, 9)}-rc{r.randint(1, 3)}",
                                  f"build {r.randint(1000, 9999)}.{r.randint(1, 99)}", f"nginx/1.{r.randint(18, 27)}.{r.randint(0, 4)}",
                                  f"OpenSSL 3.{r.randint(0, 3)}.{r.randint(0, 15)}"]))


def neg_fw_ipv4(r):
    return N("firmware_ipv4_like", f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}")


def neg_lab(r):
    return N("lab_value", r.choice([f"Na {r.randint(131, 146)}", f"K {r.randint(30, 55) / 10}", f"Cr {r.randint(60, 180) / 100:.2f}",
                                    f"HbA1c {r.randint(52, 110) / 10}%", f"WBC {r.randint(30, 180) / 10}", f"Hgb {r.randint(80, 170) / 10}",
                                    f"INR {r.randint(9, 35) / 10}", f"Trop {r.randint(1, 90) / 1000:.3f}", f"BNP {r.randint(20, 2400)}",
                                    f"Plt {r.randint(90, 450)}", f"glucose {r.randint(70, 320)} mg/dL", f"TSH {r.randint(4, 80) / 10}"]))


DRUGS = ["metoprolol succinate 25 mg PO daily", "lisinopril 10 mg PO daily", "apixaban 5 mg PO BID", "atorvastatin 40 mg PO qHS",
         "insulin glargine 18 units SC qHS", "furosemide 40 mg IV BID", "hydrocodone/APAP 5/325 1-2 tabs q6h PRN",
         "heparin 5000 units SC q8h", "amoxicillin-clavulanate 875/125 mg PO BID x 7 days", "ondansetron 4 mg IV q6h PRN",
         "levothyroxine 88 mcg PO daily", "tamsulosin 0.4 mg PO qHS", "prednisone 40 mg PO daily x 5d", "NS @ 75 mL/hr",
         "pantoprazole 40 mg PO daily", "vancomycin 1250 mg IV q12h", "oxycodone 5 mg PO q4h PRN", "sertraline 50 mg daily"]


def neg_drug(r):
    return N("drug_dose", r.choice(DRUGS))


def neg_bp(r):
    return N("bp_reading", f"{r.randint(95, 178)}/{r.randint(55, 102)}")


def neg_duration(r):
    return N("duration", r.choice([f"00:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}", f"{r.randint(0, 1)}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{digits(r, 3)}",
                                   f"{r.randint(1, 30)}:{r.randint(0, 59):02d}", f"{r.randint(1, 9)}h{r.randint(0, 59):02d}m"]))


def neg_product_code(r):
    return N("product_code", r.choice([f"SKU {digits(r, 2)}-{digits(r, 5)}-{letters(r, 1)}", f"REF {digits(r, 4)}-{digits(r, 2)}",
                                       f"Lot {r.randint(20, 25)}{letters(r, 1)}{digits(r, 3)}", f"P/N {letters(r, 2)}{digits(r, 4)}-{digits(r, 2)}",
                                       f"model {letters(r, 3)}-{digits(r, 3)}"]))


def neg_quantity(r):
    return N("quantity", r.choice([f"{r.randint(10000, 99999)} units", f"{r.randint(10000, 99999)} pcs", f"{r.randint(10000, 99999)} steps",
                                   f"{r.randint(10000, 99999)} kg", f"{r.randint(10000, 99999)} rows"]))


def neg_product_name(r):
    return N("product_name", r.choice(["Dr Pepper", "Dr. Pepper", "Mr. Clean", "Dr. Martens", "Mrs. Meyer's", "Dr. Scholl's",
                                       "Captain Crunch", "Uncle Ben's", "Aunt Jemima"]))


def neg_street_product(r):
    return N("street_like_product", r.choice(["Maple Lane 3-seater sofa", "Harbor Drive desk lamp", "Elm Street Roast",
                                              "Park Avenue sedan", "Sunset Boulevard lipstick", "Abbey Road remaster",
                                              "Canal Street blend", "Baker Street tweed jacket"]))


def neg_year(r):
    y = r.randint(1998, 2025)
    return N("year_only", r.choice([f"{y}", f"FY{y}", f"FY{y % 100:02d}", f"in {y}"]))


def neg_masked_card(r):
    return N("masked_card", r.choice([f"**** **** **** {digits(r, 4)}", f"xxxx-xxxx-xxxx-{digits(r, 4)}", f"ending in {digits(r, 4)}",
                                      f"XXX-XX-{digits(r, 4)}"]))


def neg_masked_ssn(r):
    return N("masked_ssn", r.choice([f"XXX-XX-{digits(r, 4)}", f"***-**-{digits(r, 4)}", f"ending in {digits(r, 4)}"]))


def neg_routing(r):
    body = digits(r, 8)
    w = [3, 7, 1, 3, 7, 1, 3, 7]
    chk = (10 - sum(int(c) * k for c, k in zip(body, w)) % 10) % 10
    return N("routing_number", body + str(chk))


def neg_ein(r):
    return N("ein", f"{r.choice([12, 20, 27, 45, 46, 47, 81, 82, 84, 94])}-{digits(r, 7)}")


def neg_ndc(r):
    return N("ndc_code", f"{digits(r, 5)}-{digits(r, 4)}-{digits(r, 2)}")


def neg_cpt(r):
    return N("cpt_code", r.choice(["99213", "99214", "99283", "93000", "80053", "36415", "71046", "97110", "90471"]))


def neg_icd(r):
    return N("icd_code", r.choice(["E11.9", "I10", "J18.9", "N39.0", "I48.91", "M54.50", "Z79.4", "K21.9", "R07.9", "F41.1"]))


def neg_part_ssn_like(r):
    a, g, s = ssn_digits(r)
    return N("part_number_ssn_like", f"{a}-{g}-{s}")


def neg_filename(r):
    return N("filename", r.choice(["setup.py", "main.rs", "index.md", "deploy.sh", "claims_export.csv", "README.md", "values.yaml",
                                   "intake_form_v3.pdf", "app.ts", "report.pl"]))


def neg_trace(r):
    return N("trace_id", r.choice(["".join(r.choice("0123456789abcdef") for _ in range(32)),
                                   "-".join("".join(r.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12))]))


def neg_money(r):
    return N("money", r.choice([f"${r.randint(100, 99999):,}.{digits(r, 2)}", f"€{r.randint(10, 9999)},{digits(r, 2)}", f"${r.randint(40, 160)},{r.choice(['000', '500'])}"]))


def neg_salary(r):
    return N("money", r.choice([f"${r.randint(38, 190)},{r.choice(['000', '500', '250'])}", f"£{r.randint(28, 120)},000", f"€{r.randint(30, 110)}.000"]))


def neg_eponym(r):
    return N("eponym", r.choice(["Parkinson's", "Foley catheter", "Glasgow Coma Scale", "Bell's palsy", "Crohn's", "Hodgkin lymphoma",
                                 "Alzheimer's", "Apgar", "Swan-Ganz", "Lyme disease", "Cushing's", "Hashimoto's", "Tdap"]))


def neg_pain(r):
    return N("pain_score", f"{r.randint(0, 10)}/10")


def neg_form_version(r):
    return N("form_version", r.choice(["CMS-1500 (02-12)", "UB-04", "OMB-0938-1197", "ADA J430D (2019)"]))


def neg_bic(r):
    return N("bic", r.choice(["DEUTDEFF", "COBADEFFXXX", "BNPAFRPP", "NWBKGB2L", "INGBNL2A", "BSCHESMM", "PKOPPLPW"]))


def neg_message_id(r):
    return N("message_id", f"<{''.join(r.choice('abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789') for _ in range(24))}@mail.{r.choice(ORGS)[1]}>")


# =============================================================================================
# genres. Each writes into a Doc.

FILL = ["um", "uh", "like", "you know", "so", "yeah", "mm-hmm", "okay so"]


def f(r):
    return r.choice(FILL) + r.choice([", ", " ", "... "])


def g_email(r: random.Random, d: Doc) -> None:
    org, dom = r.choice(ORGS)
    a, b, c, subj_p = Person(r), Person(r), Person(r), Person(r)
    ea, eb, ec = email(r, a, r.choice([dom, "mail." + dom])), email(r, b), email(r, c, dom)
    t2 = rand_dt(r)
    t1 = t2 - dt.timedelta(hours=r.randint(2, 90), minutes=r.randint(0, 59))
    subjects = {"claim": "Denied claim - need callback", "appt": "Appt reschedule", "bank": "Remittance details update", "it": "Portal access issue",
                "hr": "Start date + paperwork", "ship": "Shipment discrepancy", "address": "Address change on file", "refund": "Refund request"}
    topic = r.choice(list(subjects))
    subject = subjects[topic]

    def header(style, who, who_e, to, to_e, when, prefix):
        if style == "outlook":
            d.line("From: ", who.tag("first_last"), " <", who_e, ">")
            hh = when.hour % 12 or 12
            d.line("Sent: ", E("DATE_TIME", f"{WEEKDAYS[when.weekday()]}, {MONTHS[when.month - 1]} {when.day}, {when.year} {hh}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}", "email_sent"))
            d.line("To: ", to.tag("last_comma_first"), " <", to_e, ">")
            if p(r, 0.5):
                d.line("Cc: ", ec)
            d.line("Subject: ", prefix, subject)
        else:
            zone = r.choice(["+0000", "-0700", "+0100", "+0530"])
            d.line("Date: ", E("DATE_TIME", f"{WEEKDAYS[when.weekday()][:3]}, {when.day} {MON[when.month - 1]} {when.year} {when:%H:%M:%S} {zone}", "rfc2822"))
            d.line("From: \"", who.tag("last_comma_first"), "\" <", who_e, ">")
            d.line("To: ", to_e)
            if p(r, 0.6):
                d.line("Message-ID: ", neg_message_id(r))
            d.line("Subject: ", prefix, subject)
        d.line()

    def body(q: str) -> list[list]:
        """Lines of a message body, each a fragment; q is the quote prefix."""
        L: list[list] = []
        if topic == "claim":
            L.append(["I spoke with ", subj_p.tag(), " this morning about the denied claim for DOS ", date(r), "."])
            L.append(["Member ID ", health_plan(r), ", she says they billed CPT ", neg_cpt(r), " instead of ", neg_cpt(r), "."])
            L.append(["Can someone call her back at ", phone(r), " before ", clock(r, ["ampm", "colon24"]), "?"])
        elif topic == "appt":
            L.append(["Pt ", subj_p.tag(), " (MRN ", mrn(r), ") needs to move her ", date(r, forms=["abbr_month_day", "us_slash", "ordinal_of"]), " ", clock(r, ["ampm", "mil_h"]), " appt."])
            L.append(["She asked for anything the week of ", date(r, forms=["ordinal_of", "month_day_year", "abbr_month_day"]), ". Cell is ", phone(r), ", email ", email(r, subj_p), "."])
            L.append(["FYI she's on ", neg_drug(r), " so no AM slots pls."])
        elif topic == "bank":
            L.append(["Please update the remittance for ", subj_p.tag(), ": IBAN ", iban(r), " (BIC ", neg_bic(r), ")."])
            L.append(["The old card ", neg_masked_card(r), " should come off file. Invoice ", neg_invoice(r), " is still open for ", neg_money(r), "."])
        elif topic == "it":
            L.append(["Ticket ", neg_ticket(r), ": ", subj_p.tag(), " can't reach the portal since the upgrade to ", neg_version(r), "."])
            L.append(["Her laptop (MAC ", mac(r), ") keeps pulling ", ip(r, 0.2), " from DHCP; firmware on the AP is ", neg_fw_ipv4(r), "."])
            L.append(["Repro: ", url(r, dom, True), " then open ", neg_filename(r), "."])
        elif topic == "hr":
            L.append([subj_p.tag(), "'s start date moved to ", date(r, forms=["ordinal_of", "month_day_year", "dmy_abbr_dash", "ymd_slash"]), "."])
            L.append(["Send the I-9 packet to ", us_address(r), ". Home phone ", phone(r), "."])
            L.append(["Comp is unchanged at ", neg_salary(r), "; review cycle is ", date(r, forms=["quarter"]), "."])
        elif topic == "ship":
            L.append(["Part no. ", neg_part_ssn_like(r), " (", neg_street_product(r), ") is back-ordered until ", date(r), "."] if p(r, 0.5)
                     else ["Note the ", neg_street_product(r), " was listed under part no. ", neg_part_ssn_like(r), " by mistake."])
            L.append([neg_quantity(r), " of ", neg_product_code(r), " went out on ", date(r), " to ", us_address(r) if p(r, 0.6) else intl_address(r), "."])
            L.append(["Invoice ", neg_invoice(r), " attached. Signed for at ", clock(r, ["colon24", "mil_h", "hrs"]), " by ", subj_p.tag(), "."])
        elif topic == "address":
            L.append(["Customer ", subj_p.tag(), " (acct no. ", account(r), ") moved to ", intl_address(r) if p(r, 0.4) else us_address(r), "."])
            L.append(["New mobile ", phone(r, 0.5), ". DOB on file ", dob(r), " matches."])
        else:
            L.append(["Refund for ", subj_p.tag(), " went back to card ", card(r), " on ", date(r), "."])
            L.append(["If it bounces, use acct no. ", account(r), " instead. Case ", neg_ticket(r), "."])
        return L

    style = r.choice(["outlook", "rfc"])
    header(style, a, ea, b, eb, t2, r.choice(["RE: ", "RE: FW: ", "Fwd: ", "Re: "]))
    d.line(r.choice(["Hi ", "Hello ", "Dear ", ""]), b.tag("first"), ",")
    d.line()
    for ln in body(""):
        d.line(*ln)
    d.line()
    d.line(r.choice(["Thanks,", "Best,", "Cheers,", "Kind regards,", "Rgds"]))
    d.line(a.tag(r.choice(["first_last", "first"])))
    if p(r, 0.8):
        d.line(r.choice(["Claims Specialist", "Office Manager", "IT Service Desk", "HR Generalist", "Billing Lead"]), " | ", org)
        d.line("T: ", phone(r), ["  M: ", phone(r, 0.4)] if p(r, 0.5) else "")
        if p(r, 0.5):
            d.line(us_address(r))
        if p(r, 0.5):
            d.line(url(r, dom))
    d.line()
    # quoted older message
    if style == "outlook" or p(r, 0.5):
        d.line("-----Original Message-----" if p(r, 0.5) else "________________________________")
        header("outlook", b, eb, a, ea, t1, "")
        q = ""
    else:
        d.line("On ", E("DATE_TIME", f"{WEEKDAYS[t1.weekday()][:3]}, {t1.day} {MON[t1.month - 1]} {t1.year} at {t1:%H:%M}", "gmail_quote"), ", ", b.tag("first_last"), " <", eb, "> wrote:")
        q = "> "
    topic = r.choice(["claim", "appt", "bank", "it", "hr", "ship", "address", "refund"])
    for ln in body(q):
        d.line(q, *ln)
    d.line(q)
    d.line(q, b.tag("first"))
    if q and p(r, 0.5):
        d.line(">> ", r.choice(["Forwarding from ", "Looping in "]), c.tag(), " (", ec, ") who handles ", r.choice(["escalations", "refunds", "intake"]), ".")


def g_discharge(r: random.Random, d: Doc) -> None:
    pt, att, pcp, fam = Person(r), Person(r), Person(r), Person(r)
    adm = rand_date(r)
    dc = adm + dt.timedelta(days=r.randint(1, 12))
    hosp = r.choice(HOSPITALS)
    d.line(r.choice(["DISCHARGE SUMMARY", "Discharge Summary", "D/C SUMMARY"]), " - ", hosp)
    sep = r.choice(["   ", " | ", "\n"])
    d.add("Pt: ", pt.tag(r.choice(["last_comma_first", "upper_last_first", "first_last"])), sep,
          r.choice(["MRN: ", "MRN# ", "Med Rec #: ", "chart #", "Hosp No. "]), mrn(r), sep,
          "DOB: ", dob(r), r.choice(["", f" ({r.choice(['F', 'M'])})"]), "\n")
    fm = r.choice([["ymd_slash"], ["us_slash"], ["dmy_abbr_dash"], ["iso"], ["eu_dot"]])
    d.line("Admit: ", date(r, adm, fm), sep.replace("\n", "   "), "D/C: ", date(r, dc, fm), " ", clock(r, ["mil", "mil_h", "colon24"]))
    d.line("Attending: Dr. ", att.tag(r.choice(["first_last", "initial_last", "last"])), r.choice(["", ", MD", " MD"]),
           "   PCP: Dr. ", pcp.tag("last"), [" (", phone(r, 0.0), ")"] if p(r, 0.4) else "")
    d.line()
    d.line("CC: ", r.choice(["chest pain", "SOB", "fall at home", "fever/chills", "RLQ pain", "syncope"]))
    d.line("HPI: ", age(r), " w/ hx of ", r.choice(["DM2, HTN, HLD", "CHF (EF 35%), AFib", "COPD on 2L home O2", "CKD3, gout"]),
           [r.choice([", ", " and "]), neg_eponym(r)] if p(r, 0.5) else "", " p/w ", r.choice(["2 days", "3 wks", "several hrs"]),
           " of sx. Pt reports onset ~", clock(r, ["mil", "mil_h", "ampm"]), " on ", date(r, adm - dt.timedelta(days=r.randint(0, 3)), ["abbr_month_day", "ordinal_of", "us_slash"]), ".")
    d.line("Hosp course: admitted to tele, started on ", neg_drug(r), ". ", neg_lab(r), ", ", neg_lab(r), " on adm. ",
           r.choice(["Echo unremarkable.", "CXR w/ RLL infiltrate.", "Cards consulted."]),
           [" Placed ", neg_eponym(r), "."] if p(r, 0.3) else "")
    d.line("Labs on D/C: ", neg_lab(r), ", ", neg_lab(r), ", ", neg_lab(r), ". BP ", neg_bp(r), ". Dx: ", neg_icd(r), ".")
    d.line("D/C meds:")
    for _ in range(r.randint(2, 4)):
        d.line("  - ", neg_drug(r))
    if p(r, 0.5):
        d.line("Device: ", r.choice(["dual-chamber pacemaker, serial ", "insulin pump SN ", "CGM transmitter ", "ICD, S/N "]), serial(r))
    if p(r, 0.6):
        d.line("Insurance: ", r.choice(["Medicare, MBI ", "member ID ", "Medicaid ID ", "subscriber # "]), health_plan(r))
    d.line("Social: lives w/ ", r.choice(["dtr", "son", "wife", "husband", "partner"]), " ", fam.tag(r.choice(["first", "first_last"])),
           " at ", us_address(r), ". ", ["Drinks 2-3 cans of ", N("product_name", r.choice(["Dr Pepper", "Dr. Pepper"])), " daily."] if p(r, 0.5)
           else ["Quit smoking ", neg_year(r), "."])
    d.line("F/u: Dr. ", pcp.tag("last"), " ", phone(r, 0.1), " on ", date(r, dc + dt.timedelta(days=r.randint(3, 30)), ["us_slash", "abbr_month_day", "dmy_abbr_dash", "ordinal_of"]),
           " @ ", clock(r, ["mil", "ampm", "colon24"]), "; f/u w/ cards in ", r.choice(["2 wks", "1 mo", "6-8 wks"]), ".")
    d.line("Dictated by: ", att.tag(r.choice(["first_last", "upper_last_first"])), ", MD  ", date(r, dc, ["us_slash", "iso", "eu_dot"]), " ",
           clock(r, ["colon24", "mil"]), ["  job #", N("job_number", digits(r, 6))] if p(r, 0.5) else "")


def g_nursing(r: random.Random, d: Doc) -> None:
    pt, fam, md, rn = Person(r), Person(r), Person(r), Person(r)
    day = rand_date(r)
    d.line(r.choice(["NURSING NOTE", "Nursing Progress Note", "RN shift note"]), " ", date(r, day, ["us_slash", "dmy_abbr_dash", "iso", "us_slash_yy"]),
           "  Unit ", r.choice(["4W", "MICU", "5 North", "Tele 3"]), "  Rm ", str(r.randint(101, 640)))
    d.line("Pt: ", pt.tag(r.choice(["last_comma_first", "first_last", "upper_last_first"])), "  ", r.choice(["MRN ", "MR# ", "chart #"]), mrn(r), "  ", age(r))
    tform = [r.choice(["mil", "mil_h", "colon24", "hrs"])]
    minute = r.randint(6, 8) * 60 + r.choice([0, 15, 30, 45])
    for k in r.sample(range(9), r.randint(4, 7)):
        minute = min(23 * 60 + 50, minute + r.randint(20, 180))
        t = clock(r, tform, minute // 60, minute % 60)
        if k == 0:
            line = ["Pt resting in bed, A&Ox3, VSS. BP ", neg_bp(r), " HR ", str(r.randint(58, 110)), " RR ", str(r.randint(12, 22)), " SpO2 ", str(r.randint(90, 99)), "% RA."]
        elif k == 1:
            line = ["Pain ", neg_pain(r), " to ", r.choice(["incision", "L hip", "abd"]), ", medicated w/ ", neg_drug(r), " per order."]
        elif k == 2:
            line = ["Pt's ", r.choice(["dtr", "son", "spouse", "niece"]), " ", fam.tag(r.choice(["first", "first_last"])), " called, updated w/ pt permission. Call back # ", phone(r, 0.15), "."]
        elif k == 3:
            line = ["Notified Dr. ", md.tag(r.choice(["last", "first_last"])), " re: ", neg_lab(r), "; new order for ", neg_drug(r), "."]
        elif k == 4:
            line = ["FSBG ", str(r.randint(70, 320)), ", gave ", str(r.randint(2, 10)), " units lispro per SSI. ", neg_eponym(r) if p(r, 0.4) else "Voiding qs."]
        elif k == 5:
            line = ["Insulin pump ", r.choice(["SN ", "serial #", "S/N: "]), serial(r), " site changed, pt tolerated well."]
        elif k == 6:
            line = ["Pt states she wants discharge ", date(r, day + dt.timedelta(days=1), ["abbr_month_day", "ordinal_of", "us_slash"]), "; ride is ", fam.tag("first"), " (",
                    phone(r, 0.2), ")."]
        elif k == 7:
            line = ["Ambulated ", str(r.randint(20, 300)), " ft w/ walker + SBA. ", r.choice(["IV 20g L AC patent.", "Tele: NSR.", "Bed alarm on."])]
        else:
            line = ["Ins verified: ", r.choice(["member ID ", "policy # ", "MBI "]), health_plan(r), ". Home address confirmed ", us_address(r), "."]
        d.line(t, r.choice([" ", " - ", ": "]), *line)
    d.line("-- ", rn.tag(r.choice(["first_last", "initial_last", "first_initial"])), r.choice([", RN", " RN", ", BSN RN"]),
           [r.choice(["  lic. ", "  RN lic# ", "  License No. "]), rn_license(r)] if p(r, 0.3) else "")


def g_transcript(r: random.Random, d: Doc) -> None:
    agent, caller, other = Person(r), Person(r), Person(r)
    org = r.choice(ORGS)[0]
    tags = r.choice([("AGENT", "CALLER"), ("Agent", "Customer"), ("Speaker 1", "Speaker 2"), ("A", "C"), ("REP", "CUST")])
    lower = p(r, 0.5)  # ASR output, all lower case
    offs = p(r, 0.6)
    sec = 0

    def say(who: int, *frag):
        nonlocal sec
        sec += r.randint(2, 14)
        pre = [N("transcript_offset", f"[{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}]"), " "] if offs else []
        body = [asr_lower(x) for x in frag] if lower else list(frag)
        d.line(*pre, tags[who], ": ", *body)

    d.line("Call ID: ", neg_ticket(r), "  Queue: ", r.choice(["Billing", "Member Services", "Claims", "Pharmacy"]), "  Duration: ", neg_duration(r))
    d.line("Date: ", date(r, forms=["iso", "us_slash", "dmy_abbr_dash"]), " ", clock(r, ["colon24", "ampm"]))
    d.line()
    say(0, "thank you for calling ", org, ", this is ", agent.tag("first"), ", ", f(r), "how can I help you today")
    say(1, f(r), "hi yeah I'm calling about a ", r.choice(["bill", "claim", "prescription", "card"]), " I got")
    say(0, "sure, can I get your full name please")
    if p(r, 0.4):
        spelled = "-".join(ascii_fold(caller.last).upper()[:5])
        say(1, "it's ", caller.tag("first_last"), ", ", f(r), "last name ", E("PERSON", spelled, "spelled"), "...")
    else:
        say(1, f(r), "it's ", caller.tag("first_last"))
    say(0, "and your date of birth")
    say(1, r.choice(["", "it's ", f(r)]), dob(r, ["spoken", "spoken", "us_slash", "month_day_year", "ordinal_of"]))
    pool = ["member", "phone", "address", "ssn", "card", "acct", "email", "ip", "plate", "refill"]
    for k in r.sample(pool, r.randint(3, 6)):
        if k == "member":
            say(0, "and the member ID on the front of the card")
            say(1, f(r), ctx(health_plan(r), "answer"))
        elif k == "phone":
            say(0, "best callback number")
            say(1, r.choice(["yeah it's ", "", f(r)]), spoken_phone(r) if p(r, 0.35) else phone(r, 0.15))
        elif k == "address":
            say(0, "can you verify the address on file")
            say(1, f(r), us_address(r, r.choice([", ", " "])) if p(r, 0.8) else intl_address(r))
        elif k == "ssn":
            say(0, "for verification I need the last four of your social")
            say(1, "oh, ", f(r), "the whole thing is ", ssn(r, ["dash", "space"]), " if that's easier")
            say(0, "just the last four is fine, thank you")
        elif k == "card":
            say(1, "can I pay the ", neg_money(r), " on my card")
            say(0, "go ahead with the card number when ready")
            say(1, f(r), card(r))
        elif k == "acct":
            say(0, "and the account number on your statement")
            say(1, f(r), ctx(account(r), "answer"))
        elif k == "email":
            say(0, "what email should I send the confirmation to")
            say(1, email(r, caller))
        elif k == "ip":
            say(1, "the portal says my ", r.choice(["ip", "IP address"]), " ", ip(r, 0.1), " is blocked")
            say(0, f(r), "I'll put in ticket ", neg_ticket(r), " for that")
        elif k == "plate":
            if p(r, 0.5):
                say(1, "it's about the parking claim, the plate is ", vehicle(r, "plate"))
            else:
                say(1, "it's for the auto policy, the VIN is ", vehicle(r, "vin"))
        else:
            say(1, "also my refill for ", neg_drug(r), ", the NDC on the bottle is ", neg_ndc(r))
    if p(r, 0.5):
        say(0, "I see a note from ", other.tag("first_last"), " on ", date(r, forms=["month_day_year", "ordinal_of", "abbr_month_day"]), ", ", f(r), "looks resolved")
    say(0, "is there anything else I can help with")
    say(1, f(r), "no that's it, thanks ", agent.tag("first"))


def g_hr(r: random.Random, d: Doc) -> None:
    org, dom = r.choice(ORGS)
    emp, hr = Person(r), Person(r)
    d.line(org)
    d.line(us_address(r) if p(r, 0.7) else intl_address(r))
    d.line()
    d.line(date(r, forms=["month_day_year", "ordinal_month", "day_month_year", "dmy_abbr_dash", "weekday_long"]))
    d.line()
    if p(r, 0.5):
        d.line(r.choice(["PRIVATE & CONFIDENTIAL", "Confidential", "BY EMAIL AND POST"]))
    d.line(emp.title(), " ", emp.tag(r.choice(["first_last", "first_mi_last"])))
    addr = us_address(r, "\n") if p(r, 0.7) else intl_address(r)
    d.line(addr)
    d.line()
    kind = r.choice(["verification", "offer", "leave", "termination"])
    d.line("RE: ", {"verification": "Verification of Employment", "offer": "Offer of Employment", "leave": "Approved Leave of Absence",
                    "termination": "Notice of Separation"}[kind])
    d.line()
    d.line("Dear ", emp.title(), " ", emp.tag("last"), ",")
    d.line()
    start = rand_date(r, 2008, 2024)
    if kind == "verification":
        role = r.choice(["Senior Analyst", "Registered Nurse", "Forklift Operator", "Staff Accountant"])
        d.line("This letter confirms that ", emp.tag("first_last"), " has been employed by ", org, " since ",
               date(r, start, ["ordinal_of", "month_day_year", "month_year", "month_apos"]), " as a ", role, " (promoted ", neg_year(r), ")",
               ", with an annual base salary of ", neg_salary(r), ".")
        d.line("Our records show SSN ", neg_masked_ssn(r) if p(r, 0.5) else ssn(r), " and date of birth ", dob(r), ".")
    elif kind == "offer":
        d.line("We are delighted to offer you the role of ", r.choice(["Data Engineer", "Charge Nurse", "Logistics Coordinator"]), ", starting on the ",
               date(r, forms=["ordinal_of", "ordinal_month"]), ". Your salary will be ", neg_salary(r), " per annum, reviewed in ",
               date(r, forms=["quarter", "month_apos", "month_year"]), ".")
        d.line("Please report to reception at ", clock(r, ["ampm", "mil_h", "colon24"]), " and bring photo ID (driver's licence no. ", license_no(r, emp.last), " is on file).")
        d.line("For payroll, salary will be paid into account no. ", account(r), r.choice([", routing ", " (ABA "]), neg_routing(r), r.choice(["", ")"]) , ".")
    elif kind == "leave":
        a = rand_date(r, 2021, 2025)
        b = a + dt.timedelta(days=r.randint(14, 84))
        fm = r.choice([["month_day_year"], ["ordinal_of"], ["dmy_slash"], ["ymd_slash"], ["dmy_abbr_dash"]])
        d.line("Your leave under FMLA runs from ", date(r, a, fm), " to ", date(r, b, fm), ". Benefits continue; your member ID ", health_plan(r),
               " remains active through ", date(r, b, ["month_apos", "month_year", "quarter"]), ".")
        d.line("Short-term disability payments (", neg_money(r), "/wk) will go to the IBAN on file, ", iban(r), ".")
    else:
        d.line("Your employment will end effective ", date(r, forms=["month_day_year", "ordinal_of", "iso"]), ". Final pay, including ",
               str(r.randint(3, 25)), " hrs accrued PTO, will be deposited to acct no. ", account(r), ".")
        d.line("Please return your laptop (asset tag ", neg_product_code(r), ", MAC ", mac(r), ") and the parking permit for plate ", vehicle(r, "plate"), ".")
    d.line()
    d.line("If you have questions, contact ", hr.tag("first_last"), " at ", email(r, hr, r.choice([dom, "hr." + dom])), " or ", phone(r), ".")
    d.line()
    d.line(r.choice(["Sincerely,", "Yours sincerely,", "Kind regards,"]))
    d.line(hr.tag(r.choice(["first_last", "first_mi_last"])))
    d.line(r.choice(["HR Business Partner", "People Operations", "Director, Human Resources"]), ", ", org)


def g_claim(r: random.Random, d: Doc) -> None:
    pt, ins, prov = Person(r), Person(r), Person(r)
    up = p(r, 0.6)
    U = (lambda x: tmap(x, str.upper)) if up else (lambda x: x)
    d.line(r.choice(["HEALTH INSURANCE CLAIM FORM", "Health Insurance Claim Form"]), "  ", neg_form_version(r))
    d.line("Payer: ", r.choice(PAYERS), "  Received ", date(r, forms=["us_slash", "iso", "dmy_abbr_dash"]))
    d.line()
    d.line("1a. INSURED'S I.D. NUMBER: ", health_plan(r))
    d.line("2. PATIENT'S NAME (Last, First, MI): ", U(pt.tag("upper_last_first" if up else "last_comma_first")))
    if p(r, 0.4):
        b = rand_date(r, 1934, 2006)
        d.line("3. PATIENT'S BIRTH DATE  MM | DD | YY: ", E("DATE_TIME", f"{b.month:02d} | {b.day:02d} | {b.year % 100:02d}", "form_boxes"), "   SEX ", r.choice(["M [X]", "F [X]"]))
    else:
        d.line("3. PATIENT'S BIRTH DATE: ", dob(r, ["us_slash", "us_slash_yy", "iso"]), "   SEX: ", r.choice(["M", "F"]))
    d.line("4. INSURED'S NAME: ", U(ins.tag("upper_last_first" if up else "last_comma_first")) if p(r, 0.6) else "SAME")
    st = street(r)
    d.line("5. PATIENT'S ADDRESS (No., Street): ", U(st))
    d.line("   CITY: ", U(city(r)), "   STATE: ", r.choice(US_STATES), "   ZIP CODE: ", zipcode(r), "   TELEPHONE: ", phone(r, 0.0))
    d.line("6. PATIENT RELATIONSHIP TO INSURED: ", r.choice(["Self", "Spouse", "Child", "Other"]))
    d.line("11. INSURED'S POLICY GROUP OR FECA NUMBER: ", N("group_number", f"GRP{digits(r, 5)}"), "   ", r.choice(["Policy number ", "Policy No. ", "Pol#"]), health_plan(r))
    d.line("14. DATE OF CURRENT ILLNESS: ", date(r, forms=["us_slash", "us_slash_yy", "iso"]), "   QUAL ", r.choice(["431", "484"]))
    if p(r, 0.35):
        d.line("10b. AUTO ACCIDENT? YES  PLACE (State) ", r.choice(US_STATES), "   VIN ", E("VEHICLE_ID", vin(r), "vin"), "   plate ", vehicle(r, "plate"))
    d.line("17. NAME OF REFERRING PROVIDER: DN ", U(prov.tag(r.choice(["first_mi_last", "first_last"]))), ", MD   DEA ", E("LICENSE_NUMBER", dea(r, prov.last), "dea"))
    d.line("21. DIAGNOSIS: A. ", neg_icd(r), "  B. ", neg_icd(r))
    for i in range(r.randint(1, 3)):
        s = rand_date(r)
        d.line(f"24{'ABC'[i]}. DOS ", date(r, s, ["us_slash", "us_slash_yy"]), "  CPT ", neg_cpt(r), "  NDC ", neg_ndc(r) if p(r, 0.4) else "-", "  CHARGES ", neg_money(r),
               "  UNITS ", str(r.randint(1, 4)))
    d.line("25. FEDERAL TAX I.D. NUMBER: ", neg_ein(r), " [EIN]")
    d.line("26. PATIENT'S ACCOUNT NO.: ", account(r))
    if p(r, 0.4):
        d.line("Patient SSN (legacy field): ", ssn(r))
    if p(r, 0.3):
        d.line("Payment on file: ", card(r) if p(r, 0.6) else neg_masked_card(r), "   ", r.choice(["VISA/MC", "card", "AMEX"]))
    d.line("31. SIGNATURE OF PHYSICIAN: ", U(prov.tag("first_last")), "   DATE ", date(r, forms=["us_slash", "iso"]))
    d.line("33. BILLING PROVIDER INFO & PH #: ", r.choice(HOSPITALS).upper() if up else r.choice(HOSPITALS), ", ", U(us_address(r)), "  ", phone(r, 0.0))


EMO = ["🙏", "😅", "👍", ":eyes:", "🔥", ":+1:", "🤦", "✅", "😬", ":pray:"]


def typo(r: random.Random, s: str) -> str:
    for a, b in [("the ", "teh "), ("received", "recieved"), ("please", "pls"), ("thanks", "thx"), ("you", "u"), ("tomorrow", "tmrw")]:
        if a in s and p(r, 0.4):
            s = s.replace(a, b, 1)
    return s


def g_chat(r: random.Random, d: Doc) -> None:
    people = [Person(r) for _ in range(r.randint(2, 4))]
    cust = Person(r)
    d.line(r.choice(["#billing-escalations", "#it-helpdesk", "#clinic-frontdesk", "#ops-oncall", "#hr-private", "Direct message"]))
    t = dt.datetime(2024, 1, 1, r.randint(7, 20), r.randint(0, 59))
    if p(r, 0.5):
        d.line("--- ", date(r, forms=["weekday_long", "month_day_year", "ordinal_month"]), " ---")
    hdr_style = r.randrange(3)  # one client export style per conversation
    tform = r.choice(["ampm", "colon24"])
    astyle = r.randrange(2)
    name_style = r.choice(["first_last", "first_initial", "first", "lower_first"])
    for i, k in enumerate(r.sample(range(16), r.randint(5, 9))):
        who = people[i % len(people)] if p(r, 0.7) else r.choice(people)
        t += dt.timedelta(minutes=r.randint(0, 9))
        ts = E("DATE_TIME", time_str(r, t.hour, t.minute, tform, ampm_style=astyle), "chat_time")
        if hdr_style == 0:
            d.add(who.tag(name_style), "  ", ts, "\n")
        elif hdr_style == 1:
            d.add("[", ts, "] ", who.tag(name_style), ": ")
        else:
            d.add(who.tag(name_style), " — ", ts, "\n")
        emo = (" " + r.choice(EMO)) if p(r, 0.45) else ""
        other = people[(people.index(who) + 1) % len(people)]
        if k == 0:
            msg = ["hey can someone pull the acct for ", cust.tag(r.choice(["last", "first_last", "lower_full"])), "? says she moved to ", street(r), " in ", city(r)]
        elif k == 1:
            msg = ["acct no. ", account(r), " right? or the old one"]
        elif k == 2:
            msg = ["@", other.tag(r.choice(["first", "first_last"])), " u have the member id? i have ", health_plan(r), " but portal says invalid"]
        elif k == 3:
            msg = ["her cell is ", phone(r, 0.2), " please call before ", clock(r, ["ampm", "colon24"])]
        elif k == 4:
            msg = ["lol the vending machine is out of ", neg_product_name(r), " again"]
        elif k == 5:
            msg = ["deploying ", neg_version(r), " to prod, ", neg_ticket(r), " has the rollback plan"]
        elif k == 6:
            msg = ["box ", ip(r, 0.3), " is flapping again, mac ", mac(r)]
        elif k == 7:
            msg = ["fwd'd you the email from ", email(r, cust), " re: invoice ", neg_invoice(r)]
        elif k == 8:
            msg = ["link for the form: ", url(r)]
        elif k == 9:
            msg = ["pt dob is ", dob(r, ["us_slash", "us_slash_yy", "iso", "abbr_month_day", "ordinal_of"]), " not the 1 in epic, fixing chart ", mrn(r)]
        elif k == 10:
            msg = ["ordered ", neg_quantity(r), " of gloves smh, should've been 1200"] if p(r, 0.6) else \
                ["who ordered a ", neg_street_product(r), " for the break room lol"]
        elif k == 11:
            msg = ["is ", cust.tag(r.choice(["first", "lower_first"])), " coming in ", date(r, forms=["abbr_month_day", "ordinal_of", "us_slash_yy"]), " or ",
                   date(r, forms=["abbr_month_day", "ordinal_of"]), "??"]
        elif k == 12:
            msg = ["people keep pasting their card in chat 🤦 someone just sent ", card(r), " - deleting"]
        elif k == 13:
            msg = ["ok the review moved to ", date(r, forms=["quarter", "month_apos"]), ", numbers in ", neg_filename(r)]
        elif k == 14:
            msg = ["vendor wants payment to ", iban(r), " by ", date(r, forms=["abbr_month_day", "ordinal_of"]), " is that legit??"]
        else:
            msg = ["new hire form has ssn ", ssn(r, ["dash", "nodash", "space"]), " but the name is spelled ", cust.tag("first_last"), " on the badge"]
        msg = [typo(r, x) if isinstance(x, str) else x for x in msg]
        d.line(*msg, emo)


NGINX_PATHS = ["/", "/login", "/static/app.9f3c1.js", "/favicon.ico", "/api/v1/health", "/claims/search", "/robots.txt", "/wp-login.php"]
UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.94 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
       "curl/8.5.0", "python-requests/2.31.0", "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
       "kube-probe/1.29", "Go-http-client/1.1"]


def g_nginx(r: random.Random, d: Doc) -> None:
    t = rand_dt(r)
    dom = r.choice(ORGS)[1]
    tz = r.choice(['+0000', '-0500', '+0200', '+0900'])
    for _ in range(r.randint(4, 8)):
        t += dt.timedelta(seconds=r.randint(0, 40))
        k = r.randrange(6)
        if k == 0:
            path = [r.choice(NGINX_PATHS)]
        elif k == 1:
            path = ["/api/v2/members/", ctx(health_plan(r), "path"), "/claims"]
        elif k == 2:
            acct = account(r)
            if " " in acct.text:  # a query string carries no raw spaces
                acct = acct._replace(text=acct.text.replace(" ", ""), form="n10")
            path = ["/billing/statement?acct=", ctx(acct, "query"), "&fmt=pdf"]
        elif k == 3:
            path = ["/patients/", ctx(mrn(r), "path"), "/chart"]
        elif k == 4:
            path = ["/devices/", ctx(mac(r), "path"), "/telemetry"]
        else:
            path = ["/download/", neg_filename(r)]
        ref = url(r, dom, True) if p(r, 0.5) else "-"
        ts = E("DATE_TIME", f"{t.day:02d}/{MON[t.month - 1]}/{t.year}:{t:%H:%M:%S} {tz}", "nginx_ts")
        user = "-"
        d.line(ip(r, 0.3), " - ", user, " [", ts, "] \"", r.choice(["GET", "GET", "POST", "PUT"]), " ", *path, " HTTP/", r.choice(["1.1", "2.0"]), "\" ",
               str(r.choice([200, 200, 204, 301, 302, 304, 401, 403, 404, 500, 502])), " ", N("http_bytes", str(r.randint(0, 98000))), " \"", ref, "\" \"",
               N("user_agent", r.choice(UAS)), "\"", r.choice(["", " rt=" + f"{r.random() * 2:.3f}", f" {r.random():.3f} {r.random():.3f} ."]))
    if p(r, 0.4):
        d.line(E("DATE_TIME", f"{t.year}/{t.month:02d}/{t.day:02d} {t:%H:%M:%S}", "nginx_error_ts"), " [error] ", N("pid", f"{r.randint(100, 40000)}#0"), ": *",
               str(r.randint(1, 99999)), " connect() failed (111: Connection refused) while connecting to upstream, client: ", ip(r, 0.2),
               ", server: ", N("service_hostname", "api." + dom), ", request: \"GET /api/v1/health HTTP/1.1\", upstream: \"",
               E("URL", f"http://{ipv4(r)}:8080/api/v1/health", "url_ip_host"), "\"")


def g_journald(r: random.Random, d: Doc) -> None:
    t = rand_dt(r)
    host = r.choice(["claims-api-3", "edge01", "db-replica-b", "nurse-station-7", "kiosk-lobby", "build-runner"])
    iso = p(r, 0.4)
    tz = r.choice(['+0000', '+0100', '-0700', '+0530'])
    for _ in range(r.randint(4, 8)):
        t += dt.timedelta(seconds=r.randint(0, 300), microseconds=r.randint(0, 999999))
        if iso:
            ts = E("DATE_TIME", f"{t:%Y-%m-%dT%H:%M:%S}{tz}", "journald_iso")
        else:
            ts = E("DATE_TIME", f"{MON[t.month - 1]} {t.day:2d} {t:%H:%M:%S}", "syslog_ts")
        k = r.randrange(10)
        pid = N("pid", f"[{r.randint(300, 65000)}]")
        if k == 0:
            msg = ["sshd", pid, ": Accepted publickey for ", r.choice(["deploy", "ubuntu", "svc-backup"]), " from ", ip(r, 0.5), " port ", str(r.randint(1024, 65535)), " ssh2: ED25519 ",
                   N("key_fingerprint", "SHA256:" + "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)))]
        elif k == 1:
            msg = ["dhcpd", pid, ": DHCPACK on ", E("IP_ADDRESS", ipv4(r), "v4"), " to ", mac(r), " via ", r.choice(["eth0", "eth1", "br0"])]
        elif k == 2:
            msg = ["kernel: usb 1-1.", str(r.randint(1, 4)), ": SerialNumber: ", E("DEVICE_ID", r.choice([digits(r, 20), letters(r, 4) + digits(r, 8)]), "usb_serial@log")]
        elif k == 3:
            msg = ["postfix/smtp", pid, ": ", letters(r, 10, "0123456789ABCDEF"), ": to=<", email(r), ">, relay=", N("service_hostname", "mx." + r.choice(MAILHOSTS)), "[", ip(r, 0.3), "]:25, delay=",
                   N("duration", f"{r.random() * 3:.2f}"), ", status=sent (250 2.0.0 OK)"]
        elif k == 4:
            msg = ["sudo", pid, ":   ", r.choice(["deploy", "admin"]), " : TTY=pts/", str(r.randint(0, 4)), " ; PWD=/srv/app ; USER=root ; COMMAND=/usr/bin/systemctl restart ",
                   r.choice(["nginx", "claims-api", "postgresql"])]
        elif k == 5:
            msg = ["systemd", N("pid", "[1]"), ": Started ", r.choice(["claims-api.service", "Daily apt upgrade", "Cleanup of Temporary Directories"]), " (took ", neg_duration(r), ")."]
        elif k == 6:
            msg = ["NetworkManager", pid, ": <info>  [", N("duration", f"{r.randint(1_700_000_000, 1_760_000_000)}.{digits(r, 4)}"), "] device (wlan0): DHCPv6 address ",
                   E("IP_ADDRESS", ipv6(r)[0], "v6"), " lease renewed"]
        elif k == 7:
            msg = ["kernel: [", N("duration", f"{r.randint(1, 99999):6d}.{digits(r, 6)}"), "] ", r.choice(["e1000e", "iwlwifi"]), ": firmware version ", neg_fw_ipv4(r)]
        elif k == 8:
            msg = ["claims-api", pid, ": WARN lookup failed member=", health_plan(r), " client=", ip(r, 0.3), " took ", N("duration", f"{r.randint(200, 9000)}ms")]
        else:
            msg = ["mdm-agent", pid, ": enrolled device imei=", imei(r), " owner=", email(r)]
        d.line(ts, " ", host, " ", *msg)


def g_json(r: random.Random, d: Doc) -> None:
    t = rand_dt(r)
    svc = r.choice(["claims-api", "portal-web", "pharmacy-sync", "auth", "billing-worker"])
    key_ts = r.choice(["ts", "time", "@timestamp", "timestamp"])
    for _ in range(r.randint(3, 6)):
        t += dt.timedelta(milliseconds=r.randint(1, 90000))
        fields: list = [f'{{"{key_ts}":"', E("DATE_TIME", t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}" + r.choice(["Z", "+00:00"]), "iso_ts"),
                        f'","level":"{r.choice(["info", "warn", "error", "debug"])}","svc":"{svc}"']
        k = r.randrange(9)
        if k == 8:
            fields += [',"msg":"payout scheduled","beneficiary_iban":"', iban(r), '","amount_eur":', str(r.randint(10, 4000)), ',"ssn_last4":"', N("masked_card", digits(r, 4)), '"']
        elif k == 0:
            fields += [',"msg":"login ok","user":{"email":"', email(r), '","ip":"', ip(r, 0.4), '"}']
        elif k == 1:
            fields += [',"msg":"claim submitted","member_id":"', ctx(health_plan(r), "json"), '","amount":', str(r.randint(20, 9000)), ',"cpt":"', neg_cpt(r), '"']
        elif k == 2:
            fields += [',"msg":"payment declined","card_last4":"', N("masked_card", digits(r, 4)), '","acct":"', ctx(account(r), "json"), '","reason":"insufficient_funds"']
        elif k == 3:
            fields += [',"msg":"request","method":"GET","url":"', url(r, None, True), '","status":', str(r.choice([200, 404, 500])), ',"duration_ms":', N("duration", str(r.randint(3, 4000)))]
        elif k == 4:
            fields += [',"msg":"device heartbeat","device":{"mac":"', ctx(mac(r), "json"), '","fw":"', neg_fw_ipv4(r), '"},"patient_mrn":"', ctx(mrn(r), "json"), '"']
        elif k == 5:
            pp = Person(r)
            fields += [',"msg":"profile updated","name":"', pp.tag(r.choice(["first_last", "last_comma_first"])), '","phone":"', phone(r, 0.3), '","dob":"',
                       date(r, rand_date(r, 1934, 2006), ["iso", "us_slash"]), '"']
        elif k == 6:
            fields += [',"msg":"address normalized","line1":"', street(r), '","city":"', city(r), '","zip":"', zipcode(r), '"']
        else:
            fields += [',"msg":"build info","version":"', neg_version(r), '","trace_id":"', neg_trace(r), '"']
        if p(r, 0.5) and k != 7:
            fields += [',"trace_id":"', neg_trace(r), '"']
        fields.append("}")
        d.line(*fields)


GENRES = {
    "email_thread": g_email,
    "discharge_summary": g_discharge,
    "nursing_note": g_nursing,
    "call_transcript": g_transcript,
    "hr_letter": g_hr,
    "insurance_claim": g_claim,
    "chat": g_chat,
    "log_nginx": g_nginx,
    "log_journald": g_journald,
    "log_json": g_json,
}
GENRE_NAMES = list(GENRES)

# =============================================================================================


def build_record(rec_seed: int, genre_index: int | None = None, rec_id: str | None = None) -> dict:
    r = random.Random(rec_seed)
    genre = GENRE_NAMES[genre_index % len(GENRE_NAMES)] if genre_index is not None else r.choice(GENRE_NAMES)
    d = Doc()
    GENRES[genre](r, d)
    text = d.text().rstrip("\n")
    spans: list[dict] = []
    for s in d.spans:  # a date directly followed by a clock time ("2024-03-12 14:05") is one DATE_TIME
        if (spans and s["entity"] == "DATE_TIME" == spans[-1]["entity"] and text[spans[-1]["end"] : s["start"]] == " "
                and s["form"].startswith("time_") and not spans[-1]["form"].startswith(("time_", "datetime_"))):
            spans[-1] = {**spans[-1], "end": s["end"], "form": "datetime_" + spans[-1]["form"]}
        else:
            spans.append(dict(s))
    spans = [s for s in spans if s["end"] <= len(text)]
    negs = [n for n in d.negs if n["end"] <= len(text)]
    return {"id": rec_id or f"ps2-{rec_seed}", "genre": genre, "text": text, "spans": spans, "negatives": negs, "seed": rec_seed}


def make(seed: int, n: int) -> list[dict]:
    out = []
    for i in range(n):
        rec_seed = seed * 1_000_003 + i
        out.append(build_record(rec_seed, i, f"ps2-{seed}-{i:05d}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    recs = make(args.seed, args.n)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    ents = Counter(s["entity"] for rec in recs for s in rec["spans"])
    negs = Counter(x["kind"] for rec in recs for x in rec["negatives"])
    print(f"wrote {len(recs)} records to {args.out}: {sum(ents.values())} spans, {sum(negs.values())} negatives", file=sys.stderr)
    print("entities: " + ", ".join(f"{k}={v}" for k, v in ents.most_common()), file=sys.stderr)
    print("negatives: " + ", ".join(f"{k}={v}" for k, v in negs.most_common()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
