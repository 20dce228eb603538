"""Input drift against the training data: how far what users send has moved from what the model
was tuned on. Export writes a reference into the bundle (``drift.json``): the vocabulary of the
training prompts, the MiniLM centroid of their embeddings, and the same two measures on the
held-out prompts (what "no drift" looks like). The server compares each prompt with it:

- ``oov_rate``: the share of the prompt's words never seen in a training prompt;
- ``embedding_distance``: 1 - cosine similarity of the prompt's all-MiniLM-L6-v2 embedding to
  the training centroid (only when the reference has a centroid and the encoder is installed).

Both are rolling means over the last ``window`` prompts. Word counts and a centroid are written
here rather than taken from a drift library (Evidently, alibi-detect) because those compare
whole datasets in batch; a server needs one prompt at a time against a reference small enough
to ship inside the bundle.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FILE = "drift.json"
MAX_VOCAB = 50_000
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The prompt a chat row or request asks: its last user message."""
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def oov_rate(text: str, vocab: set[str]) -> float | None:
    ws = words(text)
    return None if not ws else sum(w not in vocab for w in ws) / len(ws)


def _encoder() -> Any:
    try:
        from nlpforge.evals.factuality import _minilm

        return _minilm()
    except ImportError:
        return None


def build_reference(train: Sequence[str], held_out: Sequence[str], encoder: Any = None, embed: bool = True) -> dict[str, Any]:
    """The reference ``drift.json`` holds, from the training prompts and the held-out ones."""
    counts = collections.Counter(w for t in train for w in words(t))
    vocab = [w for w, _ in counts.most_common(MAX_VOCAB)]
    ref: dict[str, Any] = {"version": 1, "prompts": len(train), "vocabulary": sorted(vocab), "encoder": None, "centroid": None}
    vset = set(vocab)
    rates = [r for r in (oov_rate(t, vset) for t in held_out) if r is not None]
    ref["held_out"] = {"prompts": len(held_out), "oov_rate": sum(rates) / len(rates) if rates else None, "embedding_distance": None}
    enc = (encoder or _encoder()) if embed else None
    if enc is not None and train:
        import numpy as np

        emb = enc.encode(list(train), normalize_embeddings=True, convert_to_numpy=True)
        centroid = emb.mean(axis=0)
        centroid = centroid / (np.linalg.norm(centroid) or 1.0)
        ref["encoder"], ref["centroid"] = "all-MiniLM-L6-v2", [round(float(x), 6) for x in centroid]
        if held_out:
            held = enc.encode(list(held_out), normalize_embeddings=True, convert_to_numpy=True)
            ref["held_out"]["embedding_distance"] = float(np.mean(1 - held @ centroid))
    return ref


def write_reference(folder: Path, ref: dict[str, Any]) -> None:
    (Path(folder) / FILE).write_text(json.dumps(ref), encoding="utf-8")


def read_reference(bundle: Path | None) -> dict[str, Any] | None:
    path = Path(bundle) / FILE if bundle is not None else None
    if path is None or not path.is_file():
        return None
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # drift monitoring is optional: a damaged reference turns it off, never the server
    return ref if isinstance(ref, dict) and isinstance(ref.get("vocabulary"), list) else None


class DriftWindow:
    """Rolling means of both measures over the last ``window`` prompts."""

    def __init__(self, ref: dict[str, Any], window: int = 200, encoder: Any = None):
        self.vocab = set(ref["vocabulary"])
        self.centroid = ref.get("centroid")
        self.encoder = encoder
        self.oov: collections.deque[float] = collections.deque(maxlen=window)
        self.dist: collections.deque[float] = collections.deque(maxlen=window)

    def load(self) -> None:
        """Load the encoder now (else at the first prompt); without one, the word measure alone."""
        if self.centroid is not None and self.encoder is None:
            self.encoder = _encoder()
            if self.encoder is None:
                self.centroid = None

    def observe(self, text: str) -> tuple[float | None, float | None]:
        """Add one prompt; the rolling means after it (None until a measure has a value)."""
        rate = oov_rate(text, self.vocab)
        if rate is not None:
            self.oov.append(rate)
        if self.centroid is not None and text.strip():
            self.load()
            if self.encoder is not None:
                emb = self.encoder.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
                self.dist.append(float(1 - sum(a * b for a, b in zip(emb.tolist(), self.centroid))))
        return (sum(self.oov) / len(self.oov) if self.oov else None, sum(self.dist) / len(self.dist) if self.dist else None)
