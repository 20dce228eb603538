"""Data-parallel training through Accelerate's own launcher (no home-made distribution).

``nlpforge train RECIPE --num-processes N`` re-runs the same command under
``accelerate launch`` (``-m nlpforge train RECIPE ...``), exactly what a user may type
themselves. In the launched processes the HF Trainer picks up the process group from the
environment; only the main process keeps the run's books (manifest, stage cache, adapter,
summary): the others just run the train stage, see :func:`is_main_process`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from nlpforge.errors import StageError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(argv: list[str], num_processes: int, config_file: Path | None, num_machines: int = 1, machine_rank: int = 0,
                   main_process_ip: str | None = None, main_process_port: int | None = None) -> list[str]:
    """``accelerate launch`` for ``nlpforge <argv>`` (argv without the launcher's own options).
    ``num_processes`` counts every process on every machine (accelerate's meaning); with
    ``num_machines`` > 1 each machine runs this with its own ``machine_rank`` and the same
    address and port of machine 0."""
    if num_machines < 1 or not 0 <= machine_rank < num_machines:
        raise StageError(f"--machine-rank {machine_rank} with --num-machines {num_machines}: the rank must be in 0..{num_machines - 1}")
    if num_processes % num_machines:
        raise StageError(f"--num-processes {num_processes} (all machines together) is not a multiple of --num-machines {num_machines}")
    if num_machines > 1 and (not main_process_ip or not main_process_port):
        raise StageError("--num-machines > 1 needs --main-process-ip and --main-process-port: machine 0's address and a free port on it, the same on every machine")
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file is not None:
        if not config_file.is_file():
            raise StageError(f"--accelerate-config: {config_file} not found (configs ship in recipes/accelerate/)")
        cmd += ["--config_file", str(config_file)]
    cmd += ["--num_processes", str(num_processes), "--num_machines", str(num_machines), "--machine_rank", str(machine_rank),
            "--main_process_port", str(main_process_port or _free_port())]
    if main_process_ip:
        cmd += ["--main_process_ip", main_process_ip]
    if config_file is None:
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        # accelerate's multi-process launcher (torchrun) for GPUs and CPUs alike; `--cpu` would start
        # a single process. Without CUDA the Trainer (use_cpu) joins a gloo process group.
        cmd += ["--multi_gpu"]
    return [*cmd, "-m", "nlpforge", *argv]


def launch(argv: list[str], num_processes: int, config_file: Path | None, **machines: Any) -> int:
    cmd = launch_command(argv, num_processes, config_file, **machines)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(cmd, env=env)
