"""Build a labelled PII set with exact character spans, for precision/recall per entity.

Sentences from support-ticket templates are filled with values in varied formats (Faker
for the values, our own layouts for variety) and with hard negatives that look like PII
but are not: order numbers, SKUs, versions, prices, times, Luhn-failing card-like digit
runs, IBANs with a wrong checksum, impossible SSNs and IPs.

    python scripts/make_pii_set.py --out /tmp/pii.jsonl -n 2000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

from faker import Faker

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus  # noqa: E402


def _luhn_fail(rng: random.Random) -> str:
    from nlpforge.corpus.pii import luhn_ok

    while True:
        digits = "4" + "".join(str(rng.randint(0, 9)) for _ in range(15))
        if not luhn_ok(digits):
            return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random, valid: bool) -> str:
    country, bban = rng.choice([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14)])
    if country == "GB":
        body = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + "".join(str(rng.randint(0, 9)) for _ in range(14))
    elif country == "NL":
        body = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
    else:
        body = "".join(str(rng.randint(0, 9)) for _ in range(bban))
    check = 98 - int("".join(str(int(c, 36)) for c in body + country + "00")) % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 or 1
    iban = f"{country}{check:02d}{body}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban


def _card(rng: random.Random, fake: Faker) -> str:
    number = fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex", "discover"]))
    style = rng.random()
    if style < 0.4 and len(number) == 16:
        return " ".join(number[i : i + 4] for i in range(0, 16, 4))
    if style < 0.6 and len(number) == 16:
        return "-".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def _date(rng: random.Random, fake: Faker) -> str:
    d = fake.date_between("-5y", "+1y")
    return rng.choice([d.isoformat(), d.strftime("%m/%d/%Y"), d.strftime("%B %-d, %Y"), d.strftime("%-d %b %Y")])


def _ssn(rng: random.Random, fake: Faker) -> str:
    return fake.ssn() if rng.random() < 0.7 else fake.ssn().replace("-", " ")


VALUES: dict[str, Callable[[random.Random, Faker], str]] = {
    "EMAIL_ADDRESS": lambda rng, fake: fake.email() if rng.random() < 0.7 else fake.free_email(),
    "PHONE_NUMBER": lambda rng, fake: make_corpus.phone(rng, extra_formats=True),
    "CREDIT_CARD": _card,
    "IBAN_CODE": lambda rng, fake: _iban(rng, True),
    "IP_ADDRESS": lambda rng, fake: fake.ipv4() if rng.random() < 0.7 else fake.ipv6(),
    "URL": lambda rng, fake: rng.choice([fake.url(), fake.uri(), f"www.{fake.domain_name()}/help"]),
    "US_SSN": _ssn,
    "DATE_TIME": _date,
}

NEGATIVES: list[Callable[[random.Random], str]] = [
    lambda rng: f"NW-{rng.randint(100000, 999999)}",  # order number
    lambda rng: f"SKU {rng.choice('ABCDEFGH')}{rng.choice('XYZ')}-{rng.randint(1000, 9999)}-{rng.randint(10, 99)}",
    lambda rng: f"v{rng.randint(1, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",  # version
    lambda rng: f"${rng.randint(5, 2000)}.{rng.randint(0, 99):02d}",  # price
    lambda rng: f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm",  # time of day
    _luhn_fail,  # card-like digits that fail Luhn
    lambda rng: _iban(rng, False),  # IBAN with a wrong checksum
    lambda rng: f"{rng.choice(['000', '666', '912'])}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",  # impossible SSN
    lambda rng: f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",  # impossible IPv4
    lambda rng: f"ticket #{rng.randint(10000, 99999)}",
]

TEMPLATES = [
    "Hi, please send the invoice to {EMAIL_ADDRESS} or call me on {PHONE_NUMBER} about order {NEG}.",
    "Charge card {CREDIT_CARD} for {NEG}; my old card {NEG} was declined.",
    "Refund to IBAN {IBAN_CODE} please, not {NEG}, by {DATE_TIME}.",
    "Login failed from {IP_ADDRESS} at {NEG}; the app is {NEG}.",
    "My SSN is {US_SSN} and my date of birth is {DATE_TIME}.",
    "See {URL} for the manual of {NEG}, or write to {EMAIL_ADDRESS}.",
    "Customer called from {PHONE_NUMBER} on {DATE_TIME} about {NEG}.",
    "Device {NEG} reported {IP_ADDRESS}; firmware {NEG} installed.",
    "The order {NEG} costs {NEG} and ships on {DATE_TIME}.",
    "Wire it to {IBAN_CODE}; questions to {PHONE_NUMBER}.",
    "Card ending {NEG} was replaced by {CREDIT_CARD}.",
    "Nothing personal here: {NEG}, {NEG} and {NEG}.",
]
SLOT = re.compile(r"\{([A-Z_]+)\}")


def generate(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rows = []
    for i in range(n):
        template = TEMPLATES[i % len(TEMPLATES)]
        text, spans, pos = "", [], 0
        for m in SLOT.finditer(template):
            text += template[pos : m.start()]
            slot = m.group(1)
            value = rng.choice(NEGATIVES)(rng) if slot == "NEG" else VALUES[slot](rng, fake)
            if slot != "NEG":
                spans.append({"start": len(text), "end": len(text) + len(value), "entity": slot})
            text += value
            pos = m.end()
        text += template[pos:]
        rows.append({"text": text, "spans": spans})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = generate(args.n, args.seed)
    args.out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    print(f"wrote {len(rows)} labelled texts to {args.out}")


if __name__ == "__main__":
    main()
