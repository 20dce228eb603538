"""How serve settings reach vLLM: the recipe's or bundle's `serve` section, `--engine-arg KEY=VALUE`
over it, the server compiling the graph while offline jobs on the CPU run eager, and `nlpforge
serve` refusing engine arguments vLLM does not have (before anything starts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nlpforge.engines import read_bundle
from nlpforge.engines.vllm import check_serve_settings, engine_args
from nlpforge.recipe import ServeConfig
from nlpforge.serve.server import merge


def test_engine_arg_values_are_yaml_and_win_over_the_section() -> None:
    base = ServeConfig(engine_args={"max_num_seqs": 8, "gpu_memory_utilization": 0.5})
    s = merge(base, {"port": 9000, "host": None}, ["max_num_seqs=64", "enforce-eager=true", "kv_cache_dtype=fp8"])
    assert s.port == 9000 and s.host == base.host
    assert s.engine_args == {"max_num_seqs": 64, "gpu_memory_utilization": 0.5, "enforce_eager": True, "kv_cache_dtype": "fp8"}
    assert s.vllm_overrides()["enforce_eager"] is True
    with pytest.raises(ValueError, match=r"--engine-arg 'enforce_eager': expected KEY=VALUE"):
        merge(base, {}, ["enforce_eager"])
    with pytest.raises(ValueError, match=r"not valid YAML"):
        merge(base, {}, ["max_num_seqs=[1"])


def test_the_server_compiles_offline_jobs_run_eager_and_overrides_win(quickstart_run: Path) -> None:
    pytest.importorskip("vllm")
    info = read_bundle(quickstart_run / "export")
    assert engine_args(info)["enforce_eager"] is True  # offline (eval, score) on the CPU: no compile
    served = engine_args(info, long_running=True)
    assert "enforce_eager" not in served and served["served_model_name"] == info.name  # vLLM's default: compile, as stock `vllm serve`
    assert engine_args(info, long_running=True, enforce_eager=True)["enforce_eager"] is True
    assert engine_args(info, enforce_eager=False)["enforce_eager"] is False


def test_check_names_unknown_engine_args_and_parallelism_the_machine_lacks() -> None:
    pytest.importorskip("vllm")
    problems = check_serve_settings({"enforce_eagre": True, "max_num_seqs": 4}, "vllm")
    assert problems == ["serve.engine_args.enforce_eagre: not a vLLM engine argument; did you mean 'enforce_eager'?"]
    assert "needs the vllm engine" in check_serve_settings({"tensor_parallel_size": 2}, "hf")[0]
    import torch

    if not torch.cuda.is_available():
        assert "this machine has no GPU" in check_serve_settings({"tensor_parallel_size": 2, "data_parallel_size": 2}, "vllm")[0]


def test_serve_refuses_a_misspelt_engine_arg_before_starting(quickstart_run: Path) -> None:
    pytest.importorskip("vllm")
    r = subprocess.run([sys.executable, "-m", "nlpforge", "serve", str(quickstart_run / "export"), "--engine", "vllm", "--engine-arg", "max_num_seq=4"],
                       capture_output=True, text=True, timeout=120)
    said = " ".join((r.stdout + r.stderr).split())  # the console wraps long lines
    assert r.returncode != 0 and "serve.engine_args.max_num_seq: not a vLLM engine argument; did you mean 'max_num_seqs'?" in said
    r = subprocess.run([sys.executable, "-m", "nlpforge", "serve", str(quickstart_run / "export"), "--engine-arg", "max_num_seqs"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "expected KEY=VALUE" in " ".join((r.stdout + r.stderr).split())


def test_watch_registry_with_vllms_own_server_fails_before_starting_it(quickstart_run: Path, tmp_path: Path) -> None:
    """vLLM's server process cannot swap its model: refused at once, not after handing the process to vLLM."""
    from nlpforge.export.registry import promote, register

    reg = tmp_path / "registry"
    name, version = register(quickstart_run / "export", root=reg)
    promote(f"{name}@{version}", "production", reg)
    r = subprocess.run([sys.executable, "-m", "nlpforge", "serve", f"{name}@production", "--registry", str(reg), "--watch-registry", "--engine", "vllm-server"],
                       capture_output=True, text=True, timeout=120)
    said = " ".join((r.stdout + r.stderr).split())
    assert r.returncode != 0 and "--watch-registry needs nlpforge's own server" in said and "serving" not in said
