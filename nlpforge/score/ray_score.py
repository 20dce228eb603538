"""``nlpforge score --ray``: the chunks of the resumable loop (:mod:`nlpforge.score.runner`) scored
on a pool of Ray actors, each loading the model once.

The driver reads the input, skips the chunks its ledger holds, and keeps at most two chunks per
actor in flight; each finished chunk comes back to the driver, which writes its part and appends
it to the ledger as the local loop does. So a killed driver resumes the same way (on Ray or
not: the engine is not part of the job's fingerprint), every row exactly once, and the output
folder needs no shared filesystem; the bundle must be readable at the same path on every node.

Ray Core actors rather than Ray Data's ``map_batches``: the ledger's unit is a chunk of
consecutive input rows that the driver reads in a stream, and a Ray Dataset would have to hold
the rows (or re-read the file per chunk) before the first chunk could start. Ray Data's LLM
processor would bring its own vLLM engine setup, not the bundle's stop ids, chat template and
row rejects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from nlpforge import cluster
from nlpforge.console import log
from nlpforge.corpus.readers import RawDoc
from nlpforge.errors import StageError


class Scorer:
    """One replica: ``build()`` (run once, in the actor) loads the engine and returns the function
    that scores one chunk's rows."""

    def __init__(self, build: Callable[[], Callable[[list], tuple[list, list]]]):
        self.score_rows = build()

    def score(self, c: int, rows: list[tuple[int, RawDoc]]) -> tuple[int, int, list[dict | None], list[dict]]:
        return (c, len(rows), *self.score_rows(rows))


def _per_replica(job: Any) -> tuple[float, float]:
    """CPUs and GPUs one replica asks Ray for."""
    gpus = float(job.engine_args.get("tensor_parallel_size", 1) * job.engine_args.get("pipeline_parallel_size", 1)) if job.engine in ("vllm", "auto") else 0.0
    return float(job.threads or 1), gpus


def run(job: Any, build: Callable[[], Callable[[list], tuple[list, list]]], chunks: Iterator[tuple[int, list[tuple[int, RawDoc]]]], write: Callable[..., None]) -> None:
    """Score ``chunks`` on replicas made by ``build`` (a picklable function: it runs in each actor)."""
    ray = cluster.connect(job.ray_address, "score --ray")
    first = next(chunks, None)
    if first is None:
        return  # every chunk is in the ledger: no model to load
    cpus, gpus = _per_replica(job)
    res = ray.cluster_resources()
    if not res.get("GPU"):
        gpus = 0.0
    fits = int(res.get("GPU", 0) // gpus) if gpus else int(res.get("CPU", 1) // cpus)
    replicas = job.replicas or max(1, fits)
    if replicas > max(fits, 1):
        each = f"{cpus:g} CPU(s)" + (f" and {gpus:g} GPU(s)" if gpus else "")
        raise StageError(f"score --replicas {replicas}: the cluster ({res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs) holds {fits} replica(s) of {each} each")
    log(f"score: {replicas} Ray replica(s), {cpus:g} CPU(s){f' and {gpus:g} GPU(s)' if gpus else ''} each")
    actor = ray.remote(num_cpus=cpus, num_gpus=gpus)(Scorer)
    pool = ray.util.ActorPool([actor.remote(build) for _ in range(replicas)])

    def collect() -> None:
        try:
            write(*pool.get_next_unordered())
        except ray.exceptions.RayActorError as exc:
            raise StageError(f"score --ray: a replica died ({exc}); the chunks already written are kept: rerun the same command to resume") from None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            raise StageError(f"score --ray: a replica failed: {type(cause).__name__}: {cause}; rerun the same command to resume") from None

    in_flight = 0
    for c, rows in itertools.chain([first], chunks):
        while in_flight >= 2 * replicas:  # bounded: the driver never holds more than this many chunks
            collect()
            in_flight -= 1
        pool.submit(lambda a, v: a.score.remote(*v), (c, rows))
        in_flight += 1
    while in_flight:
        collect()
        in_flight -= 1

