"""User feedback on served answers, and its export as TRL preference data.

The server records its chat completions (prompt messages and answers) in a SQLite file in
the feedback folder, so that ``POST /v1/feedback {id, rating|preferred}`` stores the feedback
*with the request*, also for a completion served before a restart or by another worker
process: one JSONL line per feedback under the feedback folder, an audit trail that is only
ever appended to. Feedback given again on the same completion choice is a new revision: the
line records it, and the last revision is the one that counts, so ``nlpforge feedback export``
turns each completion choice into training rows once (KTO or DPO, in TRL's conversational shapes).
With ``redact`` (the server's ``--redact-pii``), nothing is written to disk unredacted:
message contents, answers, preferred answers and comments pass through it first, the way
the clean stage redacts a training corpus, so the exported data matches what training saw.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from nlpforge.errors import DataError
from nlpforge.jsonl import iter_jsonl, write_jsonl
from nlpforge.runs import now

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
        self._db.execute("CREATE TABLE IF NOT EXISTS revisions (id TEXT, choice INTEGER, revision INTEGER, PRIMARY KEY (id, choice))")
        have = {row[1] for row in self._db.execute("PRAGMA table_info(completions)")}
        for column in ("version", "context"):  # a store from before these were recorded
            if column not in have:
                self._db.execute(f"ALTER TABLE completions ADD COLUMN {column} TEXT")
        self._inserts = 0

    def _clean(self, text: str | None) -> str | None:
        return None if text is None else self._redact(text)

    def remember(self, rid: str, model: str, messages: list[dict], answers: list[str], version: str | None = None, context: str | None = None) -> None:
        """Keep a completion for feedback and `nlpforge monitor`: ``version`` is the registry version
        that answered (NAME@vN), ``context`` the grounding the request carried."""
        messages = [{**m, "content": self._clean(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]
        answers = [self._redact(a) for a in answers]
        row = (rid, model, json.dumps(messages, ensure_ascii=False), json.dumps(answers, ensure_ascii=False), now(), version, self._clean(context))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions (id, model, messages, answers, created, version, context) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            self._inserts += 1
            if self._inserts % min(1000, self.limit) == 0:  # trim now and then, not on every request
                self._db.execute("DELETE FROM completions WHERE rowid <= (SELECT MAX(rowid) FROM completions) - ?", (self.limit,))

    def add(self, fb: Any) -> int | None:
        """Append one feedback line joined with its request; its revision number (1 for the first
        feedback on this completion choice), or None if the request is unknown."""
        with self._lock:
            found = self._db.execute("SELECT model, messages, answers, version FROM completions WHERE id = ?", (fb.id,)).fetchone()
            if found is None:
                return None
            model, messages, answers, version = found[0], json.loads(found[1]), json.loads(found[2]), found[3]
            if fb.choice >= len(answers):
                return None
            prev = self._db.execute("SELECT revision FROM revisions WHERE id = ? AND choice = ?", (fb.id, fb.choice)).fetchone()
            revision = (prev[0] if prev else 0) + 1
            line = {"id": fb.id, "received": now(), "model": model, "version": version, "prompt": messages, "answer": answers[fb.choice], "choice": fb.choice,
                    "revision": revision, "rating": fb.rating, "preferred": self._clean(fb.preferred), "comment": self._clean(fb.comment)}
            with open(self.path, "a", encoding="utf-8") as f:  # one short line per write: appends do not interleave
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._db.execute("INSERT OR REPLACE INTO revisions VALUES (?, ?, ?)", (fb.id, fb.choice, revision))
        return revision

    def model_of(self, rid: str) -> str | None:
        """The model (or adapter) that answered completion ``rid``."""
        with self._lock:
            row = self._db.execute("SELECT model FROM completions WHERE id = ?", (rid,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def feedback_files(folders: Path | list[Path]) -> list[Path]:
    """The feedback files of one or more ``--feedback-dir`` folders (one per server replica) or files."""
    out = []
    for folder in [folders] if isinstance(folders, Path) else folders:
        path = folder / FEEDBACK_FILE if folder.is_dir() else folder
        if not path.is_file():
            raise DataError(f"{path}: no feedback file (the server writes {FEEDBACK_FILE} under its --feedback-dir)")
        out.append(path)
    return out


def iter_feedback(folders: Path | list[Path]) -> Iterator[dict[str, Any]]:
    """The feedback lines, the last revision of each completion choice only, streamed: a first
    pass keeps only where each choice's last line is, the second yields those lines. Several
    folders are one stream (completion ids are unique across replicas)."""
    paths = feedback_files(folders)
    last: dict[tuple, tuple[int, int]] = {}
    for f, path in enumerate(paths):
        for n, row in enumerate(iter_jsonl(path), 1):
            if not isinstance(row.get("prompt"), list) or not isinstance(row.get("answer"), str):
                raise DataError(f"{path}: feedback line {n} needs `prompt` (list of messages) and `answer` (string)")
            last[(row.get("id"), row.get("choice", 0))] = (f, n)
    wanted = set(last.values())
    for f, path in enumerate(paths):
        for n, row in enumerate(iter_jsonl(path), 1):
            if (f, n) in wanted:
                yield row


def read_feedback(folders: Path | list[Path]) -> list[dict[str, Any]]:
    """:func:`iter_feedback` as a list."""
    return list(iter_feedback(folders))


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def to_kto(rows: Iterable[dict]) -> Iterator[dict]:
    """Thumbs up/down -> {prompt, completion, label}; a preferred answer is also a positive example."""
    for r in rows:
        if r.get("rating") in ("up", "down"):
            yield {"prompt": r["prompt"], "completion": _assistant(r["answer"]), "label": r["rating"] == "up"}
        if r.get("preferred"):
            yield {"prompt": r["prompt"], "completion": _assistant(r["preferred"]), "label": True}


def to_dpo(rows: Iterable[dict]) -> Iterator[dict]:
    """A preferred answer beats the served one (streamed); for one prompt, an answer rated up beats
    one rated down (these pairs need the votes grouped by prompt: only rated answers are held)."""
    by_prompt: dict[str, dict[str, list[str]]] = {}
    prompts: dict[str, list] = {}
    for r in rows:
        if r.get("preferred") and r["preferred"] != r["answer"]:
            yield {"prompt": r["prompt"], "chosen": _assistant(r["preferred"]), "rejected": _assistant(r["answer"])}
        if r.get("rating") in ("up", "down"):
            key = json.dumps(r["prompt"], sort_keys=True)
            prompts[key] = r["prompt"]
            by_prompt.setdefault(key, {"up": [], "down": []})[r["rating"]].append(r["answer"])
    for key, votes in by_prompt.items():
        for good in dict.fromkeys(votes["up"]):
            for bad in dict.fromkeys(votes["down"]):
                if good != bad:
                    yield {"prompt": prompts[key], "chosen": _assistant(good), "rejected": _assistant(bad)}


def export_feedback(folders: Path | list[Path], kind: Literal["kto", "dpo"], out: Path) -> int:
    """Write the feedback of one or more folders as KTO or DPO rows (streamed); how many."""
    rows = iter_feedback(folders)
    return write_jsonl(out, to_kto(rows) if kind == "kto" else to_dpo(rows))
