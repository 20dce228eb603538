"""Data-parallel training for real: two CPU processes (gloo) launched by accelerate, and the
shipped accelerate configs parse as accelerate configs."""

import json
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge

from nlpforge.train.launch import launch_command


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tiny_model: Path, tmp_path: Path) -> None:
    lines = (ROOT / "corpora/support/conversations.jsonl").read_text().splitlines()[:60]
    (tmp_path / "raw.jsonl").write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: ddp\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\nmodel:\n  path: {tiny_model}\ntrain:\n  threads: 1\n  max_steps: 4\n  batch_size: 2\n  logging_steps: 1\n")
    run = tmp_path / "run"
    nlpforge("run", str(recipe), "--quiet", "--stages", "clean,prepare", "--run-dir", str(run))
    nlpforge("train", str(recipe), "--num-processes", "2", "--quiet", "--run-dir", str(run), timeout=600)
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert (run / "train/adapter/adapter_model.safetensors").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "completed"
    # one log, written by the main process only
    steps = [json.loads(x)["step"] for x in (run / "train/log.jsonl").read_text().splitlines() if "loss" in json.loads(x)]
    assert steps == [1, 2, 3, 4]


@pytest.mark.parametrize("name,kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed-zero2", "DEEPSPEED"), ("deepspeed-zero3", "DEEPSPEED")])
def test_shipped_accelerate_configs_load(name: str, kind: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    path = ROOT / "recipes/accelerate" / f"{name}.yaml"
    cfg = load_config_from_file(str(path))
    assert cfg.distributed_type.value == kind
    if name.startswith("deepspeed"):
        assert cfg.deepspeed_config["zero_stage"] == int(name[-1])
    cmd = launch_command(["train", "r.yaml"], 8, path)
    assert cmd[cmd.index("--config_file") + 1] == str(path) and cmd[-4:] == ["-m", "nlpforge", "train", "r.yaml"]
