"""User feedback on served answers, and its export as TRL preference data.

The server records its chat completions (prompt messages and answers) in a SQLite file in
the feedback folder, so that ``POST /v1/feedback {id, rating|preferred}`` stores the feedback
*with the request*, also for a completion served before a restart or by another worker
process: one JSONL line per feedback under the feedback folder. ``nlpforge feedback export``
turns those lines into KTO or DPO datasets in TRL's conversational shapes (CONTRACTS.md).
With ``redact`` (the server's ``--redact-pii``), nothing is written to disk unredacted:
message contents, answers, preferred answers and comments pass through it first, the way
the clean stage redacts a training corpus, so the exported data matches what training saw.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from nlpforge.errors import DataError
from nlpforge.runs import atomic_file, now

FEEDBACK_FILE = "feedback.jsonl"
COMPLETIONS_DB = "completions.sqlite"


class FeedbackStore:
    """Completions by id (SQLite: durable, shared by worker processes, bounded to the newest
    ``remember_last``) and the feedback lines joined with them (``feedback.jsonl``)."""

    def __init__(self, folder: Path, remember_last: int = 1_000_000, redact: Callable[[str], str] | None = None):
        if remember_last < 1:
            raise ValueError("remember_last must be at least 1")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FEEDBACK_FILE
        self.limit = remember_last
        self._redact = redact or (lambda text: text)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(folder / COMPLETIONS_DB, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        self._db.execute("PRAGMA synchronous=NORMAL")  # a power cut may lose the last completions, never corrupt the file
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (id TEXT PRIMARY KEY, model TEXT, messages TEXT, answers TEXT, created TEXT)")
        self._inserts = 0

    def _clean(self, text: str | None) -> str | None:
        return None if text is None else self._redact(text)

    def remember(self, rid: str, model: str, messages: list[dict], answers: list[str]) -> None:
        messages = [{**m, "content": self._clean(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]
        answers = [self._redact(a) for a in answers]
        row = (rid, model, json.dumps(messages, ensure_ascii=False), json.dumps(answers, ensure_ascii=False), now())
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)", row)
            self._inserts += 1
            if self._inserts % min(1000, self.limit) == 0:  # trim now and then, not on every request
                self._db.execute("DELETE FROM completions WHERE rowid <= (SELECT MAX(rowid) FROM completions) - ?", (self.limit,))

    def add(self, fb: Any) -> bool:
        """Append one feedback line joined with its request; False if the request is unknown."""
        with self._lock:
            found = self._db.execute("SELECT model, messages, answers FROM completions WHERE id = ?", (fb.id,)).fetchone()
            if found is None:
                return False
            model, messages, answers = found[0], json.loads(found[1]), json.loads(found[2])
            if fb.choice >= len(answers):
                return False
            line = {"id": fb.id, "received": now(), "model": model, "prompt": messages, "answer": answers[fb.choice],
                    "choice": fb.choice, "rating": fb.rating, "preferred": self._clean(fb.preferred), "comment": self._clean(fb.comment)}
            with open(self.path, "a", encoding="utf-8") as f:  # one short line per write: appends do not interleave
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_feedback(folder: Path) -> list[dict[str, Any]]:
    path = folder / FEEDBACK_FILE if folder.is_dir() else folder
    if not path.is_file():
        raise DataError(f"{path}: no feedback file (the server writes {FEEDBACK_FILE} under its --feedback-dir)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), list) or not isinstance(row.get("answer"), str):
            raise DataError(f"{path}:{n}: a feedback line needs `prompt` (list of messages) and `answer` (string)")
        rows.append(row)
    return rows


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def to_kto(rows: list[dict]) -> list[dict]:
    """Thumbs up/down -> {prompt, completion, label}; a preferred answer is also a positive example."""
    out = []
    for r in rows:
        if r.get("rating") in ("up", "down"):
            out.append({"prompt": r["prompt"], "completion": _assistant(r["answer"]), "label": r["rating"] == "up"})
        if r.get("preferred"):
            out.append({"prompt": r["prompt"], "completion": _assistant(r["preferred"]), "label": True})
    return out


def to_dpo(rows: list[dict]) -> list[dict]:
    """A preferred answer beats the served one; for one prompt, an answer rated up beats one rated down."""
    out = []
    for r in rows:
        if r.get("preferred") and r["preferred"] != r["answer"]:
            out.append({"prompt": r["prompt"], "chosen": _assistant(r["preferred"]), "rejected": _assistant(r["answer"])})
    by_prompt: dict[str, dict[str, list[str]]] = {}
    prompts: dict[str, list] = {}
    for r in rows:
        if r.get("rating") in ("up", "down"):
            key = json.dumps(r["prompt"], sort_keys=True)
            prompts[key] = r["prompt"]
            by_prompt.setdefault(key, {"up": [], "down": []})[r["rating"]].append(r["answer"])
    for key, votes in by_prompt.items():
        for good in dict.fromkeys(votes["up"]):
            for bad in dict.fromkeys(votes["down"]):
                if good != bad:
                    out.append({"prompt": prompts[key], "chosen": _assistant(good), "rejected": _assistant(bad)})
    return out


def export_feedback(folder: Path, kind: Literal["kto", "dpo"], out: Path) -> int:
    rows = read_feedback(folder)
    data = to_kto(rows) if kind == "kto" else to_dpo(rows)
    with atomic_file(out) as f:
        for d in data:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return len(data)
