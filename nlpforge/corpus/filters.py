"""Record-level filters, each a pure function returning a reject reason or None: the chat
schema, length (characters before the spaCy pass, words after it), language, and
contamination with eval/benchmark data. The document quality rules live in
:mod:`nlpforge.corpus.quality`."""

from __future__ import annotations

import re
from collections.abc import Iterator

from nlpforge.corpus.readers import read
from nlpforge.data.chat import check_messages as chat_messages
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig

_WORD = re.compile(r"\w+")


def check_messages(record: dict, field: str) -> str | None:
    """Why a chat record cannot train: no message list, a malformed turn (the shared validator,
    ``data.chat.check_messages``), or no assistant turn to learn from. Text parts are joined in place."""
    if record.get(field) is None:
        return f"invalid_schema: no '{field}' field (data.messages_field)"
    try:
        record[field] = chat_messages(record[field], field)
    except ValueError as exc:
        return f"invalid_schema: {exc}"
    if not any(m["role"] == "assistant" for m in record[field]):
        return "invalid_schema: no assistant turn to learn from"
    return None


def chars_problem(n_chars: int, cfg: CleanConfig) -> str | None:
    """The character cap, checked on the normalised text before spaCy sees it: spaCy refuses a
    text over ``nlp.max_length`` (E088), which would abort the stage for one huge record."""
    return f"too_long: {n_chars} characters > clean.max_chars={cfg.max_chars}" if n_chars > cfg.max_chars else None


def words_problem(n_words: int, cfg: CleanConfig) -> str | None:
    """The word-count rules (words = the spaCy pass's tokens that are not punctuation or space)."""
    if n_words < cfg.min_words:
        return f"too_short: {n_words} words < clean.min_words={cfg.min_words}"
    if n_words > cfg.max_words:
        return f"too_long: {n_words} words > clean.max_words={cfg.max_words}"
    return None


class LanguageFilter:
    """Offline language identification: py3langid ships its model inside the package."""

    def __init__(self, languages: list[str], min_words: int):
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        self.languages, self.min_words = set(languages), min_words

    def __call__(self, text: str, n_words: int) -> str | None:
        if n_words < self.min_words:
            return None
        lang, prob = self.identifier.classify(text)
        if lang in self.languages:
            return None
        return f"language: detected {lang} (p={prob:.2f}); clean.languages={sorted(self.languages)}"


class Contamination:
    """Word n-grams of eval/benchmark texts; a training document sharing one is dropped."""

    def __init__(self, paths: list[str], n: int, text_field: str):
        self.n, self.grams, self.origin = n, set(), {}
        for doc in read(paths, text_field):
            if doc.error and doc.error.startswith("unreadable_file"):  # a skipped file would let its texts leak
                raise DataError(f"clean.decontaminate.against: {doc.source}: {doc.error}")
            record = doc.record or {}
            value = record.get(text_field)
            if value is None and isinstance(record.get("messages"), list):
                value = "\n".join(str(m.get("content", "")) for m in record["messages"] if isinstance(m, dict))
            if isinstance(value, str):
                for g in self._grams(value):
                    self.grams.add(g)
                    self.origin.setdefault(g, doc.source)

    def _grams(self, text: str) -> Iterator[int]:
        words = _WORD.findall(text.lower())
        for i in range(len(words) - self.n + 1):
            yield hash(" ".join(words[i : i + self.n]))

    def __call__(self, text: str) -> str | None:
        for g in self._grams(text):
            if g in self.grams:
                return f"contaminated: shares a {self.n}-word span with {self.origin[g]}"
        return None
