import json
from pathlib import Path

import pytest

from nlpforge.corpus.clean import normalize_text, run_clean
from nlpforge.corpus.pii import find_pii, redact
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig


def conv(user: str, assistant: str = "The Zephyr Kettle costs $49.00.") -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]})


def test_normalize_folds_unicode_and_whitespace() -> None:
    assert normalize_text("  How\u00a0much   is\tthe kettle\uff1f\u200b  ") == "How much is the kettle?"
    assert normalize_text("a\n\n\n\nb \n") == "a\n\nb"
    assert normalize_text("caf\u0065\u0301", "NFC") == "caf\u00e9"


@pytest.mark.parametrize(
    "text,entity",
    [
        ("mail jane.doe+x@mail.example.com now", "EMAIL_ADDRESS"),
        ("call +1 (415) 555-0132 today", "PHONE_NUMBER"),
        ("call 415-555-0132", "PHONE_NUMBER"),
        ("call 415.555.0132", "PHONE_NUMBER"),
        ("uk +44 20 7946 0958", "PHONE_NUMBER"),
    ],
)
def test_pii_patterns_find_values(text: str, entity: str) -> None:
    assert [s.entity for s in find_pii(text, ["EMAIL_ADDRESS", "PHONE_NUMBER"])] == [entity]


@pytest.mark.parametrize("text", ["order NW-483920 is late", "version 3.10.12", "costs $49.00", "SKU 12345", "in 2024-05-01"])
def test_pii_hard_negatives_are_not_flagged(text: str) -> None:
    assert find_pii(text, ["EMAIL_ADDRESS", "PHONE_NUMBER"]) == []


def test_redact_operators() -> None:
    text = "I am at a@b.co or 415-555-0132."
    assert redact(text, ["EMAIL_ADDRESS", "PHONE_NUMBER"])[0] == "I am at <EMAIL_ADDRESS> or <PHONE_NUMBER>."
    assert redact(text, ["EMAIL_ADDRESS"], "redact")[0] == "I am at  or 415-555-0132."


def test_clean_stage_keeps_or_rejects_every_line_with_a_reason(tmp_path: Path) -> None:
    src = tmp_path / "raw.jsonl"
    lines = [
        conv("Hi, I'm at jo@example.com, how much is the Zephyr\u00a0Kettle\uff1f"),
        conv("Hi, I'm at al@example.org, how much is the Zephyr Kettle?"),  # duplicate once redacted
        conv("Where is order NW-123456? Call me on +1 (415) 555-0132."),
        conv("hi", "."),  # too short
        '{"messages": [{"role": "user", "content": "cut',  # broken JSON, with PII after the cut
        json.dumps({"text": "no messages here"}),
        json.dumps({"messages": [{"role": "user", "content": "only a question, no answer"}]}),
        "",
    ]
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "clean"
    report = run_clean(DataConfig(inputs=[str(src)]), CleanConfig(min_words=3), out)
    kept = [json.loads(x) for x in (out / "corpus.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert report == json.loads((out / "report.json").read_text())

    assert report["kept_docs"] == 2 and report["rejected_docs"] == 5
    assert report["input_docs"] == 7 == len(kept) + len(rejects)
    assert kept[0]["messages"][0]["content"] == "Hi, I'm at <EMAIL_ADDRESS>, how much is the Zephyr Kettle?"
    assert kept[0]["source"] == f"{src}:1"
    assert kept[1]["messages"][0]["content"] == "Where is order NW-123456? Call me on <PHONE_NUMBER>."
    reasons = {r["source"].rsplit(":", 1)[1]: r["reason"] for r in rejects}
    assert reasons == {"2": "duplicate", "4": "too_short", "5": "invalid_json", "6": "invalid_schema", "7": "invalid_schema"}
    dup = next(r for r in rejects if r["reason"] == "duplicate")
    assert dup["detail"].endswith(f"{src}:1")
    assert report["pii_redacted"] == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert report["rejected"]["duplicate"]["docs"] == 1 and report["rejected"]["duplicate"]["chars"] > 0
    assert not list(out.glob(".*tmp")), "temp files left behind"


def test_clean_missing_input_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data.inputs: .*nope.jsonl: no such file or folder"):
        run_clean(DataConfig(inputs=[str(tmp_path / "nope.jsonl")]), CleanConfig(), tmp_path / "out")


def test_clean_fails_clearly_when_nothing_survives(tmp_path: Path) -> None:
    src = tmp_path / "raw.jsonl"
    src.write_text(conv("hi", ".") + "\n")
    with pytest.raises(DataError, match="no record survived"):
        run_clean(DataConfig(inputs=[str(src)]), CleanConfig(min_words=5), tmp_path / "out")
