"""The per-document half of the clean stage: the one spaCy pass, and :class:`DocProcessor`,
every per-document step as one pure function over a batch of records, run here, in a process
pool (:func:`processed`), or under Ray Data's ``map_batches``."""

from __future__ import annotations

import multiprocessing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import spacy

from nlpforge.corpus import quality
from nlpforge.corpus.filters import Contamination, LanguageFilter, words_problem
from nlpforge.corpus.normalize import Cleaner
from nlpforge.corpus.pii import Span
from nlpforge.corpus.pii_context import trim_ner_span
from nlpforge.corpus.pii_presets import entities_for
from nlpforge.corpus.readers import RawDoc
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

SPACY_TO_PRESIDIO = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "NORP": "NRP", "ORG": "ORGANIZATION"}
NER_ENTITIES = set(SPACY_TO_PRESIDIO.values())
REJECT_CHARS = 2000  # text kept per reject (the rejects file cuts there)


def build_nlp(cfg: CleanConfig) -> spacy.Language:
    """The one spaCy pipeline of the stage: blank English + sentencizer, or a trained
    pipeline whose NER feeds PII; plus an EntityRuler for the user's term lists."""
    wants_ner = NER_ENTITIES.intersection(entities_for(cfg.pii, cfg.pii_preset))
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
    nlp.max_length = max(nlp.max_length, cfg.max_chars)  # clean.max_chars rejects longer texts before spaCy
    return nlp


def ner_spans(doc: spacy.tokens.Doc, cfg: CleanConfig) -> list[Span]:
    """NER entities as Presidio labels, trimmed of courtesy titles, greetings and possessives."""
    spans = []
    wanted = entities_for(cfg.pii, cfg.pii_preset)
    for ent in doc.ents:
        label = ent.label_ if ent.label_ in cfg.pii_terms else SPACY_TO_PRESIDIO.get(ent.label_)
        if label and (label in wanted or label in cfg.pii_terms):
            s, e = (ent.start_char, ent.end_char) if label in cfg.pii_terms else trim_ner_span(doc.text, ent.start_char, ent.end_char)
            if e > s:
                spans.append(Span(s, e, label, doc.text[s:e]))
    return spans


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
    chars: int | None = None  # length of the rejected text when ``text`` holds only its start


@dataclass
class Processed:
    """What the dedup-and-write half of the stage consumes: every record's per-document Result in
    input order, and the dedup steps (``.seen``) that need the whole corpus."""

    results: Iterable[Result]
    count: Callable[[], int]  # records the readers gave, once ``results`` is exhausted
    total: int | None  # for the progress bar
    exact: Any  # dedup.ExactDuplicates, dedup.Decided or None
    near: Any  # dedup.NearDuplicates, dedup.Decided or None
    spans: Any = None  # dedup.SentenceSpans, dedup.DecidedSpans or None (clean.sentence_dedup, format text)


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
            self.splitter.max_length = self.nlp.max_length

    def __call__(self, batch: list[RawDoc]) -> list[Result]:
        cfg, cleaner = self.cfg, self.cleaner
        normalised = []
        for raw in batch:
            before = (cleaner.boilerplate_removed, cleaner.c4_removed)
            normalised.append((*cleaner(raw), (cleaner.boilerplate_removed - before[0], cleaner.c4_removed - before[1])))
        out = []
        for raw, (record, text, reason, boiler), doc in zip(batch, normalised, self.nlp.pipe("" if r is None else t for r, t, _, _ in normalised)):
            counts = cleaner.anonymize.counts
            before = Counter(counts)
            if record is None:
                # the raw line may hold PII too: anonymise it before it lands in the rejects file;
                # a record refused for its size keeps only its start (anonymising all of it would cost more than its cleaning)
                shown = cleaner.anonymize(text[: 2 * REJECT_CHARS] if text else raw.raw.strip())
                out.append(Result(raw.source, None, shown, reason or "invalid", pii=dict(counts - before), chars=len(text) if text else None))
                continue
            record, text = cleaner.anonymize_record(record, text, ner_spans(doc, cfg))
            words = [t.text for t in doc if not (t.is_punct or t.is_space)]
            n_sents = sum(1 for _ in doc.sents)
            problem = words_problem(len(words), cfg)
            if not problem:
                failed = quality.check(text, words, n_sents, self.limits, self.rep_min_words)
                problem = (failed and failed[1]) or (self.language and self.language(text, len(words))) or (self.contamination and self.contamination(text))
            spans = [(st.start_char, st.end_char) for st in self.splitter(text).sents] if self.splitter and not problem else []
            out.append(Result(raw.source, None if problem else record, text, problem or None, len(words), n_sents, dict(counts - before), boiler, spans))
        return out


_WORKER: DocProcessor | None = None


def _init_worker(data: DataConfig, cfg: CleanConfig, boilerplate: set[str]) -> None:
    global _WORKER
    _WORKER = DocProcessor(data, cfg, boilerplate)


def _work(batch: list[RawDoc]) -> list[Result]:
    assert _WORKER is not None
    return _WORKER(batch)


def _batches(docs: Iterable[RawDoc], size: int) -> Iterator[list[RawDoc]]:
    batch: list[RawDoc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def processed(docs: Iterable[RawDoc], data: DataConfig, cfg: CleanConfig, boilerplate: set[str]) -> Iterator[Result]:
    """One Result per doc of ``docs``, in input order, from ``clean.n_process`` processes."""
    batches = _batches(docs, cfg.batch_size)
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
