"""The resumable scoring loop.

The input is cut into chunks of ``chunk_rows`` consecutive input rows (numbered over the whole
file, so the cut is the same on every start and on every shard). Each finished chunk is
written to ``<output>.parts/part-NNNNNN.jsonl`` by an atomic rename, and only then recorded in
``ledger.jsonl`` (appended and fsynced). A restart skips the chunks in the ledger and redoes
any other: a part written but not yet recorded is simply rewritten. The final output is
assembled from the recorded parts in chunk order, so a run killed at any point (SIGKILL
included) and started again gives every row exactly once. No library covers a file-level
resumable ledger over arbitrary engines, hence this module.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from nlpforge import console as con
from nlpforge.atomic import atomic_file, atomic_write_json
from nlpforge.corpus.readers import RawDoc
from nlpforge.engines import BundleInfo, Engine, load_engine, read_bundle
from nlpforge.errors import DataError, StageError
from nlpforge.export.registry import resolve
from nlpforge.jsonl import dumps, iter_jsonl
from nlpforge.runs import now
from nlpforge.score import io
from nlpforge.score.tasks import TASK_CLASSES, RowError, ScoreOptions
from nlpforge.score.tasks import Task as ScoreTask

LEDGER = "ledger.jsonl"
JOB = "job.json"


@dataclass
class ScoreJob:
    input: Path
    output: Path
    task: str  # generate | chat | classify | perplexity | factuality | batch
    model: str | None = None
    engine: str = "auto"
    options: ScoreOptions = field(default_factory=ScoreOptions)
    batch_size: int = 32
    threads: int | None = None
    num_shards: int = 1
    shard_index: int = 0
    chunk_rows: int = 1000
    rejects: Path | None = None
    fresh: bool = False
    dtype: str | None = None  # override the bundle's dtype (bfloat16 on CPUs with AVX512-BF16/AMX: ~2x)
    engine_args: dict[str, Any] = field(default_factory=dict)  # vLLM engine arguments (tensor_parallel_size, ...); not in the fingerprint
    ray: bool = False  # score the chunks on Ray actors (not in the fingerprint: a job resumes on either)
    ray_address: str | None = None  # a running cluster; default: start a local one
    replicas: int | None = None  # Ray actors, each loading the model once; default: as many as the cluster's CPUs (or GPUs) hold

    @property
    def parts(self) -> Path:
        return self.output.with_name(self.output.name + ".parts")

    @property
    def rejects_path(self) -> Path:
        return self.rejects or self.output.with_name(self.output.name + ".rejects.jsonl")

    @property
    def summary_path(self) -> Path:
        return self.output.with_name(self.output.name + ".summary.json")

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a run and its restart (the input by size and mtime:
        hashing a file larger than memory on every start would cost as much as reading it)."""
        st = self.input.stat()
        opts = asdict(self.options)
        opts["sampling"] = self.options.sampling.model_dump() if self.options.sampling else None
        fp = {
            "input": str(self.input.resolve()), "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns,
            "task": self.task, "model": self.model, "options": opts, "num_shards": self.num_shards,
            "shard_index": self.shard_index, "chunk_rows": self.chunk_rows,
        }
        return json.loads(json.dumps(fp))  # as job.json reads back (tuples become lists), or a rerun never matches it


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def _progress(total: int | None) -> Progress:
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*cols, console=con.console, disable=con.QUIET)


def _read_ledger(path: Path) -> dict[int, dict]:
    done: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-append: its chunk is redone
            done[entry["chunk"]] = entry
    return done


def _append_ledger(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _chunks(docs: Iterator[RawDoc], size: int, shards: int, index: int) -> Iterator[tuple[int, list[tuple[int, RawDoc]]]]:
    """(chunk number, this shard's rows of it); every chunk number is yielded, even when empty."""
    current, rows = 0, []
    for i, doc in enumerate(docs):
        c = i // size
        while c > current:
            yield current, rows
            current, rows = current + 1, []
        if i % shards == index:
            rows.append((i, doc))
    yield current, rows


class Summary:
    def __init__(self, task: str):
        self.task = task
        self.rows = 0
        self.rejected: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.finish: Counter[str] = Counter()
        self.values: list[float] = []

    def add(self, row: dict) -> None:
        self.rows += 1
        if self.task == "classify":
            pred = row.get("pred")
            self.labels.update(pred if isinstance(pred, list) else [pred])
        elif self.task == "perplexity":
            self.values.append(row["perplexity"])
        elif self.task in ("generate", "chat"):
            self.finish.update(row.get("finish_reasons") or [row.get("finish_reason")])
        elif self.task == "factuality" and row.get("hallucination_score") is not None:
            self.values.append(row["hallucination_score"])
        elif self.task == "batch":
            resp = row.get("response") or {}
            self.finish[str(resp.get("status_code", "error"))] += 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows, "errors": sum(self.rejected.values()), "error_reasons": dict(self.rejected)}
        if self.task == "classify":
            out["label_distribution"] = dict(self.labels.most_common())
        if self.task in ("generate", "chat"):
            out["finish_reasons"] = dict(self.finish)
        if self.task == "batch":
            out["status_codes"] = dict(self.finish)
        if self.values:
            v = sorted(self.values)
            q = statistics.quantiles(v, n=10) if len(v) > 1 else [v[0]] * 9
            name = "perplexity" if self.task == "perplexity" else "hallucination_score"
            out[name] = {"mean": statistics.fmean(v), "median": statistics.median(v), "p10": q[0], "p90": q[-1], "min": v[0], "max": v[-1]}
        return out


def make_task(job: ScoreJob, engine: Engine | None) -> ScoreTask:
    if job.task == "batch":
        from nlpforge.score.batchfile import BatchTask

        return BatchTask(engine, job.options)
    return TASK_CLASSES[job.task](engine, job.options)


def _check_model(job: ScoreJob) -> BundleInfo | None:
    """Fail before anything is written when the model cannot do the task."""
    if job.task != "batch" and not TASK_CLASSES[job.task].needs_engine:
        return None
    if not job.model:
        raise StageError(f"--task {job.task} needs --model BUNDLE (an exported bundle folder or NAME@STAGE)")
    info = read_bundle(resolve(job.model))  # a bundle path, or NAME@STAGE through the registry
    wants = "classification" if job.task == "classify" else "chat"
    if info.task != wants:
        valid = "classify" if info.task == "classification" else "generate, chat, perplexity, batch files"
        raise StageError(f"--model {job.model} is a {info.task} bundle; it can do: {valid} (not --task {job.task})")
    return info


def _open_engine(job: ScoreJob, info: BundleInfo) -> Engine:
    opts: dict[str, Any] = {"batch_size": job.batch_size}
    if job.threads:
        opts["threads"] = job.threads
    if job.dtype:
        opts["dtype"] = job.dtype
    if job.engine_args:
        opts.update(job.engine_args)
    engine = load_engine(info, job.engine, **opts)
    engine.progress = False  # the scoring bar is the one live display
    return engine


def run_score(job: ScoreJob) -> dict[str, Any]:
    if not 0 <= job.shard_index < job.num_shards:
        raise DataError(f"--shard-index {job.shard_index} must be in 0..{job.num_shards - 1} (--num-shards {job.num_shards})")
    io.input_kind(job.input)
    if job.task == "batch" and io.output_kind(job.output) != "jsonl":
        raise DataError(f"--output {job.output}: batch results are JSONL (the OpenAI Batch API format)")
    io.output_kind(job.output)
    info = _check_model(job)
    if job.task == "factuality":
        make_task(job, None)  # a missing factuality module is reported before anything is written
    total = io.count_rows(job.input)  # reads the input once: an unreadable file fails here, before anything is written
    fp = job.fingerprint()
    if job.fresh:
        shutil.rmtree(job.parts, ignore_errors=True)
    elif not job.parts.exists() and job.output.is_file() and job.summary_path.is_file():
        summary = json.loads(job.summary_path.read_text(encoding="utf-8"))
        if summary.get("job") == fp:
            con.log(f"score: {job.output} is already complete for these inputs (pass --fresh to redo it)")
            return summary
    job.parts.mkdir(parents=True, exist_ok=True)
    if (job.parts / JOB).is_file():
        old = json.loads((job.parts / JOB).read_text(encoding="utf-8"))
        if old != fp:
            changed = sorted(k for k in fp if fp[k] != old.get(k))
            raise DataError(f"{job.parts} holds an unfinished run with different settings ({', '.join(changed)} changed); rerun with the same settings to resume, or pass --fresh to start over")
    else:
        atomic_write_json(job.parts / JOB, fp)
    done = _read_ledger(job.parts / LEDGER)
    if done:
        con.log(f"score: resuming, {len(done)} chunks ({sum(e['rows'] for e in done.values())} rows) already done in {job.parts}")

    if total is not None and job.num_shards > 1:
        total = len(range(job.shard_index, total, job.num_shards))
    start = time.time()
    scored_now = 0
    with _progress(total) as bar:
        progress = bar.add_task(f"score {job.task}", total=total)

        def todo() -> Iterator[tuple[int, list[tuple[int, RawDoc]]]]:
            for c, rows in _chunks(io.read_input(job.input), job.chunk_rows, job.num_shards, job.shard_index):
                if c in done:
                    bar.advance(progress, len(rows))
                else:
                    yield c, rows

        def write(c: int, n: int, results: list[dict | None], rejects: list[dict]) -> None:
            nonlocal scored_now
            _append_ledger(job.parts / LEDGER, _write_chunk(job, c, n, results, rejects))
            scored_now += n
            bar.advance(progress, n)

        if job.ray:
            from nlpforge.score import ray_score

            ray_score.run(job, functools.partial(chunk_scorer, job, info), todo(), write)
        else:
            _score_here(job, info, todo(), write)
    seconds = time.time() - start
    return _finish(job, fp, _read_ledger(job.parts / LEDGER), scored_now, seconds)


def _score_here(job: ScoreJob, info: BundleInfo | None, chunks: Iterator[tuple[int, list[tuple[int, RawDoc]]]], write: Callable[..., None]) -> None:
    task: ScoreTask | None = None
    engine: Engine | None = None
    try:
        for c, rows in chunks:
            if task is None:  # the model loads only when there is a chunk left to score
                engine = _open_engine(job, info) if info is not None else None
                task = make_task(job, engine)
            write(c, len(rows), *score_rows(task, rows))
    finally:
        if engine is not None:
            engine.close()


def chunk_scorer(job: ScoreJob, info: BundleInfo | None) -> Callable[[list[tuple[int, RawDoc]]], tuple[list[dict | None], list[dict]]]:
    """Load the engine once; the function that scores one chunk's rows with it (a Ray replica's)."""
    task = make_task(job, _open_engine(job, info) if info is not None else None)
    return functools.partial(score_rows, task)


def score_rows(task: ScoreTask, rows: list[tuple[int, RawDoc]]) -> tuple[list[dict | None], list[dict]]:
    """One chunk's output rows (None for a row that went to the rejects) and its rejects."""
    results: list[dict | None] = [None] * len(rows)
    rejects: list[dict] = []
    items, where = [], []
    for k, (i, doc) in enumerate(rows):
        try:
            if doc.record is None:
                reason, _, detail = (doc.error or "invalid_row: unreadable").partition(": ")
                raise RowError(reason, detail)
            items.append(task.prepare(doc.record))
            where.append(k)
        except RowError as err:
            inline = task.error_output(doc, err)
            if inline is not None:
                results[k] = inline
            else:
                rejects.append({"row": i, "source": doc.source, "reason": err.reason, "detail": err.detail, "record": doc.record if doc.record is not None else doc.raw.rstrip("\n")})
    if items:
        records = [rows[k][1].record or {} for k in where]
        for k, record, fields in zip(where, records, task.run(items, records)):
            results[k] = task.output(record, fields)
    return results, rejects


def _write_chunk(job: ScoreJob, c: int, n: int, results: list[dict | None], rejects: list[dict]) -> dict:
    with atomic_file(job.parts / f"part-{c:06d}.jsonl") as f:
        for r in results:
            if r is not None:
                f.write(dumps(r) + "\n")
    with atomic_file(job.parts / f"rejects-{c:06d}.jsonl") as f:
        for r in rejects:
            f.write(dumps(r) + "\n")
    return {"chunk": c, "rows": n, "written": sum(r is not None for r in results), "rejected": len(rejects), "at": now()}


def _finish(job: ScoreJob, fp: dict, done: dict[int, dict], scored_now: int, seconds: float) -> dict[str, Any]:
    chunks = sorted(done)
    parts = [job.parts / f"part-{c:06d}.jsonl" for c in chunks]
    reject_parts = [job.parts / f"rejects-{c:06d}.jsonl" for c in chunks]
    summary = Summary(job.task)
    for p in parts:
        for row in iter_jsonl(p):
            summary.add(row)
    for p in reject_parts:
        for row in iter_jsonl(p):
            summary.rejected[row["reason"]] += 1
    io.write_output(job.output, parts)
    with atomic_file(job.rejects_path, "wb") as out:
        for p in reject_parts:
            out.write(p.read_bytes())
    result = {
        **summary.as_dict(),
        "output": str(job.output),
        "rejects": str(job.rejects_path),
        "rows_this_run": scored_now,
        "seconds_this_run": round(seconds, 2),
        "rows_per_s": round(scored_now / seconds, 2) if seconds > 0 else None,
        "finished": now(),
        "job": fp,
    }
    atomic_write_json(job.summary_path, result)
    shutil.rmtree(job.parts, ignore_errors=True)
    return result
