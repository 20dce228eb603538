"""Build a labelled hallucination set and measure the AUROC of ``hallucination_score`` on it.

Each record holds a realistic source passage (company news, product sheets, release notes,
biographies, civic projects, quarterly results) and an output summarising two of its facts,
either faithfully (copied or paraphrased) or with exactly one controlled error:

- ``entity_swap``: a named entity replaced by another of the same type that the source lacks;
- ``entity_swap_intrinsic``: replaced by another entity of the same type from the same source
  (reported separately: entity precision cannot see it; only the co-occurrence check can);
- ``number_change``: a number changed to a value the source lacks;
- ``negation``: the claim negated (or a negation removed);
- ``unsupported_addition``: a plausible sentence the source does not support appended.

    python scripts/make_hallucination_set.py --seed 7 --n 120 --out halluc.jsonl --measure

prints the AUROC per error kind (positives: that kind; negatives: the faithful outputs) and
overall. Weights were chosen on seed 1; report on another seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

FIRST = ["Maria", "James", "Aisha", "Kenji", "Elena", "David", "Priya", "Lucas", "Sofia", "Omar", "Hannah", "Mateo", "Ingrid", "Samuel", "Chloe", "Viktor"]
LAST = ["Lopez", "Carter", "Okafor", "Tanaka", "Novak", "Schmidt", "Reddy", "Moreau", "Rossi", "Haddad", "Becker", "Silva", "Larsen", "Adeyemi", "Dubois", "Petrov"]
COMPANIES = ["Helix Labs", "Northwind Systems", "Orbital Foods", "Crestline Energy", "Veridian Bank", "Quantix Software", "Bluewater Logistics", "Summit Pharma",
             "Ironbridge Capital", "Lumen Robotics", "Harbor Insurance", "Redwood Analytics", "Polaris Telecom", "Granite Health", "Silverline Motors", "Atlas Mining"]
CITIES = ["Lyon", "Boston", "Toronto", "Munich", "Osaka", "Madrid", "Denver", "Rotterdam", "Seattle", "Milan", "Dublin", "Austin", "Warsaw", "Melbourne", "Oslo", "Chicago"]
COUNTRIES = ["France", "Canada", "Germany", "Japan", "Spain", "Norway", "Ireland", "Poland", "Italy", "Australia", "Brazil", "Kenya"]
UNIVERSITIES = ["Stanford University", "the University of Toronto", "Imperial College London", "the University of Tokyo", "ETH Zurich", "McGill University"]
PROJECTS = ["Pandora", "Kestrel", "Nimbus", "Orchid", "Tessera", "Vortex", "Marlin", "Quill"]
PRODUCTS = ["Zephyr Kettle", "Aurora Lamp", "Nimbus Speaker", "Comet Earbuds", "Atlas Backpack", "Orion Blender", "Vega Heater", "Lyra Fan"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
COLORS = ["white", "black", "red", "teal", "sand", "grey", "navy"]
SECTORS = ["drones", "payment terminals", "medical sensors", "solar inverters", "warehouse robots", "smart meters"]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(2, 28)}, {rng.randint(2015, 2024)}"


class Passage:
    """Source sentences plus claim sentences about them; slots say which words are facts."""

    def __init__(self) -> None:
        self.source: list[str] = []
        self.claims: list[dict] = []
        self.entities: dict[str, list[str]] = {}  # type -> surfaces in the source
        self.additions: list[str] = []

    def fact(self, source: str, claims: list[str], negated: str, ents: dict[str, str] | None = None, nums: list[str] | None = None) -> None:
        self.source.append(source)
        self.claims.append({"variants": claims, "negated": negated, "ents": ents or {}, "nums": nums or []})
        for typ, surface in (ents or {}).items():
            self.entities.setdefault(typ.rstrip("0123456789"), []).append(surface)


def company_news(rng: random.Random) -> Passage:
    p = Passage()
    buyer, target = rng.sample(COMPANIES, 2)
    city, city2 = rng.sample(CITIES, 2)
    ceo = person(rng)
    price, staff, pct = rng.randint(120, 950), rng.randint(150, 2400), rng.choice(["3.2", "4.5", "6.1", "2.8", "7.4"])
    when, sector, month = date(rng), rng.choice(SECTORS), rng.choice(MONTHS)
    p.fact(f"{buyer} announced on {when} that it will acquire {target}, a {city}-based maker of {sector}, for ${price} million.",
           [f"{buyer} will buy {target} for ${price} million.", f"{buyer} agreed to acquire {target}, which makes {sector}, for ${price} million."],
           f"{buyer} will not buy {target} for ${price} million.", {"ORG": buyer, "ORG2": target}, [f"{price}"])
    p.fact(f"The deal is expected to close in {month} and will add about {staff} employees to the group.",
           [f"The acquisition adds about {staff} employees.", f"About {staff} employees will join through the deal."],
           "The acquisition will not add any employees.", nums=[f"{staff}"])
    p.fact(f"{ceo}, chief executive of {buyer}, said the purchase would strengthen its position in {city2}.",
           [f"{ceo}, the chief executive of {buyer}, expects the deal to strengthen its position in {city2}.", f"According to {ceo}, the purchase strengthens {buyer} in {city2}."],
           f"{ceo}, the chief executive of {buyer}, said the purchase would not strengthen its position in {city2}.", {"PERSON": ceo, "ORG": buyer, "GPE": city2})
    p.fact(f"Shares of {buyer} rose {pct}% in early trading after the announcement.",
           [f"{buyer} shares gained {pct}% after the announcement.", f"Shares of {buyer} rose {pct}% in early trading."],
           f"Shares of {buyer} did not rise after the announcement.", {"ORG": buyer}, [pct])
    p.additions = [f"The deal was approved by regulators in {rng.choice(COUNTRIES)} last week.", f"{buyer} also plans to cut {rng.randint(100, 900)} jobs.",
                   "Analysts expect the merger to face a lengthy antitrust review.", f"{person(rng)} will lead the combined company."]
    return p


def product_sheet(rng: random.Random) -> Passage:
    p = Passage()
    a, b = rng.sample(PRODUCTS, 2)
    price_a, price_b = f"{rng.randint(19, 149)}.{rng.choice(['00', '50', '99'])}", f"{rng.randint(19, 149)}.{rng.choice(['00', '50', '99'])}"
    warranty, hours, grams = rng.choice([12, 24, 36]), rng.randint(6, 30), rng.randint(300, 2500)
    c1, c2 = rng.sample(COLORS, 2)
    p.fact(f"The {a} costs ${price_a} and comes with a {warranty}-month warranty.",
           [f"The {a} is priced at ${price_a}.", f"The {a} costs ${price_a} and has a {warranty}-month warranty."],
           f"The {a} does not come with a warranty.", {"PRODUCT": a}, [price_a])
    p.fact(f"The {a} runs for up to {hours} hours on a full charge and weighs {grams} grams.",
           [f"On a full charge the {a} runs for up to {hours} hours.", f"The {a} weighs {grams} grams."],
           f"The {a} cannot run on a charge.", {"PRODUCT": a}, [str(hours)])
    p.fact(f"The {b} costs ${price_b} and is available in {c1} and {c2}.",
           [f"The {b} sells for ${price_b} in {c1} or {c2}.", f"The {b} costs ${price_b}."],
           f"The {b} is not available in {c1}.", {"PRODUCT": b}, [price_b])
    p.fact(f"The {b} has no battery; it plugs into the wall.",
           [f"The {b} has no battery and plugs into the wall.", f"The {b} plugs into the wall; it has no battery."],
           f"The {b} has a battery and does not need the wall socket.", {"PRODUCT": b})
    p.additions = [f"The {a} is made in {rng.choice(COUNTRIES)}.", f"The {b} won a design award in {rng.randint(2015, 2024)}.",
                   f"The {a} ships with a travel case and a spare filter.", f"Both products are certified by {rng.choice(COMPANIES)}."]
    return p


def release_notes(rng: random.Random) -> Passage:
    p = Passage()
    proj, org, lead = rng.choice(PROJECTS), rng.choice(COMPANIES), person(rng)
    major, minor, patch = rng.randint(1, 5), rng.randint(0, 20), rng.randint(1, 9)
    version, bugs, py = f"{major}.{minor}.{patch}", rng.randint(12, 140), rng.choice(["3.8", "3.9", "3.7"])
    when = date(rng)
    p.fact(f"{proj} {version} was released on {when} and fixes {bugs} bugs.",
           [f"{proj} {version} fixes {bugs} bugs.", f"Version {version} of {proj} came out on {when} with {bugs} bug fixes."],
           f"{proj} {version} does not fix any bugs.", {"PROJECT": proj}, [str(bugs)])
    p.fact(f"The release drops support for Python {py} and adds a new streaming API.",
           [f"Support for Python {py} was dropped in this release.", f"The release adds a streaming API and no longer supports Python {py}."],
           f"The release does not drop support for Python {py}.", nums=[py])
    p.fact(f"The project is maintained by {lead} at {org} in {rng.choice(CITIES)}.",
           [f"{lead} at {org} maintains the project.", f"{proj} is maintained by {lead} of {org}."],
           f"{lead} at {org} no longer maintains the project.", {"PERSON": lead, "ORG": org})
    p.fact(f"Users upgrading from {major}.{max(minor - 1, 0)} need to rebuild their indexes.",
           [f"Upgrading from {major}.{max(minor - 1, 0)} requires rebuilding indexes.", f"Indexes must be rebuilt when upgrading from {major}.{max(minor - 1, 0)}."],
           f"Upgrading from {major}.{max(minor - 1, 0)} does not require rebuilding indexes.")
    p.additions = [f"The next release is planned for {rng.choice(MONTHS)}.", f"{proj} is now used by over {rng.randint(2, 90)} thousand companies.",
                   f"The new API was contributed by {person(rng)}.", "A security audit found no critical issues."]
    return p


def biography(rng: random.Random) -> Passage:
    p = Passage()
    who, city, country, uni, org = person(rng), rng.choice(CITIES), rng.choice(COUNTRIES), rng.choice(UNIVERSITIES), rng.choice(COMPANIES)
    born, joined, team = rng.randint(1955, 1990), rng.randint(2005, 2020), rng.randint(8, 300)
    p.fact(f"{who} was born in {city} in {born} and studied physics at {uni}.",
           [f"{who} studied physics at {uni}.", f"Born in {city}, {who} studied physics at {uni}."],
           f"{who} did not study physics at {uni}.", {"PERSON": who, "GPE": city, "ORG": uni})
    p.fact(f"She joined {org} in {joined}, where she leads a team of {team} engineers.",
           [f"At {org} she leads a team of {team} engineers.", f"She leads {team} engineers at {org}, which she joined in {joined}."],
           f"She does not lead a team at {org}.", {"ORG": org}, [str(team)])
    p.fact(f"Her work on battery recycling earned her a national award in {country}.",
           [f"She received a national award in {country} for her work on battery recycling.", f"Her battery recycling work won a national award in {country}."],
           f"Her work on battery recycling did not earn her an award in {country}.", {"GPE": country})
    p.fact(f"She has published more than {team // 2 + 10} papers and holds {rng.randint(2, 30)} patents.",
           [f"She has published more than {team // 2 + 10} papers.", f"She is the author of over {team // 2 + 10} papers."],
           "She has never published a paper.", nums=[str(team // 2 + 10)])
    p.additions = [f"She also advises the government of {rng.choice(COUNTRIES)} on energy policy.", f"She founded a startup in {rng.choice(CITIES)} in {rng.randint(2010, 2023)}.",
                   "She is known for her popular science podcast.", f"She is married to the architect {person(rng)}."]
    return p


def civic_project(rng: random.Random) -> Passage:
    p = Passage()
    city, firm, mayor = rng.choice(CITIES), rng.choice(COMPANIES), person(rng)
    length, cost, vehicles, year = rng.randint(300, 2900), rng.randint(40, 900), rng.randint(5, 90) * 1000, rng.randint(1995, 2023)
    p.fact(f"The Riverside Bridge in {city} opened in {year} and is {length} metres long.",
           [f"The Riverside Bridge in {city} is {length} metres long.", f"Opened in {year}, the Riverside Bridge spans {length} metres."],
           f"The Riverside Bridge in {city} is not open.", {"GPE": city}, [str(length)])
    p.fact(f"It was built by {firm} at a cost of ${cost} million.",
           [f"{firm} built it for ${cost} million.", f"The bridge cost ${cost} million and was built by {firm}."],
           f"It was not built by {firm}.", {"ORG": firm}, [str(cost)])
    p.fact(f"About {vehicles:,} vehicles cross the bridge every day.",
           [f"Roughly {vehicles:,} vehicles use the bridge daily.", f"About {vehicles:,} vehicles cross it every day."],
           "No vehicles cross the bridge.", nums=[f"{vehicles:,}"])
    p.fact(f"Mayor {mayor} said a second crossing is not planned before 2035.",
           [f"According to Mayor {mayor}, no second crossing is planned before 2035.", f"Mayor {mayor} said there are no plans for a second crossing before 2035."],
           f"Mayor {mayor} said a second crossing is planned before 2035.", {"PERSON": mayor})
    p.additions = [f"The bridge was designed by the engineer {person(rng)}.", "It has won several international engineering prizes.",
                   f"A toll of ${rng.randint(2, 9)} is charged on weekdays.", f"The project was partly funded by {rng.choice(COMPANIES)}."]
    return p


def quarterly_results(rng: random.Random) -> Passage:
    p = Passage()
    org, cfo, country = rng.choice(COMPANIES), person(rng), rng.choice(COUNTRIES)
    rev, growth, margin, stores = f"{rng.randint(11, 98) / 10:.1f}", rng.choice(["4", "7", "9", "12", "15"]), rng.randint(8, 35), rng.randint(20, 400)
    q, year = rng.choice(["first", "second", "third", "fourth"]), rng.randint(2016, 2024)
    p.fact(f"{org} reported revenue of ${rev} billion for the {q} quarter of {year}, up {growth}% from a year earlier.",
           [f"{org} had ${rev} billion in revenue, {growth}% more than a year before.", f"Revenue at {org} rose {growth}% to ${rev} billion."],
           f"Revenue at {org} did not rise from a year earlier.", {"ORG": org}, [rev, growth])
    p.fact(f"Its operating margin was {margin}%, helped by lower shipping costs.",
           [f"Lower shipping costs helped lift its operating margin to {margin}%.", f"The operating margin was {margin}%."],
           "Its operating margin was not helped by lower shipping costs.", nums=[str(margin)])
    p.fact(f"Chief financial officer {cfo} said the company will open {stores} new stores in {country}.",
           [f"{cfo}, the chief financial officer, said {stores} new stores will open in {country}.", f"The company plans {stores} new stores in {country}, according to {cfo}."],
           f"{cfo}, the chief financial officer, said no new stores will open in {country}.", {"PERSON": cfo, "GPE": country}, [str(stores)])
    p.fact("The board did not change its dividend.", ["The dividend was left unchanged.", "The board kept its dividend unchanged."],
           "The board changed its dividend.")
    p.additions = [f"{org} also announced a share buyback of ${rng.randint(1, 9)} billion.", f"The results beat analyst forecasts in {rng.choice(CITIES)}.",
                   "The company warned that demand may weaken next year.", f"{person(rng)} will join the board in {rng.choice(MONTHS)}."]
    return p


DOMAINS: list[Callable[[random.Random], Passage]] = [company_news, product_sheet, release_notes, biography, civic_project, quarterly_results]
POOLS = {"ORG": COMPANIES + UNIVERSITIES, "PERSON": None, "GPE": CITIES + COUNTRIES, "PRODUCT": PRODUCTS, "PROJECT": PROJECTS}
KINDS = ["faithful", "entity_swap", "entity_swap_intrinsic", "number_change", "negation", "unsupported_addition"]


def _swap_entity(rng: random.Random, p: Passage, claim: dict, text: str, intrinsic: bool) -> str | None:
    options = [(t.rstrip("0123456789"), s) for t, s in claim["ents"].items() if s in text]
    rng.shuffle(options)
    source = " ".join(p.source)
    for typ, surface in options:
        if intrinsic:
            cands = [e for e in p.entities.get(typ, []) if e != surface and e not in surface and surface not in e]
        else:
            pool = POOLS.get(typ) or [person(rng) for _ in range(10)]
            cands = [e for e in pool if e not in source]
        if cands:
            return text.replace(surface, rng.choice(cands))
    return None


def _change_number(rng: random.Random, p: Passage, claim: dict, text: str) -> str | None:
    source = " ".join(p.source)
    for surface in claim["nums"]:
        if surface not in text:
            continue
        value = float(surface.replace(",", ""))
        for _ in range(20):
            new = value * rng.choice([0.5, 0.75, 1.25, 1.5, 2, 3]) + rng.choice([0, 1, -1])
            dec = len(surface.split(".")[1]) if "." in surface else 0
            new_s = f"{new:,.{dec}f}" if "," in surface else f"{new:.{dec}f}"
            if new_s != surface and new_s not in source and float(new_s.replace(",", "")) > 0:
                return re.sub(r"(?<![\d.])" + re.escape(surface) + r"(?![\d])", new_s, text, count=1)
    return None


def make_record(rng: random.Random, kind: str) -> dict | None:
    p = rng.choice(DOMAINS)(rng)
    i, j = sorted(rng.sample(range(len(p.claims)), 2))
    texts = [rng.choice(p.claims[i]["variants"]), rng.choice(p.claims[j]["variants"])]
    k = rng.randrange(2)
    claim = p.claims[(i, j)[k]]
    if kind == "entity_swap" or kind == "entity_swap_intrinsic":
        new = _swap_entity(rng, p, claim, texts[k], kind == "entity_swap_intrinsic")
    elif kind == "number_change":
        new = _change_number(rng, p, claim, texts[k])
    elif kind == "negation":
        new = claim["negated"]
    else:
        new = texts[k]
    if new is None:
        return None
    texts[k] = new
    if kind == "unsupported_addition":
        texts.append(rng.choice(p.additions))
    return {"source": " ".join(p.source), "output": " ".join(texts), "error": kind, "label": int(kind != "faithful")}


def build(seed: int, n: int) -> list[dict]:
    """``n`` records per kind (faithful: twice that, so every kind has its own negatives' scale)."""
    rng = random.Random(seed)
    records = []
    for kind in KINDS:
        want = 2 * n if kind == "faithful" else n
        got = 0
        while got < want:
            rec = make_record(rng, kind)
            if rec is not None:
                records.append(rec)
                got += 1
    rng.shuffle(records)
    return records


def measure(records: list[dict]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    from nlpforge.evals.factuality import score_records

    scored = score_records(records)
    for r, s in zip(records, scored):
        r["hallucination_score"] = s["hallucination_score"] if s["hallucination_score"] is not None else 0.0
    neg = [r["hallucination_score"] for r in records if r["error"] == "faithful"]
    out = {}
    for kind in KINDS[1:]:
        pos = [r["hallucination_score"] for r in records if r["error"] == kind]
        out[kind] = roc_auc_score([1] * len(pos) + [0] * len(neg), pos + neg)
    core = [r for r in records if r["error"] != "entity_swap_intrinsic"]
    out["overall"] = roc_auc_score([r["label"] for r in core], [r["hallucination_score"] for r in core])
    out["overall_with_intrinsic"] = roc_auc_score([r["label"] for r in records], [r["hallucination_score"] for r in records])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--n", type=int, default=100, help="records per error kind (faithful: 2n)")
    ap.add_argument("--out", type=Path, default=None, help="write the labelled set (JSONL) here")
    ap.add_argument("--measure", action="store_true", help="score the set and print AUROC per error kind")
    args = ap.parse_args()
    records = build(args.seed, args.n)
    if args.measure:
        aucs = measure(records)
        print(f"hallucination_score AUROC, seed {args.seed}, {args.n} per kind, {2 * args.n} faithful")
        print(f"{'error kind':<26} {'AUROC':>6}")
        for kind, auc in aucs.items():
            print(f"{kind:<26} {auc:6.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"wrote {len(records)} records to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
