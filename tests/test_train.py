import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge, support_sample
from safetensors.torch import load_file

TRAIN = ["--set", "train.max_steps=24", "--set", "train.save_steps=4", "--set", "train.batch_size=4", "--set", "train.logging_steps=2"]


@pytest.fixture()
def prepared(tmp_path: Path, tiny_model: Path) -> tuple[Path, list[str]]:
    support_sample(tmp_path, 150)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: resume\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\nmodel:\n  path: {tiny_model}\ntrain:\n  threads: 1\n")
    return recipe, TRAIN


def test_training_killed_with_sigkill_resumes_to_the_same_weights(prepared: tuple[Path, list[str]], tmp_path: Path) -> None:
    recipe, train_args = prepared
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    for run in (killed, straight):
        nlpforge("run", str(recipe), "--quiet", "--stages", "clean,prepare", "--run-dir", str(run))

    proc = subprocess.Popen(
        [sys.executable, "-m", "nlpforge", "train", str(recipe), "--quiet", "--run-dir", str(killed), *train_args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    state = killed / "train/checkpoints/checkpoint-8/trainer_state.json"
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the first run never reached checkpoint-8"
    assert not (killed / "train/adapter").exists()
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "running"

    resumed = nlpforge("train", str(recipe), "--quiet", "--run-dir", str(killed), *train_args)
    summary = json.loads((killed / "train/summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["resumed_from"].startswith("checkpoint-"), resumed.stderr
    assert summary["steps"] == 24
    assert json.loads((killed / "manifest.json").read_text())["stages"]["train"]["status"] == "completed"

    nlpforge("train", str(recipe), "--quiet", "--run-dir", str(straight), *train_args)
    a = load_file(killed / "train/adapter/adapter_model.safetensors")
    b = load_file(straight / "train/adapter/adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    # the loss curve is logged as JSON lines, across the kill
    steps = [json.loads(x)["step"] for x in (killed / "train/log.jsonl").read_text().splitlines()]
    assert steps[-1] == 24
