"""Document quality filters, each with a named reason: Gopher quality and repetition,
C4-style document rules, FineWeb-style line ratios (thresholds: the papers and tools named at each rule).

Written here rather than imported from datatrove: datatrove's filters are pipeline steps
over its own Document type and do their own word splitting; ours read the words and
sentences of the one spaCy pass the clean stage already made, and are pure functions over
a document, so they also run inside a Ray Data ``map_batches`` unchanged.

Two presets: ``web`` has the published thresholds; ``domain`` (the default) keeps code,
tables, logs of one line, short records and chat turns, and catches only degenerate text
(runaway repetition, no letters at all). Any threshold can be overridden by name.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

STOPWORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}
BULLETS = ("•", "-", "*", "·", "‣", "▪", "●")
TERMINAL = (".", "!", "?", '"', "'", "”", "’", ":", ";", ")")

# name -> (statistic, "min" | "max"); a document fails when statistic < min or > max
RULES: dict[str, tuple[str, str]] = {
    "gopher_min_words": ("words", "min"),
    "gopher_max_words": ("words", "max"),
    "gopher_min_mean_word_length": ("mean_word_length", "min"),
    "gopher_max_mean_word_length": ("mean_word_length", "max"),
    "gopher_symbol_ratio": ("symbol_ratio", "max"),
    "gopher_bullet_lines": ("bullet_lines", "max"),
    "gopher_ellipsis_lines": ("ellipsis_lines", "max"),
    "gopher_alpha_words": ("alpha_words", "min"),
    "gopher_stopwords": ("stopwords", "min"),
    "gopher_dup_lines": ("dup_lines", "max"),
    "gopher_dup_paragraphs": ("dup_paragraphs", "max"),
    "gopher_dup_line_chars": ("dup_line_chars", "max"),
    "gopher_dup_paragraph_chars": ("dup_paragraph_chars", "max"),
    **{f"gopher_top_{n}gram": (f"top_{n}gram", "max") for n in (2, 3, 4)},
    **{f"gopher_dup_{n}gram": (f"dup_{n}gram", "max") for n in range(5, 11)},
    "c4_lorem_ipsum": ("lorem_ipsum", "max"),
    "c4_curly_brace": ("curly_brace", "max"),
    "c4_min_sentences": ("sentences", "min"),
    "fineweb_line_punct": ("line_punct", "min"),
    "fineweb_short_lines": ("short_lines", "max"),
    "fineweb_dup_line_chars": ("dup_line_chars", "max"),
    "fineweb_newline_ratio": ("newline_ratio", "max"),
}

_WEB = {
    "gopher_min_words": 50,
    "gopher_max_words": 100_000,
    "gopher_min_mean_word_length": 3,
    "gopher_max_mean_word_length": 10,
    "gopher_symbol_ratio": 0.1,
    "gopher_bullet_lines": 0.9,
    "gopher_ellipsis_lines": 0.3,
    "gopher_alpha_words": 0.8,
    "gopher_stopwords": 2,
    "gopher_dup_lines": 0.3,
    "gopher_dup_paragraphs": 0.3,
    "gopher_dup_line_chars": 0.2,
    "gopher_dup_paragraph_chars": 0.2,
    "gopher_top_2gram": 0.2,
    "gopher_top_3gram": 0.18,
    "gopher_top_4gram": 0.16,
    **{f"gopher_dup_{n}gram": round(0.15 - (n - 5) * 0.01, 2) for n in range(5, 11)},
    "c4_lorem_ipsum": 0,
    "c4_curly_brace": 0,
    "c4_min_sentences": 5,
    "fineweb_line_punct": 0.12,
    "fineweb_short_lines": 0.67,
    "fineweb_dup_line_chars": 0.1,
    "fineweb_newline_ratio": 0.3,
}
# Domain text: repetition only where it is degenerate (a pasted loop, a log storm), and
# only on documents long enough for n-gram statistics to mean anything.
_DOMAIN = {
    "gopher_alpha_words": 0.2,
    "gopher_top_2gram": 0.4,
    "gopher_top_3gram": 0.35,
    "gopher_top_4gram": 0.3,
    "gopher_dup_10gram": 0.6,
}
PRESETS: dict[str, dict[str, float]] = {"web": _WEB, "domain": _DOMAIN, "off": {}}
REPETITION_MIN_WORDS = {"domain": 50, "web": 0, "off": 0}


def thresholds(preset: str, overrides: dict[str, float | None]) -> dict[str, float]:
    """The preset's thresholds with overrides applied (None switches a rule off)."""
    out = dict(PRESETS[preset])
    for name, value in overrides.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _dup_fraction(items: list[str]) -> tuple[float, float]:
    """Share of items that repeat an earlier one, and share of characters in them."""
    if not items:
        return 0.0, 0.0
    seen: set[str] = set()
    dup = dup_chars = 0
    for item in items:
        if item in seen:
            dup += 1
            dup_chars += len(item)
        seen.add(item)
    total_chars = sum(len(i) for i in items) or 1
    return dup / len(items), dup_chars / total_chars


def _top_ngram_fraction(words: list[str], n: int) -> float:
    if len(words) < n:
        return 0.0
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return sum(len(w) for w in gram) * count / (sum(len(w) for w in words) or 1)


def _dup_ngram_fraction(words: list[str], n: int) -> float:
    """Characters of words covered by an n-gram that occurred before (Gopher's measure)."""
    if len(words) < n:
        return 0.0
    seen: set[tuple] = set()
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            for j in range(i, i + n):
                covered[j] = True
        seen.add(gram)
    return sum(len(w) for w, c in zip(words, covered) if c) / (sum(len(w) for w in words) or 1)


def statistics(text: str, words: list[str], n_sentences: int, wanted: set[str]) -> dict[str, float]:
    """The statistics the wanted rules read (the n-gram ones cost the most, so only on demand)."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    n_words = len(words) or 1
    lower = [w.lower() for w in words]
    stats: dict[str, float] = {
        "words": len(words),
        "mean_word_length": sum(len(w) for w in words) / n_words,
        "symbol_ratio": (text.count("#") + text.count("...") + text.count("…")) / n_words,
        "bullet_lines": sum(ln.lstrip().startswith(BULLETS) for ln in lines) / (len(lines) or 1),
        "ellipsis_lines": sum(ln.rstrip().endswith(("...", "…")) for ln in lines) / (len(lines) or 1),
        "alpha_words": sum(any(c.isalpha() for c in w) for w in words) / n_words,
        "stopwords": len(STOPWORDS.intersection(lower)),
        "lorem_ipsum": float("lorem ipsum" in text.lower()),
        "curly_brace": float("{" in text),
        "sentences": n_sentences,
        "line_punct": sum(ln.rstrip().endswith(TERMINAL) for ln in lines) / (len(lines) or 1),
        "short_lines": sum(len(ln.strip()) <= 30 for ln in lines) / (len(lines) or 1),
        "newline_ratio": text.count("\n") / n_words,
    }
    stats["dup_lines"], stats["dup_line_chars"] = _dup_fraction(lines)
    stats["dup_paragraphs"], stats["dup_paragraph_chars"] = _dup_fraction(paragraphs)
    for n in (2, 3, 4):
        if f"top_{n}gram" in wanted:
            stats[f"top_{n}gram"] = _top_ngram_fraction(lower, n)
    for n in range(5, 11):
        if f"dup_{n}gram" in wanted:
            stats[f"dup_{n}gram"] = _dup_ngram_fraction(lower, n)
    return stats


def check(text: str, words: list[str], n_sentences: int, limits: dict[str, float], repetition_min_words: int = 0) -> tuple[str, str] | None:
    """The first rule the document fails, as ``(rule, detail)``, or None if it passes."""
    if not limits:
        return None
    wanted = {RULES[name][0] for name in limits}
    stats = statistics(text, words, n_sentences, wanted)
    for name, limit in limits.items():
        stat, kind = RULES[name]
        if len(words) < repetition_min_words and (stat.startswith(("top_", "dup_"))):
            continue
        value = stats[stat]
        if (kind == "min" and value < limit) or (kind == "max" and value > limit):
            return name, f"{name}: {stat}={value:.3g} {'<' if kind == 'min' else '>'} {limit}"
    return None


C4_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


def c4_line_ok(line: str) -> bool:
    """C4's line rules: terminal punctuation, at least 3 words, no word over 1,000
    characters, no "javascript", no cookie or privacy-policy boilerplate."""
    stripped = line.strip()
    words = stripped.split()
    lower = stripped.lower()
    return (
        stripped.endswith(TERMINAL)
        and len(words) >= 3
        and all(len(w) <= 1000 for w in words)
        and "javascript" not in lower
        and not any(p in lower for p in C4_POLICY)
    )


def validate_names(overrides: dict[str, Any]) -> list[str]:
    import difflib

    problems = []
    for name in overrides:
        if name not in RULES:
            hint = difflib.get_close_matches(name, list(RULES), n=1)
            problems.append(f"unknown quality rule '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else f" (valid: {', '.join(RULES)})"))
    return problems
