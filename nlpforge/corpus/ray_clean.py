"""The clean stage on Ray Data (``clean.engine: ray``, ``nlpforge clean --ray``): the same outputs
as the local stage, record for record, with the work spread over a cluster.

- Each input file is read by one Ray task with nlpforge's own readers (the same record ids,
  the same rejects for unparsable lines).
- :class:`~nlpforge.corpus.processor.DocProcessor` runs under ``map_batches`` on an actor pool of
  ``clean.n_process`` actors, one spaCy pipeline each; the actors also hash each kept record for
  exact dedup and compute its MinHash signature and LSH band keys.
- Boilerplate lines are counted with a ``groupby`` over every document's lines.
- Exact dedup is a ``groupby`` on the content hash: in a group, the record that comes first in the
  input is kept.
- Near dedup is a shuffle on LSH band keys (datatrove's and NeMo Curator's shape): the bands that
  more than one record holds give candidate groups, joined into connected components on the
  driver; in each component the local stage's greedy rule runs in input order (a record is
  dropped when it shares a band with a record kept before it), so the answers are the local
  stage's, not a transitive closure of them. (When a record shares bands with several kept
  records, the one its reject names, and so the Jaccard shown, may differ from the local
  stage's pick: MinHashLSH returns its candidates as a set.)
- The driver then streams the processed records back in input order and writes ``corpus``,
  ``rejects`` and ``report`` with the local stage's code.

- C4's sentence dedup (``clean.sentence_dedup``) is a ``groupby`` on the key of each run of
  sentences: a run is cut where an earlier occurrence exists in (input order, place in the
  document), which is what the local single pass cuts. Near dedup then reads each record's
  text with those runs cut out (a second ``map_batches``), as the local stage does.

What stays on the driver, and so bounds the corpus one driver can finish: the write (one
ordered stream, so the files equal the local stage's), the dedup answers (dicts over the
duplicates and repeated runs only) and the edges of the near-duplicate candidates.
Inputs are local paths (on a shared filesystem for a cluster) or URIs (``s3://bucket/prefix``,
:mod:`nlpforge.corpus.remote`) that each Ray task fetches for itself.
"""

from __future__ import annotations

import logging
import pickle
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from nlpforge import cluster
from nlpforge.console import log
from nlpforge.corpus import dedup, normalize, readers, remote
from nlpforge.corpus.processor import DocProcessor, Processed, Result
from nlpforge.data.formats import message_fields
from nlpforge.errors import DataError
from nlpforge.recipe import CleanConfig, DataConfig

ORDER_BITS = 40  # a record's place in the input: file index << 40 | record index in the file


def check_settings(cfg: CleanConfig) -> list[str]:
    """What ``nlpforge check`` says about the clean engine keys."""
    import importlib.util

    if cfg.engine != "ray":
        return ["clean.ray_address is set but clean.engine is local: set clean.engine: ray (or drop the address)"] if cfg.ray_address else []
    if importlib.util.find_spec("ray") is None:
        return ["clean.engine: ray needs Ray Data, which is not installed: pip install 'nlpforge[ray]'"]
    return []


def connect(address: str | None) -> Any:
    ray = cluster.connect(address, "clean.engine: ray")
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # records come back in input order: the files equal the local stage's
    ctx.enable_progress_bars = False  # the stage shows its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # one INFO line per dataset executed otherwise
    return ray


def _read_file(row: dict[str, Any]) -> list[dict[str, Any]]:
    base = int(row["index"]) << ORDER_BITS
    return [{"order": base | i, "doc": pickle.dumps(doc)} for i, doc in enumerate(_docs(row["path"], row["text_field"], bool(row["alone"])))]


def _docs(path: str, text_field: str, alone: bool) -> list[readers.RawDoc]:
    if not remote.is_uri(path):
        return list(readers.read_file(Path(path), text_field, alone=alone))
    with remote.fetched(path) as local:  # parsed as a local file, named by its URI
        try:
            return [replace(d, source=path + d.source[len(str(local)):]) for d in readers.read_file(local, text_field, alone=alone)]
        except DataError as exc:
            raise DataError(str(exc).replace(str(local), path)) from None


def _files(inputs: list[str]) -> list[str]:
    """Local files (resolved) and URIs, in the order the recipe names them (folders and prefixes expanded)."""
    out: list[str] = []
    for name in inputs:
        out += remote.expand(name, readers.SUFFIXES) if remote.is_uri(name) else [str(p.resolve()) for p in readers.expand([name])]
    return out


class _Process:
    """One actor: a DocProcessor (one spaCy pipeline) plus the per-record half of dedup."""

    def __init__(self, data: DataConfig, cfg: CleanConfig, boilerplate: set[str], sentence_runs: int):
        self.proc = DocProcessor(data, cfg, boilerplate)
        self.fields = message_fields(data.format, data.messages_field)
        self.exact = cfg.dedup == "exact"
        self.runs = sentence_runs
        self.near = cfg.near_dedup if cfg.near_dedup.enabled and not sentence_runs else None  # after sentence dedup: on the cut text, later

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        results: list[Result] = self.proc([pickle.loads(b) for b in batch["doc"]])
        keys, runs, near = [], [], []
        for r in results:
            ok = r.record is not None
            keys.append(dedup.exact_key(r.record, r.text, self.fields) if ok and self.exact else "")  # type: ignore[arg-type]
            runs.append(" ".join(k.hex() for k in dedup.span_keys(r.text, r.sentence_spans, self.runs)) if ok and self.runs else "")
            near.append(_near_keys(r.text, self.near) if ok and self.near is not None else ("", b""))
        return {"order": [int(x) for x in batch["order"]], "source": [r.source for r in results], "result": [pickle.dumps(r) for r in results],
                "key": keys, "runs": runs, "bands": [b for b, _ in near], "hashes": [h for _, h in near]}


def _near_keys(text: str, near: Any) -> tuple[str, bytes]:
    """LSH band keys (a string, not a list: one Arrow type in every block) and MinHash values."""
    m = dedup.signature(text, near.ngram, near.bands * near.rows)
    return " ".join(dedup.band_keys(m, near.bands, near.rows)), m.hashvalues.tobytes()


def _span_answers(done: Any, exact: dict[str, str], parts: int) -> dict[str, list[int]]:
    """source -> the runs of sentences (by index) whose text occurred earlier in the corpus: a
    groupby on the run's key; within a key the first occurrence in (input order, place in the
    document) is kept, which is what the local stage's single pass keeps."""
    from ray.data.aggregate import Count

    cand = done.select_columns(["order", "source", "runs"]).filter(lambda r: r["runs"] != "" and r["source"] not in exact)
    occ = cand.flat_map(lambda r: [{"run": k, "order": r["order"], "i": i, "source": r["source"]} for i, k in enumerate(r["runs"].split())])
    repeated = {r["run"] for r in occ.groupby("run", num_partitions=parts).aggregate(Count()).filter(lambda r: r["count()"] > 1).take_all()}
    if not repeated:
        return {}
    groups: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for r in occ.filter(lambda r: r["run"] in repeated).take_all():
        groups[r["run"]].append((r["order"], r["i"], r["source"]))
    answers: dict[str, list[int]] = defaultdict(list)
    for members in groups.values():
        members.sort()
        for _, i, src in members[1:]:
            answers[src].append(i)
    return dict(answers)


def _cut_near_keys(done: Any, exact: dict[str, str], spans: dedup.DecidedSpans, near: Any) -> Any:
    """The near-dedup keys of each record as the local stage sees it after sentence dedup: its text
    with the repeated runs cut out (none for a record that lost every sentence)."""

    def keys(batch: dict[str, Any]) -> dict[str, Any]:
        bands, hashes = [], []
        for source, blob in zip(batch["source"], batch["result"]):
            r: Result = pickle.loads(blob)
            text, removed = spans(source, r.text, r.sentence_spans) if r.record is not None and source not in exact else ("", 0)
            b, h = _near_keys(text, near) if text else ("", b"")
            bands.append(b)
            hashes.append(h)
        return {**batch, "bands": bands, "hashes": hashes}

    return done.map_batches(keys, batch_format="numpy").materialize()


def _boilerplate(docs: Any, data: DataConfig, cfg: CleanConfig, parts: int) -> set[str]:
    """:func:`~nlpforge.corpus.normalize.boilerplate_lines` as a groupby over every document's distinct lines."""
    if not (cfg.boilerplate.enabled and data.format == "text"):
        return set()

    def lines(row: dict[str, Any]) -> list[dict[str, Any]]:
        value = (pickle.loads(row["doc"]).record or {}).get(data.text_field)
        if not isinstance(value, str):
            return []
        found = {line for line in normalize.normalize_text(value, cfg.normalize, cfg.fix_mojibake).split("\n") if line.strip()}
        return [{"doc": 1, "line": ""}] + [{"doc": 0, "line": line} for line in found]  # "" (never a line: blank ones are skipped) counts documents

    counts = {r["line"]: r["count()"] for r in docs.flat_map(lines).groupby("line", num_partitions=parts).count().take_all()}
    floor = max(cfg.boilerplate.min_docs, cfg.boilerplate.min_fraction * counts.pop("", 0))
    return {line for line, n in counts.items() if n >= floor}


def _exact_answers(done: Any, parts: int) -> dict[str, str]:
    """source -> the source of the first record (in input order) with the same content."""
    from ray.data.aggregate import Count

    keyed = done.select_columns(["order", "source", "key"]).filter(lambda r: r["key"] != "")
    repeated = {r["key"] for r in keyed.groupby("key", num_partitions=parts).aggregate(Count()).filter(lambda r: r["count()"] > 1).take_all()}
    if not repeated:
        return {}
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in keyed.filter(lambda r: r["key"] in repeated).take_all():
        groups[r["key"]].append((r["order"], r["source"]))
    answers = {}
    for members in groups.values():
        members.sort()
        answers.update({src: members[0][1] for _, src in members[1:]})
    return answers


def _near_answers(done: Any, exact: dict[str, str], parts: int) -> dict[str, tuple[str, float]]:
    """source -> (the kept record it nearly duplicates, estimated Jaccard), as the local greedy pass decides."""
    import numpy as np
    from ray.data.aggregate import Count

    cand = done.select_columns(["order", "source", "bands", "hashes"]).filter(lambda r: r["bands"] != "" and r["source"] not in exact)
    pairs = cand.flat_map(lambda r: [{"band": b, "order": r["order"]} for b in r["bands"].split()])
    shared = {r["band"] for r in pairs.groupby("band", num_partitions=parts).aggregate(Count()).filter(lambda r: r["count()"] > 1).take_all()}
    if not shared:
        return {}
    # connected components of the records that share a band (union-find over the duplicates only)
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_in_band: dict[str, int] = {}
    for r in pairs.filter(lambda r: r["band"] in shared).take_all():
        root = first_in_band.setdefault(r["band"], r["order"])
        parent[find(r["order"])] = find(root)
    members = set(parent)
    components: dict[int, list[dict]] = defaultdict(list)
    for r in cand.filter(lambda r: r["order"] in members).take_all():
        components[find(r["order"])].append(r)
    answers: dict[str, tuple[str, float]] = {}
    for docs in components.values():  # the local stage's rule, in input order, within each component
        kept: dict[str, dict] = {}
        for d in sorted(docs, key=lambda d: d["order"]):
            bands = d["bands"].split()
            hit = next((kept[b] for b in bands if b in kept), None)
            if hit is None:
                for b in bands:
                    kept.setdefault(b, d)
                continue
            a, b = np.frombuffer(d["hashes"], dtype=np.uint64), np.frombuffer(hit["hashes"], dtype=np.uint64)
            answers[d["source"]] = (hit["source"], float(np.count_nonzero(a == b)) / len(a))
    return answers


def processed(data: DataConfig, cfg: CleanConfig) -> Processed:
    """Run the per-document steps and the dedup indexes on Ray; the driver writes from the result."""
    files = _files(data.all_inputs)
    local = not any(map(remote.is_uri, data.all_inputs))
    total = readers.count(data.all_inputs) if local else None  # an unreadable single local input fails here, before the cluster starts
    ray = connect(cfg.ray_address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    parts = max(1, min(200, 2 * cpus))  # shuffle partitions (Ray's default, 200, is slow for a small cluster)
    if cfg.n_process > cpus:  # Ray would wait for CPUs that never come
        raise DataError(f"clean.n_process={cfg.n_process}: the Ray cluster has {cpus} CPU(s) and each actor takes one; set clean.n_process to at most {cpus}")
    log(f"clean: Ray Data on {cpus} CPUs, {cfg.n_process} actor(s), {len(files)} file(s)")
    inputs = [{"index": i, "path": p, "text_field": data.text_field, "alone": len(files) == 1} for i, p in enumerate(files)]
    docs = ray.data.from_items(inputs, override_num_blocks=len(inputs)).flat_map(_read_file).materialize()
    runs = cfg.sentence_dedup if data.format == "text" else 0
    done = docs.map_batches(
        _Process, fn_constructor_args=(data, cfg, _boilerplate(docs, data, cfg, parts), runs), batch_size=cfg.batch_size, compute=ray.data.ActorPoolStrategy(size=cfg.n_process), num_cpus=1,
    ).materialize()
    exact = _exact_answers(done, parts) if cfg.dedup == "exact" else {}
    spans = dedup.DecidedSpans(runs, _span_answers(done, exact, parts)) if runs else None
    near: Any = None
    if cfg.near_dedup.enabled:
        if spans is not None:
            done = _cut_near_keys(done, exact, spans, cfg.near_dedup)
        near = dedup.Decided(_near_answers(done, exact, parts))
    n = done.count()

    def results() -> Iterator[Result]:
        for batch in done.select_columns(["result"]).iter_batches(batch_size=cfg.batch_size, batch_format="numpy"):
            yield from (pickle.loads(b) for b in batch["result"])

    return Processed(results(), lambda: n, total, dedup.Decided(exact) if cfg.dedup == "exact" else None, near, spans)

