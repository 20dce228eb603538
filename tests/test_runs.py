import json
from pathlib import Path

import pytest
from conftest import ROOT, support_sample

from nlpforge.atomic import atomic_dir, atomic_file, atomic_write_text
from nlpforge.errors import StageError
from nlpforge.pipeline import parse_stages, run_pipeline
from nlpforge.recipe import load_recipe
from nlpforge.runs import RunDir


@pytest.fixture()
def small_recipe(tmp_path: Path, tiny_model: Path) -> Path:
    support_sample(tmp_path, 120)
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: small\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\nmodel:\n  path: {tiny_model}\n")
    return path


def statuses(report: list[dict]) -> dict[str, str]:
    return {r["stage"]: r["status"] for r in report}


def test_stage_cache_skips_unchanged_and_reruns_changed(small_recipe: Path, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    stages = ["clean", "prepare"]
    assert statuses(run_pipeline(load_recipe(small_recipe), small_recipe, run, stages)) == {"clean": "ran", "prepare": "ran"}
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["recipe"]["sha256"] == load_recipe(small_recipe).digest()
    assert "transformers" in manifest["packages"] and manifest["seed"] == 42
    assert list(manifest["inputs"]) == [str(tmp_path / "raw.jsonl")]
    clean = manifest["stages"]["clean"]
    assert clean["status"] == "completed" and len(clean["outputs"]["clean/corpus.jsonl"]) == 64

    assert statuses(run_pipeline(load_recipe(small_recipe), small_recipe, run, stages)) == {"clean": "cached", "prepare": "cached"}
    # a change that leaves clean's output identical reruns clean, but not prepare
    r = load_recipe(small_recipe, ["clean.batch_size=7"])
    assert statuses(run_pipeline(r, small_recipe, run, stages)) == {"clean": "ran", "prepare": "cached"}
    # a change that alters clean's output reruns both
    r = load_recipe(small_recipe, ["clean.min_words=40"])
    assert statuses(run_pipeline(r, small_recipe, run, stages)) == {"clean": "ran", "prepare": "ran"}
    assert statuses(run_pipeline(r, small_recipe, run, stages, fresh=True)) == {"clean": "ran", "prepare": "ran"}
    # an input file edited on disk reruns clean
    with open(tmp_path / "raw.jsonl", "a") as f:
        f.write((ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[200] + "\n")
    assert statuses(run_pipeline(r, small_recipe, run, ["clean"]))["clean"] == "ran"


def test_a_stage_without_its_inputs_names_the_stage_to_run(small_recipe: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"prepare: input .*clean/corpus.jsonl is missing; run stage 'clean' first"):
        run_pipeline(load_recipe(small_recipe), small_recipe, RunDir(tmp_path / "run"), ["prepare"])


def test_a_failed_stage_is_recorded(small_recipe: Path, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    r = load_recipe(small_recipe, [f"model.path={tmp_path / 'no-model'}"])
    with pytest.raises(StageError, match="cannot load a tokenizer"):
        run_pipeline(r, small_recipe, run, ["clean", "prepare"])
    stages = json.loads(run.manifest_path.read_text())["stages"]
    assert stages["clean"]["status"] == "completed"
    assert stages["prepare"]["status"] == "failed" and "cannot load a tokenizer" in stages["prepare"]["error"]


def test_parse_stages() -> None:
    assert parse_stages("train,clean") == ["clean", "train"]
    with pytest.raises(StageError, match="unknown stage"):
        parse_stages("clean,serve")


def test_atomic_writes_keep_the_old_artifact_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    folder = tmp_path / "bundle"
    with atomic_dir(folder) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "x").write_text("2")
        raise RuntimeError("killed")
    assert (folder / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "bundle"]


def test_a_subset_refuses_to_build_on_a_stale_upstream_stage(small_recipe: Path, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run_pipeline(load_recipe(small_recipe), small_recipe, run, ["clean", "prepare"])
    changed = load_recipe(small_recipe, ["clean.min_words=40"])
    with pytest.raises(StageError, match="stage 'clean' is out of date"):
        run_pipeline(changed, small_recipe, run, ["prepare"])
    # the same subset on an unchanged recipe is fine (and cached)
    assert statuses(run_pipeline(load_recipe(small_recipe), small_recipe, run, ["prepare"])) == {"prepare": "cached"}
