"""Generate the support-ticket intent corpus of the classification quickstart.

Realistic (synthetic, no real personal data) customer-support tickets of Northwind Gadgets,
labelled with one of six intents (with the label noise of a real ticket log: mixed-topic tickets
routed either way, a few plain routing mistakes), with an imbalanced class mix (the majority class is about
a third) and a ``channel`` column (email, chat, phone transcript, web form) whose writing
style differs: a group column for fairness reports. Intents share vocabulary (orders,
payments, the app) so a bag of keywords is not enough; a small share of tickets mixes two
topics. Deterministic for a seed:

    python scripts/make_tickets.py --out corpora/tickets/tickets.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import make_corpus

PRODUCTS = [p[0] for p in make_corpus.PRODUCTS]
INTENTS = {
    "shipping": 0.30,
    "billing": 0.20,
    "technical": 0.18,
    "returns": 0.14,
    "account": 0.12,
    "product_question": 0.06,
}

TEMPLATES: dict[str, list[str]] = {
    "shipping": [
        "My order {order} was supposed to arrive on {day} but the tracking hasn't moved in {n} days.",
        "Where is my {product}? I ordered it {n} days ago and it still says 'label created'.",
        "The courier marked order {order} as delivered but there is nothing at my door.",
        "Can I change the delivery address for order {order}? I'm moving this week.",
        "Do you ship the {product} to Canada, and how long does it usually take?",
        "The box for my {product} arrived but the tracking number {order} shows a different city.",
        "I paid for express delivery and the {product} is still not here after {n} days.",
        "Is it possible to pick up order {order} from a depot instead of home delivery?",
        "My parcel has been stuck in customs for {n} days, what should I do?",
        "Only half of order {order} arrived, the {product} is missing from the package.",
    ],
    "billing": [
        "I was charged twice for order {order}, ${amount} each time.",
        "Why does my card statement show ${amount} from Northwind when I cancelled?",
        "Please send me a VAT invoice for order {order}, I need it for my company.",
        "The discount code wasn't applied and I paid ${amount} for the {product} instead of the sale price.",
        "My payment keeps getting declined at checkout even though the card works elsewhere.",
        "Can I split the payment for the {product} into instalments?",
        "I got a refund notification but the ${amount} never reached my bank account.",
        "You charged me ${amount} in shipping fees, but the site said free shipping over $50.",
        "How do I update the credit card on file for my subscription?",
        "There's a pending charge of ${amount} on my account that I don't recognise.",
    ],
    "technical": [
        "My {product} won't turn on after the latest firmware update.",
        "The {product} keeps disconnecting from the app every few minutes.",
        "The battery of my {product} drains in about {n} hours, much less than advertised.",
        "The app crashes whenever I try to pair the {product} over Bluetooth.",
        "My {product} shows error code E{n} and then shuts down.",
        "After resetting the {product} it no longer connects to my Wi-Fi network.",
        "The display on the {product} flickers when it is charging.",
        "The {product} makes a clicking noise and gets very hot after {n} minutes.",
        "Sync between the {product} and my phone stopped working yesterday.",
        "The firmware update fails at {n}% on my {product} every time.",
    ],
    "returns": [
        "I'd like to return the {product}, it doesn't fit my needs. How do I get a label?",
        "The {product} arrived damaged, I want to send it back for a replacement.",
        "Is the {product} still within the return window? I bought it {n} days ago.",
        "I sent back order {order} two weeks ago, when will the return be processed?",
        "Can I exchange the {product} for a different colour instead of returning it?",
        "The return label you emailed for order {order} doesn't work at the post office.",
        "I received the wrong item in order {order} and need to return it.",
        "Do I have to pay for return shipping on the {product}?",
        "I want to send the {product} back under warranty, it stopped working after {n} months.",
        "My return for order {order} was rejected, can you explain why?",
    ],
    "account": [
        "I can't log in to my account, the password reset email never arrives.",
        "Please delete my account and all the data you hold about me.",
        "How do I change the email address on my Northwind account?",
        "My account got locked after {n} failed login attempts.",
        "I want to unsubscribe from the marketing emails but keep my account.",
        "Someone else seems to have logged into my account, I see orders I didn't place.",
        "Can I merge my two accounts? One has my order history for the {product}.",
        "Two-factor authentication codes are not reaching my phone.",
        "How do I download a copy of my personal data?",
        "The app logs me out every time I close it.",
    ],
    "product_question": [
        "Does the {product} work with a 220 V outlet?",
        "What colours does the {product} come in?",
        "Is the {product} dishwasher safe?",
        "How much does the {product} weigh? I want to take it travelling.",
        "Will there be a newer model of the {product} this year?",
        "Is the {product} compatible with Alexa or Google Home?",
        "What is the difference between the {product} and the {product2}?",
        "Does the {product} come with a charger in the box?",
    ],
}

# channel -> (share, wrapper): the same request reads differently by channel
CHANNELS = {
    "email": (0.35, ["Hello,\n\n{body}\n\nThanks,\n{first}", "Hi team,\n{body}\nRegards, {first}", "Dear Northwind support,\n\n{body}\n\nKind regards"]),
    "chat": (0.30, ["{lower}", "hi {lower}", "{body} pls help", "hey, {lower} thx"]),
    "phone": (0.15, ["Caller says: {body}", "Customer called. {body} Asked for a callback.", "Phone transcript: uh, {lower}"]),
    "web_form": (0.20, ["Subject: {subject}\nMessage: {body}", "[{subject}] {body}"]),
}
SUBJECTS = {
    "shipping": ["Delivery", "Where is my order", "Tracking"],
    "billing": ["Payment issue", "Invoice", "Charge"],
    "technical": ["Device problem", "App issue", "Help"],
    "returns": ["Return", "Refund request", "Exchange"],
    "account": ["Account", "Login", "Privacy"],
    "product_question": ["Question", "Pre-sales", "Product info"],
}
FIRST = ["Sam", "Priya", "Jonas", "Maria", "Wei", "Amara", "Lucas", "Fatima", "Tom", "Keiko"]
EXTRA = [
    "I've been a customer for years.",
    "This is the second time I'm writing.",
    "Please get back to me soon.",
    "I bought it as a gift.",
    "",
    "",
    "",
]


def _fill(template: str, rng: random.Random) -> str:
    p1, p2 = rng.sample(PRODUCTS, 2)
    return template.format(
        product=p1, product2=p2, order=f"NW-{rng.randint(100000, 999999)}", n=rng.randint(2, 21), amount=f"{rng.uniform(9, 400):.2f}",
        day=rng.choice(["Monday", "Tuesday", "Friday", "the 12th", "last week"]),
    )


def ticket(intent: str, rng: random.Random) -> dict:
    body = _fill(rng.choice(TEMPLATES[intent]), rng)
    label = intent
    if rng.random() < 0.15:  # a second topic in the same ticket: the first one is the intent
        other = rng.choice([i for i in TEMPLATES if i != intent])
        second = _fill(rng.choice(TEMPLATES[other]), rng)
        body += " " + rng.choice(["Also, ", "And ", "On top of that, ", "Separately, "]) + second[0].lower() + second[1:]
        if rng.random() < 0.25:
            label = other  # agents disagree on mixed tickets: some get routed by the second topic
    if rng.random() < 0.03:
        label = rng.choice(list(TEMPLATES))  # plain routing mistakes, as in any real ticket log
    extra = rng.choice(EXTRA)
    body = f"{body} {extra}".strip()
    channel = rng.choices(list(CHANNELS), weights=[c[0] for c in CHANNELS.values()])[0]
    text = rng.choice(CHANNELS[channel][1]).format(body=body, lower=body[0].lower() + body[1:], first=rng.choice(FIRST), subject=rng.choice(SUBJECTS[intent]))
    return {"text": text, "label": label, "channel": channel}


def make(n: int = 1200, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    intents = rng.choices(list(INTENTS), weights=list(INTENTS.values()), k=n)
    return [{"id": f"T{i:05d}", **ticket(intent, rng)} for i, intent in enumerate(intents)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("corpora/tickets/tickets.jsonl"))
    ap.add_argument("-n", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rows = make(a.n, a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} tickets to {a.out}")
