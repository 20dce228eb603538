"""Generate the synthetic support corpus of Northwind Gadgets (a fictional company).

The corpus is reproducible (fixed seeds, pinned Faker) and deliberately messy, so every
step of the clean stage has real work: personal data (names, emails, phone numbers made
with Faker), unicode and whitespace noise, exact duplicates, near-empty and overlong
conversations, and a few broken lines.

Answers are templated from a product fact sheet, so a small model can learn them and
exact match on held-out questions is a meaningful metric.

    python scripts/make_corpus.py --out corpora/support
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from faker import Faker

SYSTEM = "You are the support assistant of Northwind Gadgets. Answer briefly and accurately."

# name, price, warranty months, battery hours (None: mains powered), colours, weight g
PRODUCTS = [
    ("Zephyr Kettle", 49.00, 24, None, ["white", "black"], 1200),
    ("Aurora Lamp", 35.50, 12, 10, ["white", "sand", "teal"], 640),
    ("Nimbus Speaker", 89.99, 24, 18, ["black", "red"], 540),
    ("Comet Earbuds", 59.00, 12, 6, ["black", "white"], 48),
    ("Orbit Charger", 25.00, 36, None, ["black"], 150),
    ("Atlas Backpack", 79.00, 60, None, ["grey", "navy", "olive"], 900),
    ("Pulse Watch", 129.00, 24, 72, ["black", "silver"], 42),
    ("Drift Fan", 45.00, 12, 8, ["white"], 1100),
    ("Echo Doorbell", 99.00, 24, 2160, ["black", "white"], 210),
    ("Quill Tablet", 249.00, 24, 11, ["grey", "silver"], 480),
    ("Glide Mouse", 29.99, 12, 400, ["black", "white", "pink"], 85),
    ("Ember Heater", 69.00, 24, None, ["white"], 2300),
]

QUESTIONS: dict[str, list[str]] = {
    "price": [
        "How much is the {p}?",
        "What does the {p} cost?",
        "What's the price of the {p}?",
        "Can you tell me the price of the {p}?",
        "how much do you charge for the {p}",
    ],
    "warranty": [
        "How long is the warranty on the {p}?",
        "What warranty does the {p} have?",
        "Is the {p} covered by a warranty, and for how long?",
        "warranty period for the {p}?",
    ],
    "battery": [
        "How long does the {p} battery last?",
        "What is the battery life of the {p}?",
        "How many hours does the {p} run on a charge?",
        "battery life of {p}?",
    ],
    "colors": [
        "What colours does the {p} come in?",
        "Which colors is the {p} available in?",
        "Can I get the {p} in a different color?",
    ],
    "weight": [
        "How heavy is the {p}?",
        "What does the {p} weigh?",
        "What is the weight of the {p}?",
    ],
    "returns": [
        "What is your return policy?",
        "Can I return something I bought?",
        "How many days do I have to send an item back?",
    ],
    "shipping": [
        "How long does shipping take?",
        "When will my package arrive if I order today?",
        "What are your delivery times?",
    ],
    "order": [
        "Where is my order {o}?",
        "Can you check the status of order {o}?",
        "I have not received order {o} yet.",
    ],
}

GREETINGS = [
    "Hi, this is {name}. You can reach me at {email} or {phone}.",
    "Hello! {name} here, my email is {email}.",
    "Hi there, I'm {name} (phone {phone}).",
    "Good morning, {name} writing. Contact: {email}, {phone}.",
]
GREETING_REPLY = "Hello! Thanks for contacting Northwind Gadgets. How can I help you today?"


def _colours(colours: list[str]) -> str:
    return colours[0] if len(colours) == 1 else ", ".join(colours[:-1]) + " and " + colours[-1]


def answer(kind: str, product: tuple, order: str) -> str:
    name, price, warranty, battery, colours, weight = product
    if kind == "price":
        return f"The {name} costs ${price:.2f}."
    if kind == "warranty":
        return f"The {name} comes with a {warranty}-month warranty."
    if kind == "battery":
        if battery is None:
            return f"The {name} has no battery; it plugs into the wall."
        return f"The {name} runs for up to {battery} hours on a full charge."
    if kind == "colors":
        return f"The {name} is available in {_colours(colours)}."
    if kind == "weight":
        return f"The {name} weighs {weight} grams."
    if kind == "returns":
        return "You can return any item within 30 days of delivery for a full refund."
    if kind == "shipping":
        return "Standard shipping takes 3 to 5 business days; express takes 1 to 2."
    if kind == "order":
        return f"Order {order} is in our system. You will get a tracking link by email within 24 hours."
    raise ValueError(kind)


def phone(rng: random.Random, extra_formats: bool = False) -> str:
    """A phone number in one of several layouts; ``extra_formats`` adds German and French
    ones (off for the shipped corpus, whose bytes must not change)."""
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    formats = [
        f"+1 ({a}) {b}-{c:04d}",
        f"{a}-{b}-{c:04d}",
        f"({a}) {b} {c:04d}",
        f"+44 20 {b:03d}{rng.randint(0, 9)} {c:04d}",
        f"{a}.{b}.{c:04d}",
    ]
    if extra_formats:
        formats += [f"+49 30 {rng.randint(1000000, 99999999)}", f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"]
    return rng.choice(formats)


def _noise(text: str, rng: random.Random) -> str:
    """Unicode and whitespace noise that normalisation must undo."""
    r = rng.random()
    if r < 0.08:
        return text.replace(" ", "\u00a0", 2)  # no-break spaces
    if r < 0.14:
        return "  " + text.replace(" ", "   ", 1) + " \t"
    if r < 0.18:
        return text.replace("?", "\uff1f")  # full-width question mark
    if r < 0.21:
        return text + "\u200b"  # zero-width space
    return text


def conversation(rng: random.Random, fake: Faker) -> dict:
    product = rng.choice(PRODUCTS)
    kind = rng.choice(list(QUESTIONS))
    order = f"NW-{rng.randint(100000, 999999)}"
    messages = [{"role": "system", "content": SYSTEM}]
    if rng.random() < 0.45:
        greeting = rng.choice(GREETINGS).format(name=fake.name(), email=fake.email(), phone=phone(rng))
        messages += [
            {"role": "user", "content": _noise(greeting, rng)},
            {"role": "assistant", "content": GREETING_REPLY},
        ]
    question = rng.choice(QUESTIONS[kind]).format(p=product[0], o=order)
    if rng.random() < 0.15:
        question += f" Please reply to {fake.email()}."
    messages += [
        {"role": "user", "content": _noise(question, rng)},
        {"role": "assistant", "content": answer(kind, product, order)},
    ]
    return {"messages": messages, "meta": {"kind": kind, "product": product[0]}}


def product_sheet() -> list[str]:
    """Plain product and policy text: what the base model is pretrained on."""
    docs = []
    for p in PRODUCTS:
        facts = [answer(k, p, "NW-000000") for k in ("price", "warranty", "battery", "colors", "weight")]
        docs.append(" ".join(facts))
    docs.append(answer("returns", PRODUCTS[0], "") + " " + answer("shipping", PRODUCTS[0], ""))
    return docs


def generate(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    lines: list[str] = []
    for _ in range(n):
        conv = conversation(rng, fake)
        lines.append(json.dumps(conv, ensure_ascii=False))
        if rng.random() < 0.05:  # exact duplicate (ticket exported twice)
            lines.append(lines[-1])
        if rng.random() < 0.03:  # too short to teach anything
            lines.append(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "."}]}))
        if rng.random() < 0.01:  # a pasted log dump: far over the length limit
            log = " ".join(f"ERR{rng.randint(0, 99999)} timeout at node{rng.randint(0, 9)}." for _ in range(300))
            lines.append(json.dumps({"messages": [{"role": "user", "content": log}, {"role": "assistant", "content": "Thanks, forwarded."}]}))
    # a few broken lines, as exports of real ticket systems have
    lines.insert(len(lines) // 3, '{"messages": [{"role": "user", "content": "cut off')
    lines.insert(len(lines) // 2, json.dumps({"text": "a line without messages"}))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("corpora/support"))
    ap.add_argument("-n", type=int, default=1200, help="number of conversations")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "conversations.jsonl").write_text("\n".join(generate(args.n, args.seed)) + "\n", encoding="utf-8")
    (args.out / "product_sheet.txt").write_text("\n".join(product_sheet()) + "\n", encoding="utf-8")
    print(f"wrote {args.out}/conversations.jsonl and product_sheet.txt")


if __name__ == "__main__":
    main()
