"""Data-parallel training for real: two CPU processes (gloo) launched by accelerate, two
"machines" on one host (two launches with --num-machines 2 and ranks 0/1 over 127.0.0.1), and
the shipped accelerate configs parse as accelerate configs."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, nlpforge, support_sample

from nlpforge.errors import StageError
from nlpforge.train.launch import launch_command


def _ddp_recipe(tiny_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    support_sample(tmp_path, 60)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: ddp\ndata:\n  inputs: [{tmp_path / 'raw.jsonl'}]\nmodel:\n  path: {tiny_model}\ntrain:\n  threads: 1\n  max_steps: 4\n  batch_size: 2\n  logging_steps: 1\n")
    run = tmp_path / "run"
    nlpforge("run", str(recipe), "--quiet", "--stages", "clean,prepare", "--run-dir", str(run))
    return recipe, run


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tiny_model: Path, tmp_path: Path) -> None:
    recipe, run = _ddp_recipe(tiny_model, tmp_path)
    nlpforge("train", str(recipe), "--num-processes", "2", "--quiet", "--run-dir", str(run), timeout=600)
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert (run / "train/adapter/adapter_model.safetensors").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "completed"
    # one log, written by the main process only
    steps = [json.loads(x)["step"] for x in (run / "train/log.jsonl").read_text().splitlines() if "loss" in json.loads(x)]
    assert steps == [1, 2, 3, 4]


@pytest.mark.slow
def test_two_machines_on_one_host(tiny_model: Path, tmp_path: Path) -> None:
    """What a 2-node job runs, each "machine" a launch of its own (one process each, gloo over
    loopback); the run directory stands for the filesystem the nodes share."""
    recipe, run = _ddp_recipe(tiny_model, tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "COLUMNS": "200"}
    procs = [subprocess.Popen([sys.executable, "-m", "nlpforge", "train", str(recipe), "--quiet", "--run-dir", str(run), "--num-processes", "2",
                               "--num-machines", "2", "--machine-rank", str(rank), "--main-process-ip", "127.0.0.1", "--main-process-port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert (run / "train/adapter/adapter_model.safetensors").is_file()
    assert json.loads((run / "manifest.json").read_text())["stages"]["train"]["status"] == "completed"
    steps = [json.loads(x)["step"] for x in (run / "train/log.jsonl").read_text().splitlines() if "loss" in json.loads(x)]
    assert steps == [1, 2, 3, 4]  # one log, kept by global rank 0


def test_multi_machine_launch_flags_and_their_errors() -> None:
    cmd = launch_command(["train", "r.yaml"], 16, None, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1", main_process_port=29500)
    flags = dict(zip(cmd[3:-4:2], cmd[4:-4:2]))
    assert flags["--num_processes"] == "16" and flags["--num_machines"] == "2" and flags["--machine_rank"] == "1"
    assert flags["--main_process_ip"] == "10.0.0.1" and flags["--main_process_port"] == "29500"
    with pytest.raises(StageError, match="needs --main-process-ip and --main-process-port"):
        launch_command(["train", "r.yaml"], 4, None, num_machines=2, machine_rank=0)
    with pytest.raises(StageError, match="rank must be in 0..1"):
        launch_command(["train", "r.yaml"], 4, None, num_machines=2, machine_rank=2, main_process_ip="h", main_process_port=1)
    with pytest.raises(StageError, match="not a multiple of --num-machines 2"):
        launch_command(["train", "r.yaml"], 3, None, num_machines=2, machine_rank=0, main_process_ip="h", main_process_port=1)


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
