"""`nlpforge improve`: the production loop in one command.

Served feedback (``nlpforge serve --feedback-dir``) becomes KTO or DPO rows; a candidate is
trained on top of the production bundle by the ordinary pipeline (clean with the recipe's PII
redaction, prepare, train, eval, export), so everything a run guarantees holds for it too:
stage cache, resume, lineage, the export contract check, MLflow tracking. The candidate is then
compared with production, side by side, on two held-out sets:

- the feedback's held-out part (completions chosen by a hash of their id, so a completion never
  moves from held-out to training as feedback grows): the eval stage, with production as the
  "base" model, so ``improve.gates`` such as ``exact_match: {max_decrease: 0}`` compare the two;
- the recipe's own held-out split (``runs/<recipe>/prepare/eval.jsonl`` or ``--heldout``), on
  the two exported bundles as the hf engine serves them.

Only when every gate passes on both is the candidate registered (lineage in its
``registry.json``) and its stage (``staging`` by default) pointed at it; ``nlpforge models
promote`` moves it on. The run's manifest records the production version and which feedback
rows went into training and which were held out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nlpforge.artifacts import BundleMeta, EvalResults, Manifest
from nlpforge.atomic import atomic_write_json
from nlpforge.console import log
from nlpforge.engines.bundle import read_bundle
from nlpforge.errors import DataError, RecipeError, StageError
from nlpforge.evals.gates import GateError, gate_message
from nlpforge.export import registry
from nlpforge.jsonl import read_jsonl, write_jsonl
from nlpforge.recipe import Recipe
from nlpforge.runs import RunDir, hash_file, hash_path, now
from nlpforge.serve.feedback import read_feedback, to_dpo, to_kto

FORMATS = {"kto": "kto", "dpo": "preference"}
SETS = {"feedback": "feedback held-out", "recipe": "recipe held-out"}


def held_out(completion_id: str, share: float) -> bool:
    """Whether a completion's feedback is held out: a hash of its id, not a shuffle, so the
    split of a completion never changes as more feedback arrives."""
    digest = hashlib.sha256(str(completion_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def feedback_sets(folders: Path | list[Path], method: str, share: float, out: Path) -> dict[str, Any]:
    """``out/train.jsonl`` and ``out/heldout.jsonl`` in the method's TRL shape, and
    ``out/ids.jsonl``: each feedback row (completion id, choice, revision) and its split.
    Several folders (one per server replica) are read as one."""
    rows = read_feedback(folders)
    folder = ", ".join(str(f) for f in ([folders] if isinstance(folders, Path) else folders))
    convert = to_kto if method == "kto" else to_dpo
    parts: dict[str, list[dict]] = {"train": [], "heldout": []}
    for r in rows:
        parts["heldout" if held_out(r.get("id", ""), share) else "train"].append(r)
    counts = {}
    for split, part in parts.items():
        examples = list(convert(part))
        if not examples:
            need = "thumbs up and down (or preferred answers)" if method == "kto" else "preferred answers, or up and down votes on the same prompt"
            raise DataError(f"{folder}: the {split} part of the feedback ({len(part)} of {len(rows)} rated completions, improve.heldout={share}) "
                            f"gives no {method} example; {method} needs {need}. Collect more feedback or change improve.method/heldout")
        write_jsonl(out / f"{split}.jsonl", examples)
        counts[split] = {"completions": len(part), "examples": len(examples)}
    write_jsonl(out / "ids.jsonl", [{"id": r.get("id"), "choice": r.get("choice", 0), "revision": r.get("revision"), "model": r.get("model"), "version": r.get("version"),
                                      "split": split} for split, part in parts.items() for r in part])
    return counts


def candidate_recipe(recipe: Recipe, production: Path, name: str, sets: Path) -> Recipe:
    """The recipe of the candidate: the production bundle as its base, the feedback as its data,
    the ``improve`` section's method and schedule, production as the model eval compares with."""
    imp = recipe.improve
    d = recipe.model_dump(mode="json")
    d["name"] = name  # the bundle keeps the served model's name
    d["model"].update(path=str(production), chat_template=None, pad_token=None)  # the bundle's tokenizer carries both, as export checked them
    d["data"] = {"inputs": [str(sets / "train.jsonl")], "eval_inputs": [str(sets / "heldout.jsonl")], "format": FORMATS[imp.method]}
    d["train"].update(task=imp.method, epochs=imp.epochs, max_steps=imp.max_steps, learning_rate=imp.learning_rate, beta=imp.beta,
                      packing=False, eval_steps=None, early_stopping=None)
    d["eval"].update(compare_base=True, gates={k: v.model_dump(exclude_none=True) for k, v in imp.gates.items()})
    d["export"]["format"] = "merged"  # the next improve starts from it, and the comparison loads it whole
    d["tune"] = None
    try:
        return Recipe.model_validate(d)
    except ValidationError as exc:
        raise RecipeError(f"improve: the candidate's recipe derived from {recipe.name!r} is invalid: {exc}") from None


def production_bundle(ref: str, root: registry.Root) -> tuple[str, str, Path]:
    """(name, version, folder) of ``NAME@STAGE`` / ``NAME@vN``; refuses what cannot be trained on."""
    m = registry.REF.match(ref)
    if m is None:
        raise RecipeError(f"--from {ref!r}: give a registry ref NAME@STAGE or NAME@VERSION (e.g. support-bot@production)")
    path = registry.resolve(ref, root)
    version = path.name
    info = read_bundle(path)
    if info.task != "chat":
        raise StageError(f"--from {ref}: a {info.task} bundle; improve tunes chat models on their users' feedback")
    if info.adapters:
        raise StageError(f"--from {ref}: an adapter bundle (export.format: adapter); improve trains on top of merged weights, so register a merged export")
    return m["name"], version, path


def recipe_heldout(recipe: Recipe, path: Path | None, run_root: Path) -> tuple[Path, list[dict]]:
    path = path or run_root / "prepare" / "eval.jsonl"
    if not path.is_file():
        raise StageError(f"{path}: the recipe's held-out split is missing; run `nlpforge run RECIPE --stages clean,prepare` or give --heldout FILE "
                         "(JSONL rows {messages: [...]} ending with the reference answer)")
    rows = [r for r in read_jsonl(path) if isinstance(r.get("messages"), list) and r["messages"] and r["messages"][-1].get("role") == "assistant"]
    if not rows:
        raise DataError(f"{path}: no conversation ending with an assistant answer to compare on")
    return path, rows[: recipe.eval.max_samples]


def improve(recipe: Recipe, recipe_path: Path, feedback: list[Path], ref: str, root: registry.Root = None, run_dir: Path | None = None,
            heldout: Path | None = None, fresh: bool = False) -> dict[str, Any]:
    """The whole loop; returns the comparison (also ``improve.json`` in the run dir). Raises
    :class:`GateError` after writing it when a gate fails (nothing is registered then)."""
    from nlpforge.evals.chat import compare_bundles, judge
    from nlpforge.pipeline import STAGE_NAMES, run_pipeline

    name, version, production = production_bundle(ref, root)
    served_name = BundleMeta.read(production).name or name
    run = RunDir(run_dir or Path("runs") / f"{recipe.name}-improve")
    heldout_path, heldout_rows = recipe_heldout(recipe, heldout, Path("runs") / recipe.name)
    sets = run.root / "feedback"
    counts = feedback_sets(feedback, recipe.improve.method, recipe.improve.heldout, sets)
    log(f"improve: {name}@{version} with {counts['train']['examples']} {recipe.improve.method} rows from {', '.join(map(str, feedback))} "
        f"({counts['heldout']['completions']} completions held out)")
    cand = candidate_recipe(recipe, production, served_name, sets)
    record: dict[str, Any] = {
        "started": now(), "from": ref, "production": {"name": name, "version": version, "path": str(production)}, "method": recipe.improve.method,
        "feedback": {"folders": [str(f) for f in feedback], "ids": str(sets / "ids.jsonl"), "ids_sha256": hash_file(sets / "ids.jsonl"), **counts},
        "recipe_heldout": {"path": str(heldout_path), "sha256": hash_file(heldout_path), "rows": len(heldout_rows)},
    }
    comparison: dict[str, Any] = {}
    try:
        report = run_pipeline(cand, recipe_path, run, STAGE_NAMES, fresh)
        record["stages"] = {s["stage"]: s["status"] for s in report}
    except GateError:
        comparison["feedback"] = EvalResults.read(run.stage_dir("eval") / EvalResults.FILE).model_dump(mode="json")
        return _finish(run, record, comparison, None, root)
    comparison["feedback"] = EvalResults.read(run.stage_dir("eval") / EvalResults.FILE).model_dump(mode="json")
    candidate = run.stage_dir("export")
    results, samples = compare_bundles(cand.eval, heldout_rows, {"base": production, "tuned": candidate}, recipe.train.threads)
    comparison["recipe"] = judge(results, recipe.improve.gates)
    write_jsonl(run.root / "improve" / "samples.jsonl", samples)
    return _finish(run, record, comparison, candidate, root, name, version, recipe.improve.stage)


def _finish(run: RunDir, record: dict[str, Any], comparison: dict[str, Any], candidate: Path | None, root: registry.Root,
            name: str = "", parent: str = "", stage: str = "staging") -> dict[str, Any]:
    """Register and stage a candidate that passed every gate; write ``improve.json`` and the
    manifest's ``improve`` record either way; raise :class:`GateError` when a gate failed."""
    record["comparison"] = comparison
    record["passed"] = candidate is not None and all(c.get("passed") for c in comparison.values())
    record["registered"] = None
    if record["passed"] and candidate is not None:
        existing = registry.version_with(name, hash_path(candidate), root)
        if existing:
            log(f"improve: this candidate is already registered as {name}@{existing}")
            version = existing
        else:
            _, version = registry.register(candidate, name, root, lineage={
                "parent": f"{name}@{parent}", "improve_run": str(run.root.resolve()), "feedback_ids_sha256": record["feedback"]["ids_sha256"],
                "feedback_train_examples": record["feedback"]["train"]["examples"]})
        record["registered"] = f"{name}@{version}"
        record["stages_now"] = registry.promote(f"{name}@{version}", stage, root)
    record["finished"] = now()
    atomic_write_json(run.root / "improve.json", record)
    with open(run.root / "improve-attempts.jsonl", "a", encoding="utf-8") as f:  # the latest is improve.json; every attempt stays here
        f.write(json.dumps(record) + "\n")
    manifest: Manifest = run.load_manifest()
    manifest.improve = {k: v for k, v in record.items() if k != "comparison"}
    run.save_manifest(manifest)
    if not record["passed"]:
        failed = [{**g, "metric": f"{SETS[k]}: {g['metric']}"} for k, c in comparison.items() for g in c.get("gates", [])]
        raise GateError(gate_message(failed, "candidate not registered", f"improve.gates in the recipe; details in {run.root / 'improve.json'}"))
    return record
