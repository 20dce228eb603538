"""The clean stage, over chat conversations (``data.format: messages``) or documents
(``data.format: text``).

Order: read -> normalise (unicode, mojibake, whitespace) -> anonymise PII -> one spaCy
pass (tokens, sentences) -> length and quality rules -> exact dedup -> near-dup (MinHash).
Dedup runs after anonymisation, so tickets that differ only in a customer's email
collapse. Every input record ends up in ``corpus.jsonl`` or in ``rejects.jsonl`` with a
reason; none vanish, and the stage checks that before it publishes anything: the outputs are
written to temp files and renamed only when every check passed, so a failed run leaves the
previous outputs (or none), never half of them.

The steps live by concern: :mod:`~nlpforge.corpus.readers` (what a record is),
:mod:`~nlpforge.corpus.normalize`, :mod:`~nlpforge.corpus.filters`,
:mod:`~nlpforge.corpus.quality`, :mod:`~nlpforge.corpus.pii`,
:mod:`~nlpforge.corpus.processor` (the spaCy pass and the per-document
:class:`DocProcessor`, which Ray Data maps over batches unchanged) and
:mod:`~nlpforge.corpus.dedup`, the only corpus-wide state. This module orchestrates them.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from nlpforge.atomic import atomic_file
from nlpforge.console import track
from nlpforge.corpus import dedup, normalize, processor, readers
from nlpforge.corpus.normalize import Cleaner, normalize_text
from nlpforge.corpus.pii_presets import audit as pii_audit
from nlpforge.corpus.processor import DocProcessor
from nlpforge.data.formats import message_fields
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

__all__ = ["Cleaner", "DocProcessor", "normalize_text", "output_paths", "plot_lengths", "run_clean", "stage_summary"]


_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _dumps(row: dict[str, Any]) -> str:
    """One JSONL line that stays one line for any splitter: ``str.splitlines`` also breaks at
    U+0085, U+2028 and U+2029, which ``json.dumps(ensure_ascii=False)`` leaves raw."""
    return json.dumps(row, ensure_ascii=False, default=str).translate(_LINE_BREAKS)


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values), "max": max(values)}


class _Counted:
    """The reader's own count of the records it handed to the stage."""

    def __init__(self, docs: Iterable[readers.RawDoc]):
        self.docs, self.n = docs, 0

    def __iter__(self) -> Iterator[readers.RawDoc]:
        for doc in self.docs:
            self.n += 1
            yield doc


OUTPUT_NAMES = ("corpus.jsonl", "rejects.jsonl", "report.json", "lengths.png")
FILE_SUFFIXES = (".jsonl", ".ndjson", ".json")


def output_paths(out: Path) -> dict[str, Path]:
    """Where the stage writes. A folder (any name without a JSON suffix, or an existing folder)
    holds corpus.jsonl, rejects.jsonl, report.json and lengths.png; a file name such as
    ``cleaned.jsonl`` is the corpus itself, with cleaned.rejects.jsonl, cleaned.report.json and
    cleaned.lengths.png beside it."""
    if out.suffix.lower() in FILE_SUFFIXES and not out.is_dir():
        stem = out.with_suffix("")
        return {"corpus.jsonl": out, "rejects.jsonl": Path(f"{stem}.rejects.jsonl"), "report.json": Path(f"{stem}.report.json"), "lengths.png": Path(f"{stem}.lengths.png")}
    return {name: out / name for name in OUTPUT_NAMES}


def _local(data: DataConfig, cfg: CleanConfig) -> processor.Processed:
    total = readers.count(data.all_inputs)  # the progress total; an unreadable single input fails here
    docs = _Counted(readers.read(data.all_inputs, data.text_field))
    near = dedup.NearDuplicates(cfg.near_dedup.threshold, cfg.near_dedup.ngram, cfg.near_dedup.bands, cfg.near_dedup.rows) if cfg.near_dedup.enabled else None
    exact = dedup.ExactDuplicates(message_fields(data.format, data.messages_field)) if cfg.dedup == "exact" else None
    spans = dedup.SentenceSpans(cfg.sentence_dedup) if cfg.sentence_dedup and data.format == "text" else None
    return processor.Processed(processor.processed(docs, data, cfg, normalize.boilerplate_lines(data, cfg)), lambda: docs.n, total, exact, near, spans)


def run_clean(data: DataConfig, cfg: CleanConfig, out_dir: Path | None) -> dict[str, Any]:
    """Clean ``data.eval_inputs`` and ``data.inputs`` into ``out_dir`` (a folder, or a ``.jsonl`` file name: see
    :func:`output_paths`); with ``out_dir=None`` (a dry run) write nothing and return the report.
    ``clean.engine: ray`` runs the per-document steps and the dedup indexes on Ray Data
    (:mod:`~nlpforge.corpus.ray_clean`); what is written is the same."""
    processor.build_nlp(cfg)  # fail on a bad pipeline or PII setting before any work starts
    Cleaner(data, cfg)
    if cfg.engine == "ray":
        from nlpforge.corpus import ray_clean

        source = ray_clean.processed(data, cfg)
    else:
        source = _local(data, cfg)
    sentence_spans = source.spans
    sentences_removed = 0

    rejected: Counter = Counter()
    rejected_chars: Counter = Counter()
    examples: dict[str, list[str]] = {}
    pii: Counter = Counter()
    words_before: list[int] = []
    words_after: list[int] = []
    first_reject: list[str] = []
    kept = sentences = boilerplate_removed = c4_removed = 0

    with contextlib.ExitStack() as outputs:  # each file is renamed into place only if the whole block succeeds
        paths = output_paths(out_dir) if out_dir is not None else None
        kept_f, rej_f, report_f, png_f = (_sink(outputs, paths[name] if paths else None, name) for name in OUTPUT_NAMES)

        def reject(source: str, reason: str, text: str, chars: int | None = None) -> None:
            key = reason.split(":")[0]
            if not first_reject:
                first_reject.append(f"{source}: {reason}")
            rejected[key] += 1
            rejected_chars[key] += len(text) if chars is None else chars
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append(f"{source}: {text[:160]}")
            rej_f.write(_dumps({"source": source, "reason": key, "detail": reason, "text": text[: processor.REJECT_CHARS]}) + "\n")

        for res in track(source.results, source.total, "clean"):
            pii.update(res.pii)
            boilerplate_removed += res.lines_removed[0]
            c4_removed += res.lines_removed[1]
            if res.words is not None:
                words_before.append(res.words)
            if res.record is None:
                reject(res.source, res.reject or "invalid", res.text, res.chars)
                continue
            record, text = res.record, res.text
            if source.exact is not None and (first := source.exact.seen(res.source, record, text)):
                reject(res.source, f"duplicate: same content as {first}", text)
                continue
            if sentence_spans is not None:
                text, removed = sentence_spans(res.source, text, res.sentence_spans)
                sentences_removed += removed
                if removed and not text:
                    reject(res.source, f"sentence_dedup: all {removed} sentences repeat earlier documents", res.text)
                    continue
                record = {**record, data.text_field: text}
            if source.near is not None and (hit := source.near.seen(res.source, text)):
                reject(res.source, f"near_duplicate: estimated Jaccard {hit[1]:.2f} with {hit[0]}", text)
                continue
            kept += 1
            words_after.append(res.words or 0)
            sentences += res.sentences
            kept_f.write(_dumps({**record, "source": res.source}) + "\n")

        n_rejected, n_docs = sum(rejected.values()), source.count()
        if kept + n_rejected != n_docs:
            raise DataError(f"clean: the readers gave {n_docs} input records but {kept} were kept + {n_rejected} rejected; this is a bug, please report it")
        if out_dir is not None and kept == 0:
            by_reason = ", ".join(f"{k} {n}" for k, n in rejected.most_common())
            first = (first_reject or [""])[0]
            raise DataError(f"clean: no record survived cleaning (data.format={data.format}); rejected: {by_reason or 'none'}; first reject: {first[:400]}")
        report = {
            "input_docs": n_docs,
            "kept_docs": kept,
            "rejected_docs": n_rejected,
            "rejected": {k: {"docs": rejected[k], "chars": rejected_chars[k], "examples": examples[k]} for k in sorted(rejected)},
            "pii_redacted": dict(sorted(pii.items())),
            "pii_operator": cfg.pii_operator,
            "pii_preset": cfg.pii_preset,
            "pii_audit": pii_audit(cfg.pii_preset, dict(pii)),
            "boilerplate_lines_removed": boilerplate_removed,
            "repeated_sentences_removed": sentences_removed,
            "c4_lines_removed": c4_removed,
            "quality_preset": cfg.quality.preset,
            "words_before": _stats(words_before),
            "words_after": _stats(words_after),
            "sentences_kept": sentences,
        }
        if out_dir is not None:
            report_f.write(json.dumps(report, indent=2) + "\n")
            plot_lengths(words_before, words_after, png_f)
    return report


def plot_lengths(before: list[int], after: list[int], out: Path | IO[bytes]) -> None:
    """Histogram of document lengths (words) before and after cleaning, as PNG."""
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
    fig.savefig(out, format="png")
    plt.close(fig)


class _Null:
    def write(self, _: Any) -> None:
        pass


def _sink(stack: contextlib.ExitStack, path: Path | None, name: str) -> Any:
    """A temp file renamed to ``path`` when ``stack`` closes without an error; a sink that
    writes nothing for a dry run."""
    if path is None:
        return _Null()
    return stack.enter_context(atomic_file(path, "wb" if name.endswith(".png") else "w"))


def stage_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"kept": report["kept_docs"], "rejected": report["rejected_docs"], "pii_redacted": sum(report["pii_redacted"].values())}
