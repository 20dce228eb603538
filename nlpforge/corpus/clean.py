"""The clean stage, over chat conversations (``data.format: messages``) or documents
(``data.format: text``).

Order: read -> normalise (unicode, mojibake, whitespace) -> anonymise PII -> one spaCy
pass (tokens, sentences) -> length and quality rules -> exact dedup -> near-dup (MinHash).
Dedup runs after anonymisation, so tickets that differ only in a customer's email
collapse. Every input record ends up in ``corpus.jsonl`` or in ``rejects.jsonl`` with a
reason; none vanish.

Scale-out: each step is a pure function of one document (:func:`normalize_text`,
:class:`~nlpforge.corpus.pii.Anonymizer`, :func:`~nlpforge.corpus.quality.check`), so
under Ray Data they map over batches unchanged; only the dedup indexes are global state.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import statistics
import unicodedata
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ftfy
import spacy
from datasketch import MinHash, MinHashLSH

from nlpforge.console import track
from nlpforge.corpus import quality
from nlpforge.corpus.pii import Anonymizer, Span
from nlpforge.corpus.readers import RawDoc, read
from nlpforge.data.formats import CHAT_FORMATS, FormatProblem, message_fields, to_canonical
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig
from nlpforge.runs import atomic_file, atomic_write_json

_KEEP_CONTROL = {"\n", "\t"}
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+")
ROLES = {"system", "user", "assistant"}


def normalize_text(text: str, form: str = "NFKC", fix_mojibake: bool = False) -> str:
    """Unicode normal form, no control or zero-width characters, single spaces, trimmed lines."""
    if fix_mojibake:
        text = ftfy.fix_text(text, normalization=None)
    text = unicodedata.normalize(form, text)
    text = "".join(c for c in text if c in _KEEP_CONTROL or unicodedata.category(c) not in ("Cc", "Cf"))
    text = text.replace("\u00a0", " ")  # NFC keeps no-break spaces; NFKC already folded them
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def check_messages(record: dict, field: str) -> str | None:
    messages = record.get(field)
    if messages is None:
        return f"invalid_schema: no '{field}' field (data.messages_field)"
    if not isinstance(messages, list) or not messages:
        return f"invalid_schema: '{field}' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"invalid_schema: {field}[{i}] needs role in {sorted(ROLES)} and string content"
    if not any(m["role"] == "assistant" for m in messages):
        return "invalid_schema: no assistant turn to learn from"
    return None


def count_records(paths: list[str], text_field: str) -> int | None:
    """Total for the progress bar: JSONL lines are cheap to count; other formats are not."""
    total = 0
    for doc in _jsonl_only(paths):
        if doc is None:
            return None
        total += doc
    return total


def _jsonl_only(paths: list[str]) -> Iterator[int | None]:
    from nlpforge.corpus.readers import expand

    for path in expand(paths):
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            yield None
            return
        with open(path, "rb") as f:
            yield sum(1 for line in f if line.strip())


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values), "max": max(values)}


class NearDuplicates:
    """MinHash LSH over word n-gram sets (datatrove/FineWeb parameters by default)."""

    def __init__(self, threshold: float, ngram: int, bands: int, rows: int):
        self.ngram, self.num_perm = ngram, bands * rows
        self.lsh = MinHashLSH(threshold=threshold, num_perm=self.num_perm, params=(bands, rows))
        self.sources: dict[str, MinHash] = {}

    def signature(self, text: str) -> MinHash:
        words = _WORD.findall(text.lower())
        grams = {" ".join(words[i : i + self.ngram]) for i in range(max(1, len(words) - self.ngram + 1))}
        m = MinHash(num_perm=self.num_perm)
        m.update_batch([g.encode() for g in grams])
        return m

    def seen(self, source: str, text: str) -> tuple[str, float] | None:
        """The earlier document this one nearly duplicates (and the estimated Jaccard), else
        record it and return None."""
        m = self.signature(text)
        for other in self.lsh.query(m):
            return other, m.jaccard(self.sources[other])
        self.lsh.insert(source, m)
        self.sources[source] = m
        return None


SPACY_TO_PRESIDIO = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "NORP": "NRP", "ORG": "ORGANIZATION"}
NER_ENTITIES = set(SPACY_TO_PRESIDIO.values())


def build_nlp(cfg: CleanConfig) -> spacy.Language:
    """The one spaCy pipeline of the stage: blank English + sentencizer, or a trained
    pipeline whose NER feeds PII; plus an EntityRuler for the user's term lists."""
    wants_ner = NER_ENTITIES.intersection(cfg.pii)
    if cfg.spacy_model:
        try:
            nlp = spacy.load(cfg.spacy_model, exclude=["lemmatizer", "tagger", "attribute_ruler"])
        except OSError as exc:
            raise DataError(f"clean.spacy_model: cannot load {cfg.spacy_model!r} (install the pipeline package or give its folder): {exc}") from None
        if not nlp.has_pipe("parser") and not nlp.has_pipe("senter"):
            nlp.add_pipe("sentencizer")
    else:
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
    if wants_ner and not nlp.has_pipe("ner"):
        raise DataError(f"clean.pii: {sorted(wants_ner)} need a trained spaCy pipeline with NER; set clean.spacy_model (e.g. en_core_web_sm)")
    if cfg.pii_terms:
        ruler = nlp.add_pipe("entity_ruler", before="ner" if nlp.has_pipe("ner") else None, config={"phrase_matcher_attr": "LOWER"})
        ruler.add_patterns([{"label": label, "pattern": term} for label, terms in cfg.pii_terms.items() for term in terms])
    return nlp


def ner_spans(doc: spacy.tokens.Doc, cfg: CleanConfig) -> list[Span]:
    spans = []
    for ent in doc.ents:
        label = ent.label_ if ent.label_ in cfg.pii_terms else SPACY_TO_PRESIDIO.get(ent.label_)
        if label and (label in cfg.pii or label in cfg.pii_terms):
            spans.append(Span(ent.start_char, ent.end_char, label, ent.text))
    return spans


def boilerplate_lines(data: DataConfig, cfg: CleanConfig) -> set[str]:
    """Lines held by many documents (a first streaming pass over the inputs)."""
    if not (cfg.boilerplate.enabled and data.format == "text"):
        return set()
    counts: Counter = Counter()
    n_docs = 0
    for doc in read(data.inputs, data.text_field):
        value = (doc.record or {}).get(data.text_field)
        if isinstance(value, str):
            n_docs += 1
            counts.update({line for line in normalize_text(value, cfg.normalize, cfg.fix_mojibake).split("\n") if line.strip()})
    floor = max(cfg.boilerplate.min_docs, cfg.boilerplate.min_fraction * n_docs)
    return {line for line, n in counts.items() if n >= floor}


class Cleaner:
    """Turn one raw record into a normalised record or a reject reason (the steps that need
    no corpus-wide state; anonymisation follows the spaCy pass, which finds NER entities)."""

    def __init__(self, data: DataConfig, cfg: CleanConfig, boilerplate: set[str] | None = None):
        self.data, self.cfg = data, cfg
        self.boilerplate = boilerplate or set()
        self.boilerplate_removed = 0
        c4 = cfg.quality.c4_lines
        self.c4_lines = (cfg.quality.preset == "web") if c4 is None else c4
        self.c4_removed = 0
        self.patterns = {label: re.compile(p) for label, p in cfg.pii_patterns.items()}
        salt = os.environ.get(cfg.pii_salt_env, "")
        if cfg.pii_operator in ("hash", "pseudonym") and not salt:
            raise DataError(f"clean.pii_operator={cfg.pii_operator} needs a secret salt in the environment variable {cfg.pii_salt_env} (clean.pii_salt_env)")
        self.anonymize = Anonymizer(cfg.pii, cfg.pii_operator, salt)

    def normalize(self, value: str) -> str:
        text = normalize_text(value, self.cfg.normalize, self.cfg.fix_mojibake)
        if self.boilerplate:
            lines = text.split("\n")
            kept = [line for line in lines if line not in self.boilerplate]
            self.boilerplate_removed += len(lines) - len(kept)
            text = "\n".join(kept).strip()
        if self.c4_lines:
            lines = [line for line in text.split("\n") if line.strip()]
            kept = [line for line in lines if quality.c4_line_ok(line)]
            self.c4_removed += len(lines) - len(kept)
            text = "\n".join(kept)
        return text

    def pattern_spans(self, text: str) -> list[Span]:
        return [Span(m.start(), m.end(), label, m.group()) for label, rx in self.patterns.items() for m in rx.finditer(text) if m.end() > m.start()]

    def __call__(self, doc: RawDoc) -> tuple[dict | None, str, str | None]:
        """``(normalised record, its text, reject reason)``; for chat, the text joins the turns with newlines."""
        if doc.record is None:
            return None, "", doc.error
        try:
            record = to_canonical(doc.record, self.data)  # alpaca, sharegpt, preference, ... -> one shape per task
        except FormatProblem as exc:
            return None, "", str(exc)
        fields = message_fields(self.data.format, self.data.messages_field)
        if fields:
            if self.data.format in CHAT_FORMATS:
                problem = check_messages(record, self.data.messages_field)
                if problem:
                    return None, "", problem
            for name in fields:
                record[name] = [{"role": m["role"], "content": normalize_text(m["content"], self.cfg.normalize, self.cfg.fix_mojibake)} for m in record[name]]
            return record, "\n".join(m["content"] for f in fields for m in record[f]), None
        value = record.get(self.data.text_field)
        if not isinstance(value, str):
            return None, "", f"invalid_schema: no string '{self.data.text_field}' field (data.text_field)"
        text = self.normalize(value)
        return {**record, self.data.text_field: text}, text, None

    def anonymize_record(self, record: dict, text: str, spans: list[Span]) -> tuple[dict, str]:
        """Anonymise the record's text(s), with NER spans given as offsets into ``text``."""
        fields = message_fields(self.data.format, self.data.messages_field)
        if not fields:
            new = self.anonymize(text, self.pattern_spans(text) + spans)
            return {**record, self.data.text_field: new}, new
        record, pos = dict(record), 0
        for name in fields:
            messages = []
            for m in record[name]:
                end = pos + len(m["content"])
                mine = [Span(sp.start - pos, sp.end - pos, sp.entity, sp.text) for sp in spans if pos <= sp.start and sp.end <= end]
                messages.append({"role": m["role"], "content": self.anonymize(m["content"], self.pattern_spans(m["content"]) + mine)})
                pos = end + 1  # the joining newline
            record[name] = messages
        return record, "\n".join(m["content"] for f in fields for m in record[f])


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


@dataclass
class Result:
    """What the per-document steps decided about one input record."""

    source: str
    record: dict | None  # the cleaned record, or None when rejected
    text: str  # cleaned text (or the anonymised raw line of an unparsable record)
    reject: str | None
    words: int | None = None
    sentences: int = 0
    pii: dict = field(default_factory=dict)
    lines_removed: tuple[int, int] = (0, 0)  # boilerplate lines, C4 lines
    sentence_spans: list[tuple[int, int]] = field(default_factory=list)  # offsets into text, for sentence dedup


class DocProcessor:
    """Every per-document step (normalise, spaCy pass, anonymise, length, quality, language,
    contamination) as one pure function over a batch of records, so it runs the same in
    this process, in a process pool (``clean.n_process``), or under Ray Data's
    ``map_batches``. Only dedup, which needs the whole corpus, stays outside."""

    def __init__(self, data: DataConfig, cfg: CleanConfig, boilerplate: set[str]):
        self.data, self.cfg = data, cfg
        self.nlp = build_nlp(cfg)
        self.cleaner = Cleaner(data, cfg, boilerplate)
        self.language = LanguageFilter(cfg.languages, cfg.language_min_words) if cfg.languages else None
        self.contamination = Contamination(cfg.decontaminate.against, cfg.decontaminate.ngram, cfg.decontaminate.text_field) if cfg.decontaminate.against else None
        self.limits = quality.thresholds(cfg.quality.preset, cfg.quality.overrides)
        self.rep_min_words = quality.REPETITION_MIN_WORDS[cfg.quality.preset]
        self.splitter = None
        if cfg.sentence_dedup and data.format == "text":
            self.splitter = spacy.blank("en")
            self.splitter.add_pipe("sentencizer")

    def __call__(self, batch: list[RawDoc]) -> list[Result]:
        cfg, cleaner = self.cfg, self.cleaner
        normalised = []
        for raw in batch:
            before = (cleaner.boilerplate_removed, cleaner.c4_removed)
            normalised.append((*cleaner(raw), (cleaner.boilerplate_removed - before[0], cleaner.c4_removed - before[1])))
        out = []
        for raw, (record, text, reason, boiler), doc in zip(batch, normalised, self.nlp.pipe(t for _, t, _, _ in normalised)):
            counts = cleaner.anonymize.counts
            before = Counter(counts)
            if record is None:
                # the raw line may hold PII too: anonymise it before it lands in the rejects file
                out.append(Result(raw.source, None, cleaner.anonymize(raw.raw.strip()), reason or "invalid", pii=dict(counts - before)))
                continue
            record, text = cleaner.anonymize_record(record, text, ner_spans(doc, cfg))
            words = [t.text for t in doc if not (t.is_punct or t.is_space)]
            n_sents = sum(1 for _ in doc.sents)
            problem = None
            if len(words) < cfg.min_words:
                problem = f"too_short: {len(words)} words < clean.min_words={cfg.min_words}"
            elif len(words) > cfg.max_words:
                problem = f"too_long: {len(words)} words > clean.max_words={cfg.max_words}"
            else:
                failed = quality.check(text, words, n_sents, self.limits, self.rep_min_words)
                problem = (failed and failed[1]) or (self.language and self.language(text, len(words))) or (self.contamination and self.contamination(text))
            spans = [(st.start_char, st.end_char) for st in self.splitter(text).sents] if self.splitter and not problem else []
            out.append(Result(raw.source, None if problem else record, text, problem or None, len(words), n_sents, dict(counts - before), boiler, spans))
        return out


class SentenceSpans:
    """C4's sentence dedup: every run of ``n`` consecutive sentences is kept only where it
    first occurs in the corpus; later copies are cut out of their documents."""

    def __init__(self, n: int):
        self.n, self.seen = n, set()

    def __call__(self, text: str, spans: list[tuple[int, int]]) -> tuple[str, int]:
        sents = [text[a:b] for a, b in spans]
        drop = [False] * len(sents)
        for i in range(len(sents) - self.n + 1):
            key = hashlib.sha256("\x00".join(" ".join(s.lower().split()) for s in sents[i : i + self.n]).encode()).digest()
            if key in self.seen:
                drop[i : i + self.n] = [True] * self.n
            else:
                self.seen.add(key)
        if not any(drop):
            return text, 0
        pieces, pos = [], 0
        for (a, b), d in zip(spans, drop):
            if d:
                pieces.append(text[pos:a])
                pos = b
        pieces.append(text[pos:])
        return normalize_text("".join(pieces)), sum(drop)


_WORKER: DocProcessor | None = None


def _init_worker(data: DataConfig, cfg: CleanConfig, boilerplate: set[str]) -> None:
    global _WORKER
    _WORKER = DocProcessor(data, cfg, boilerplate)


def _work(batch: list[RawDoc]) -> list[Result]:
    assert _WORKER is not None
    return _WORKER(batch)


def _batches(docs: Iterator[RawDoc], size: int) -> Iterator[list[RawDoc]]:
    batch: list[RawDoc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def processed(data: DataConfig, cfg: CleanConfig, boilerplate: set[str]) -> Iterator[Result]:
    """Results in input order, from ``clean.n_process`` processes."""
    batches = _batches(read(data.inputs, data.text_field), cfg.batch_size)
    if cfg.n_process == 1:
        worker = DocProcessor(data, cfg, boilerplate)
        for batch in batches:
            yield from worker(batch)
        return
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies raises
    # BrokenProcessPool here instead of being respawned forever. At most 2 batches per
    # process are in flight, so memory stays flat however large the corpus is.
    ctx = multiprocessing.get_context("spawn")  # no forked copies of torch/spaCy threads
    with ProcessPoolExecutor(cfg.n_process, mp_context=ctx, initializer=_init_worker, initargs=(data, cfg, boilerplate)) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.submit(_work, batch))
            if len(pending) >= 2 * cfg.n_process:
                yield from _result(pending.popleft())
        while pending:
            yield from _result(pending.popleft())


def _result(future: Future) -> list[Result]:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise DataError(f"clean: a worker process died ({exc}); rerun with clean.n_process=1 to see the error") from None


def run_clean(data: DataConfig, cfg: CleanConfig, out_dir: Path | None) -> dict[str, Any]:
    """Clean ``data.inputs`` into ``out_dir``; with ``out_dir=None`` (a dry run) write nothing
    and return the report."""
    build_nlp(cfg)  # fail on a bad pipeline or PII setting before any work starts
    Cleaner(data, cfg)
    near = NearDuplicates(cfg.near_dedup.threshold, cfg.near_dedup.ngram, cfg.near_dedup.bands, cfg.near_dedup.rows) if cfg.near_dedup.enabled else None
    sentence_spans = SentenceSpans(cfg.sentence_dedup) if cfg.sentence_dedup and data.format == "text" else None
    sentences_removed = 0

    rejected: Counter = Counter()
    rejected_chars: Counter = Counter()
    examples: dict[str, list[str]] = {}
    pii: Counter = Counter()
    words_before: list[int] = []
    words_after: list[int] = []
    seen: dict[str, str] = {}
    first_reject: list[str] = []
    kept = sentences = boilerplate_removed = c4_removed = 0

    with _sink(out_dir, "corpus.jsonl") as kept_f, _sink(out_dir, "rejects.jsonl") as rej_f:

        def reject(source: str, reason: str, text: str) -> None:
            key = reason.split(":")[0]
            if not first_reject:
                first_reject.append(f"{source}: {reason}")
            rejected[key] += 1
            rejected_chars[key] += len(text)
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append(f"{source}: {text[:160]}")
            rej_f.write(json.dumps({"source": source, "reason": key, "detail": reason, "text": text[:2000]}, ensure_ascii=False) + "\n")

        total = count_records(data.inputs, data.text_field)
        for res in track(processed(data, cfg, boilerplate_lines(data, cfg)), total, "clean"):
            pii.update(res.pii)
            boilerplate_removed += res.lines_removed[0]
            c4_removed += res.lines_removed[1]
            if res.words is not None:
                words_before.append(res.words)
            if res.record is None:
                reject(res.source, res.reject or "invalid", res.text)
                continue
            record, text = res.record, res.text
            if cfg.dedup == "exact":
                fields = message_fields(data.format, data.messages_field)
                content = [record[f] for f in fields] if fields else [text, record.get("label")]
                key = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
                if key in seen:
                    reject(res.source, f"duplicate: same content as {seen[key]}", text)
                    continue
                seen[key] = res.source
            if sentence_spans is not None:
                text, removed = sentence_spans(text, res.sentence_spans)
                sentences_removed += removed
                if removed and not text:
                    reject(res.source, f"sentence_dedup: all {removed} sentences repeat earlier documents", res.text)
                    continue
                record = {**record, data.text_field: text}
            if near is not None:
                hit = near.seen(res.source, text)
                if hit:
                    reject(res.source, f"near_duplicate: estimated Jaccard {hit[1]:.2f} with {hit[0]}", text)
                    continue
            kept += 1
            words_after.append(res.words or 0)
            sentences += res.sentences
            kept_f.write(json.dumps({**record, "source": res.source}, ensure_ascii=False, default=str) + "\n")

    n_rejected = sum(rejected.values())
    if total is not None and kept + n_rejected != total:
        raise DataError(f"clean: {total} input records but {kept} kept + {n_rejected} rejected; this is a bug, please report it")
    if out_dir is not None and kept == 0:
        first = (first_reject or [""])[0]
        raise DataError(f"clean: no record survived cleaning (data.format={data.format}); first reject: {first[:400]}; see {out_dir / 'rejects.jsonl'}")
    report = {
        "input_docs": kept + n_rejected,
        "kept_docs": kept,
        "rejected_docs": n_rejected,
        "rejected": {k: {"docs": rejected[k], "chars": rejected_chars[k], "examples": examples[k]} for k in sorted(rejected)},
        "pii_redacted": dict(sorted(pii.items())),
        "pii_operator": cfg.pii_operator,
        "boilerplate_lines_removed": boilerplate_removed,
        "repeated_sentences_removed": sentences_removed,
        "c4_lines_removed": c4_removed,
        "quality_preset": cfg.quality.preset,
        "words_before": _stats(words_before),
        "words_after": _stats(words_after),
        "sentences_kept": sentences,
    }
    if out_dir is not None:
        atomic_write_json(out_dir / "report.json", report)
        plot_lengths(words_before, words_after, out_dir / "lengths.png")
    return report


def plot_lengths(before: list[int], after: list[int], path: Path) -> None:
    """Histogram of document lengths (words) before and after cleaning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    top = max(before + after + [1])
    bins = np.unique(np.geomspace(1, top + 1, 40).astype(int))
    ax.hist(before, bins=bins, alpha=0.5, label=f"input ({len(before)})")
    ax.hist(after, bins=bins, alpha=0.7, label=f"kept ({len(after)})")
    ax.set_xscale("log")
    ax.set_xlabel("words per document")
    ax.set_ylabel("documents")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


class _Null:
    def write(self, _: str) -> None:
        pass


def _sink(out_dir: Path | None, name: str) -> Any:
    import contextlib

    return atomic_file(out_dir / name) if out_dir is not None else contextlib.nullcontext(_Null())


def stage_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"kept": report["kept_docs"], "rejected": report["rejected_docs"], "pii_redacted": sum(report["pii_redacted"].values())}
