"""The server's feedback store on a real SQLite file: feedback joins completions served before a
restart, unknown ids and choices are refused, and the completion table stays bounded."""

from __future__ import annotations

import json
from pathlib import Path

from nlpforge.serve.feedback import FeedbackStore
from nlpforge.serve.protocol import FeedbackRequest

MSGS = [{"role": "user", "content": "How heavy is the Comet Earbuds?"}]


def test_feedback_joins_a_completion_served_before_a_restart(tmp_path: Path) -> None:
    before = FeedbackStore(tmp_path)
    before.remember("chatcmpl-1", "m", MSGS, ["48 grams.", "About 50 g."])
    before.close()  # the server stops; a new one starts on the same folder
    after = FeedbackStore(tmp_path)
    assert after.add(FeedbackRequest(id="chatcmpl-1", choice=1, rating="down", preferred="They weigh 48 grams."))
    assert not after.add(FeedbackRequest(id="chatcmpl-1", choice=2, rating="up"))  # no third answer
    assert not after.add(FeedbackRequest(id="chatcmpl-404", rating="up"))
    lines = [json.loads(x) for x in (tmp_path / "feedback.jsonl").read_text().splitlines()]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("id", "model", "prompt", "answer", "choice", "rating", "preferred")} == {
        "id": "chatcmpl-1", "model": "m", "prompt": MSGS, "answer": "About 50 g.", "choice": 1, "rating": "down", "preferred": "They weigh 48 grams."}


def test_completions_kept_are_bounded_to_the_newest(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path, remember_last=5)
    for i in range(12):
        store.remember(f"c{i}", "m", MSGS, [f"answer {i}"])
    assert not store.add(FeedbackRequest(id="c0", rating="up"))  # trimmed
    assert store.add(FeedbackRequest(id="c11", rating="up")) and store.add(FeedbackRequest(id="c6", rating="up"))
    assert store._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0] <= 7


def test_redacting_store_writes_no_pii_to_disk(tmp_path: Path) -> None:
    from nlpforge.corpus.pii import ENTITIES, Anonymizer

    store = FeedbackStore(tmp_path, redact=Anonymizer(list(ENTITIES)))
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My card 4111 1111 1111 1111 was charged twice"}]
    store.remember("c1", "m", msgs, ["Refund sent to jo@example.org."])
    assert store.add(FeedbackRequest(id="c1", rating="down", preferred="Call +44 20 7946 0958.", comment="jo@example.org"))
    store.close()
    line = json.loads((tmp_path / "feedback.jsonl").read_text())
    assert line["prompt"] == [msgs[0], {"role": "user", "content": "My card <CREDIT_CARD> was charged twice"}]
    assert (line["answer"], line["preferred"], line["comment"]) == ("Refund sent to <EMAIL_ADDRESS>.", "Call <PHONE_NUMBER>.", "<EMAIL_ADDRESS>")
    on_disk = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    assert b"4111" not in on_disk and b"jo@example.org" not in on_disk and b"7946" not in on_disk


def test_replicas_export_as_one_the_last_revision_of_each_choice(tmp_path: Path) -> None:
    """Each replica keeps its own store (no shared SQLite over NFS); export reads them as one
    stream, one row per completion choice, its last revision, wherever the revisions landed."""
    from nlpforge.serve.feedback import export_feedback

    a, b = FeedbackStore(tmp_path / "a"), FeedbackStore(tmp_path / "b")
    a.remember("chatcmpl-a", "m", MSGS, ["48 grams."], "m@v1")
    b.remember("chatcmpl-b", "m", MSGS, ["Heavy."], "m@v2")
    assert a.add(FeedbackRequest(id="chatcmpl-a", rating="down")) == 1
    assert a.add(FeedbackRequest(id="chatcmpl-a", rating="up")) == 2
    assert b.add(FeedbackRequest(id="chatcmpl-b", rating="down", preferred="They weigh 48 grams.")) == 1
    assert [json.loads(x)["version"] for x in (tmp_path / "b/feedback.jsonl").read_text().splitlines()] == ["m@v2"]
    assert export_feedback([tmp_path / "a", tmp_path / "b"], "kto", tmp_path / "kto.jsonl") == 3
    kto = [json.loads(x) for x in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert [(r["completion"][0]["content"], r["label"]) for r in kto] == [("48 grams.", True), ("Heavy.", False), ("They weigh 48 grams.", True)]
    assert export_feedback([tmp_path / "a", tmp_path / "b"], "dpo", tmp_path / "dpo.jsonl") == 2  # preferred vs served; up vs down on one prompt
    dpo = [json.loads(x) for x in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dpo} == {("They weigh 48 grams.", "Heavy."), ("48 grams.", "Heavy.")}
