"""The stages of a recipe, in order, with the stage cache.

A stage is skipped when its fingerprint (the recipe sections it reads, the hashes of its
input artifacts, the nlpforge version) equals the one recorded when it last completed and
its outputs are still there. A stage that did not complete with an unchanged fingerprint is
resumed (train restarts from its last checkpoint); a changed fingerprint starts it afresh.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlpforge import __version__
from nlpforge.artifacts import Manifest, RecipeRecord
from nlpforge.console import log, set_log_file
from nlpforge.corpus import remote
from nlpforge.errors import StageError
from nlpforge.evals.gates import assert_gates_passed
from nlpforge.models import resolve_model_path
from nlpforge.recipe import Recipe, sha256_text
from nlpforge.runs import RunDir, hash_path, now, package_versions
from nlpforge.tasks import task_for
from nlpforge.tracking import Tracker


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]
    inputs: Callable[[Recipe, RunDir], list[Path | str]]  # str: a URI
    outputs: Callable[[Recipe], tuple[str, ...]]  # paths relative to the run dir (the task decides some)
    run: Callable[[Recipe, RunDir, Manifest], dict[str, Any]]


def _model_dir(recipe: Recipe) -> list[Path]:
    return [Path(resolve_model_path(recipe.model.path))]


def _clean(recipe: Recipe, run: RunDir, manifest: Manifest) -> dict:
    from nlpforge.corpus.clean import run_clean, stage_summary

    return stage_summary(run_clean(recipe.data, recipe.clean, run.stage_dir("clean")))


def _prepare(recipe: Recipe, run: RunDir, manifest: Manifest) -> dict:
    return task_for(recipe).prepare(recipe, run.stage_dir("clean") / "corpus.jsonl", run.stage_dir("prepare"))


def _train(recipe: Recipe, run: RunDir, manifest: Manifest) -> dict:
    return task_for(recipe).train(recipe, run.stage_dir("prepare"), run.stage_dir("train"))


def _eval(recipe: Recipe, run: RunDir, manifest: Manifest) -> dict:
    return task_for(recipe).evaluate(recipe, run.stage_dir("prepare"), run.stage_dir("train") / "adapter", run.stage_dir("eval"))


def _export(recipe: Recipe, run: RunDir, manifest: Manifest) -> dict:
    assert_gates_passed(run.stage_dir("eval") / "results.json")
    return task_for(recipe).export(recipe, run.stage_dir("prepare"), run.stage_dir("train") / "adapter", run.stage_dir("eval"), manifest, run.stage_dir("export"))


STAGES: list[Stage] = [
    Stage("clean", ("data", "clean"), lambda r, run: [p if remote.is_uri(p) else Path(p) for p in r.data.all_inputs],
          lambda r: ("clean/corpus.jsonl", "clean/rejects.jsonl", "clean/report.json"), _clean),
    Stage("prepare", ("data", "model", "seed", "train.task"), lambda r, run: [run.root / "clean/corpus.jsonl", *_model_dir(r)], lambda r: task_for(r).prepared_files(r), _prepare),
    Stage("train", ("model", "peft", "train", "seed"), lambda r, run: [run.root / "prepare", *([run.root / "clean/corpus.jsonl"] if r.data.streaming else []), *_model_dir(r)],
          lambda r: ("train/adapter", "train/summary.json"), _train),
    Stage(
        "eval",
        ("model", "eval", "train.threshold"),
        lambda r, run: [run.root / "prepare/eval.jsonl", run.root / "train/adapter", *_model_dir(r), *[Path(f) for f in r.eval.factuality.context_files],
                          *([Path(r.eval.factuality.checker)] if r.eval.factuality.checker else [])],
        lambda r: task_for(r).eval_outputs,
        _eval,
    ),
    Stage(
        "export",
        ("name", "model", "export", "serve", "train.threshold"),
        lambda r, run: [run.root / "prepare/eval.jsonl", run.root / "prepare/meta.json", run.root / "train/adapter", run.root / "eval/results.json", *_model_dir(r)],
        lambda r: ("export",),
        _export,
    ),
]
STAGE_NAMES = [s.name for s in STAGES]


def parse_stages(spec: str | None) -> list[str]:
    if not spec:
        return STAGE_NAMES
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise StageError(f"--stages: unknown stage(s) {unknown}; valid: {','.join(STAGE_NAMES)}")
    return [n for n in STAGE_NAMES if n in names]


def _input_hashes(paths: list[Path | str], run: RunDir, stage: str, recipe: Recipe) -> dict[str, str]:
    out = {}
    for p in paths:
        if isinstance(p, str):  # a URI (clean.engine: ray): keyed on its listing
            out[p] = remote.fingerprint(p)
            continue
        is_model = p in _model_dir(recipe)
        if not p.exists() and not is_model:
            producer = next((s.name for s in STAGES if any(str(p).endswith(o) for o in s.outputs(recipe))), None)
            hint = f"; run stage '{producer}' first (nlpforge run RECIPE --stages {producer})" if producer else ""
            raise StageError(f"{stage}: input {p} is missing{hint}")
        key = str(p.relative_to(run.root)) if p.is_relative_to(run.root) else str(p)
        out[key] = hash_path(p)
    return out


@functools.cache
def code_hash() -> str:
    """Hash of nlpforge's own source: a changed stage implementation invalidates the cache
    even within one version (editable installs, development)."""
    root = Path(__file__).parent
    return sha256_text("".join(hash_path(p) for p in sorted(root.rglob("*.py"))))


def _fingerprint(stage: Stage, recipe: Recipe, run: RunDir) -> tuple[str, dict[str, str]]:
    inputs = _input_hashes(stage.inputs(recipe, run), run, stage.name, recipe)
    payload = {"v": __version__, "code": code_hash(), "sections": recipe.section_hash(*stage.sections), "inputs": inputs}
    return sha256_text(json.dumps(payload, sort_keys=True)), inputs


def _refuse_stale_upstream(recipe: Recipe, run: RunDir, selected: list[Stage]) -> None:
    """With --stages, an earlier stage left out must be up to date, or the selected ones would
    read artifacts made from another recipe, model or input (a silent lineage break)."""
    if not selected:
        return
    last = STAGE_NAMES.index(selected[-1].name)
    for stage in STAGES[:last]:
        if stage in selected:
            continue
        entry = run.stage_entry(stage.name)
        if entry.status is None:
            continue  # never ran: the selected stage's missing-input error says what to run
        current = _fingerprint(stage, recipe, run)[0] if entry.status == "completed" else None
        if current != entry.fingerprint:
            raise StageError(
                f"stage '{stage.name}' is out of date (its recipe sections, inputs or status changed since it last completed); "
                f"add it to --stages or run without --stages"
            )


def run_pipeline(recipe: Recipe, recipe_path: Path, run: RunDir, stages: list[str], fresh: bool = False) -> list[dict[str, Any]]:
    manifest = run.load_manifest()
    manifest.nlpforge_version = __version__
    manifest.recipe = RecipeRecord(path=str(recipe_path), sha256=recipe.digest(), resolved=recipe.model_dump(mode="json"))
    manifest.seed = recipe.seed
    manifest.packages = package_versions()
    run.root.mkdir(parents=True, exist_ok=True)
    run.save_manifest(manifest)
    set_log_file(run.root / "run.log")
    log(f"run {recipe.name}: stages {','.join(stages)} in {run.root}")

    selected = [s for s in STAGES if s.name in stages]
    _refuse_stale_upstream(recipe, run, selected)
    tracker = Tracker(recipe, recipe_path, run)
    if tracker.run_id:
        manifest = run.load_manifest()
        manifest.tracking["mlflow_run_id"] = tracker.run_id
        run.save_manifest(manifest)
    try:
        report = _run_stages(recipe, run, selected, fresh, tracker)
    except BaseException as exc:
        tracker.finish(exc)
        raise
    tracker.finish()
    return report


def _run_stages(recipe: Recipe, run: RunDir, selected: list[Stage], fresh: bool, tracker: Tracker) -> list[dict[str, Any]]:
    report = []
    for stage in selected:
        fingerprint, inputs = _fingerprint(stage, recipe, run)
        if stage.name == "clean":
            manifest = run.load_manifest()
            manifest.inputs = inputs
            run.save_manifest(manifest)
        entry = run.stage_entry(stage.name)
        outputs_there = all((run.root / o).exists() for o in stage.outputs(recipe))
        if not fresh and entry.status == "completed" and entry.fingerprint == fingerprint and outputs_there:
            log(f"[dim]{stage.name}: unchanged since {entry.finished}, skipped[/dim]")
            report.append({"stage": stage.name, "status": "cached", "seconds": entry.seconds, "summary": entry.summary})
            tracker.stage(stage.name, "cached", entry.seconds, entry.summary)
            continue
        if fresh or entry.fingerprint != fingerprint:
            # inputs changed: nothing of an earlier attempt (checkpoints included) may be reused
            shutil.rmtree(run.stage_dir(stage.name), ignore_errors=True)
        log(f"[bold cyan]{stage.name}[/bold cyan]: running")
        start = time.time()
        run.update_stage(stage.name, status="running", fingerprint=fingerprint, started=now(), inputs=inputs)
        try:
            summary = stage.run(recipe, run, run.load_manifest())
        except BaseException as exc:
            run.update_stage(stage.name, status="failed", error=str(exc)[:2000], finished=now())
            log(f"{stage.name}: failed: {exc}")
            raise
        seconds = round(time.time() - start, 1)
        outputs = {o: hash_path(run.root / o) for o in stage.outputs(recipe)}
        run.update_stage(stage.name, status="completed", finished=now(), seconds=seconds, outputs=outputs, summary=summary, error=None)
        log(f"{stage.name}: completed in {seconds}s: {json.dumps(summary)}")
        report.append({"stage": stage.name, "status": "ran", "seconds": seconds, "summary": summary})
        tracker.stage(stage.name, "ran", seconds, summary)
    return report
