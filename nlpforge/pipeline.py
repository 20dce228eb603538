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
from nlpforge.console import log, set_log_file
from nlpforge.errors import StageError
from nlpforge.recipe import Recipe, sha256_text
from nlpforge.runs import RunDir, hash_path, now, package_versions


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]
    inputs: Callable[[Recipe, RunDir], list[Path]]
    outputs: tuple[str, ...] | Callable[[Recipe], tuple[str, ...]]  # paths relative to the run dir
    run: Callable[[Recipe, RunDir, dict], dict[str, Any]]

    def output_paths(self, recipe: Recipe) -> tuple[str, ...]:
        return self.outputs(recipe) if callable(self.outputs) else self.outputs


def _model_dir(recipe: Recipe) -> list[Path]:
    from nlpforge.models import resolve_model_path

    return [Path(resolve_model_path(recipe.model.path))]


def _clean(recipe: Recipe, run: RunDir, manifest: dict) -> dict:
    from nlpforge.corpus.clean import run_clean, stage_summary

    return stage_summary(run_clean(recipe.data, recipe.clean, run.stage_dir("clean")))


def _prepare(recipe: Recipe, run: RunDir, manifest: dict) -> dict:
    from nlpforge.data.prepare import run_prepare

    return run_prepare(recipe, run.stage_dir("clean") / "corpus.jsonl", run.stage_dir("prepare"))


def _train(recipe: Recipe, run: RunDir, manifest: dict) -> dict:
    from nlpforge.train.run import run_train

    return run_train(recipe, run.stage_dir("prepare"), run.stage_dir("train"))


def _eval(recipe: Recipe, run: RunDir, manifest: dict) -> dict:
    args = (recipe, run.stage_dir("prepare"), run.stage_dir("train") / "adapter", run.stage_dir("eval"))
    if recipe.train.task == "classification":
        from nlpforge.evals.classify import run_eval as run_classify_eval

        return run_classify_eval(*args)
    from nlpforge.evals.chat import run_eval

    return run_eval(*args)


def _export(recipe: Recipe, run: RunDir, manifest: dict) -> dict:
    from nlpforge.evals.gates import assert_gates_passed

    assert_gates_passed(run.stage_dir("eval") / "results.json")
    args = (recipe, run.stage_dir("prepare"), run.stage_dir("train") / "adapter", run.stage_dir("eval"), manifest, run.stage_dir("export"))
    if recipe.train.task == "classification":
        from nlpforge.export.classifier import run_export as export_classifier

        return export_classifier(*args)
    from nlpforge.export.bundle import run_export

    return run_export(*args)


def _eval_outputs(recipe: Recipe) -> tuple[str, ...]:
    if recipe.train.task == "classification":
        return ("eval/results.json", "eval/predictions.jsonl")
    return ("eval/results.json", "eval/samples.jsonl")


STAGES: list[Stage] = [
    Stage("clean", ("data", "clean"), lambda r, run: [Path(p) for p in r.data.inputs], ("clean/corpus.jsonl", "clean/rejects.jsonl", "clean/report.json"), _clean),
    Stage(
        "prepare",
        ("data", "model", "seed", "train.task"),
        lambda r, run: [run.root / "clean/corpus.jsonl", *_model_dir(r)],
        ("prepare/train.jsonl", "prepare/eval.jsonl", "prepare/meta.json"),
        _prepare,
    ),
    Stage(
        "train",
        ("model", "peft", "train", "seed"),
        lambda r, run: [run.root / "prepare", *_model_dir(r)],
        ("train/adapter", "train/summary.json"),
        _train,
    ),
    Stage(
        "eval",
        ("model", "eval", "train.threshold"),
        lambda r, run: [run.root / "prepare/eval.jsonl", run.root / "train/adapter", *_model_dir(r)],
        _eval_outputs,
        _eval,
    ),
    Stage(
        "export",
        ("name", "model", "export", "serve", "train.threshold"),
        lambda r, run: [run.root / "prepare/eval.jsonl", run.root / "prepare/meta.json", run.root / "train/adapter", run.root / "eval/results.json", *_model_dir(r)],
        ("export",),
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


def _input_hashes(paths: list[Path], run: RunDir, stage: str, recipe: Recipe) -> dict[str, str]:
    out = {}
    for p in paths:
        is_model = p in _model_dir(recipe)
        if not p.exists() and not is_model:
            producer = next((s.name for s in STAGES if any(str(p).endswith(o) for o in s.output_paths(recipe))), None)
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
        if not entry:
            continue  # never ran: the selected stage's missing-input error says what to run
        current = _fingerprint(stage, recipe, run)[0] if entry.get("status") == "completed" else None
        if current != entry.get("fingerprint"):
            raise StageError(
                f"stage '{stage.name}' is out of date (its recipe sections, inputs or status changed since it last completed); "
                f"add it to --stages or run without --stages"
            )


def run_pipeline(recipe: Recipe, recipe_path: Path, run: RunDir, stages: list[str], fresh: bool = False) -> list[dict[str, Any]]:
    manifest = run.load_manifest()
    manifest.update(
        {
            "nlpforge_version": __version__,
            "recipe": {"path": str(recipe_path), "sha256": recipe.digest(), "resolved": recipe.model_dump(mode="json")},
            "seed": recipe.seed,
            "packages": package_versions(),
        }
    )
    run.root.mkdir(parents=True, exist_ok=True)
    run.save_manifest(manifest)
    set_log_file(run.root / "run.log")
    log(f"run {recipe.name}: stages {','.join(stages)} in {run.root}")

    selected = [s for s in STAGES if s.name in stages]
    _refuse_stale_upstream(recipe, run, selected)
    report = []
    for stage in selected:
        fingerprint, inputs = _fingerprint(stage, recipe, run)
        if stage.name == "clean":
            manifest = run.load_manifest()
            manifest["inputs"] = inputs
            run.save_manifest(manifest)
        entry = run.stage_entry(stage.name)
        outputs_there = all((run.root / o).exists() for o in stage.output_paths(recipe))
        if not fresh and entry.get("status") == "completed" and entry.get("fingerprint") == fingerprint and outputs_there:
            log(f"[dim]{stage.name}: unchanged since {entry.get('finished')}, skipped[/dim]")
            report.append({"stage": stage.name, "status": "cached", "seconds": entry.get("seconds"), "summary": entry.get("summary", {})})
            continue
        if fresh or entry.get("fingerprint") != fingerprint:
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
        outputs = {o: hash_path(run.root / o) for o in stage.output_paths(recipe)}
        run.update_stage(stage.name, status="completed", finished=now(), seconds=seconds, outputs=outputs, summary=summary, error=None)
        log(f"{stage.name}: completed in {seconds}s: {json.dumps(summary)}")
        report.append({"stage": stage.name, "status": "ran", "seconds": seconds, "summary": summary})
    return report
