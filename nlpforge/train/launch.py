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

from nlpforge.errors import StageError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(argv: list[str], num_processes: int, config_file: Path | None) -> list[str]:
    """``accelerate launch`` for ``nlpforge <argv>`` (argv without the launcher's own options)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file is not None:
        if not config_file.is_file():
            raise StageError(f"--accelerate-config: {config_file} not found (configs ship in recipes/accelerate/)")
        cmd += ["--config_file", str(config_file)]
    cmd += ["--num_processes", str(num_processes), "--num_machines", "1", "--main_process_port", str(_free_port())]
    if config_file is None:
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
        # accelerate's multi-process launcher (torchrun) for GPUs and CPUs alike; `--cpu` would start
        # a single process. Without CUDA the Trainer (use_cpu) joins a gloo process group.
        cmd += ["--multi_gpu"]
    return [*cmd, "-m", "nlpforge", *argv]


def launch(argv: list[str], num_processes: int, config_file: Path | None) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(launch_command(argv, num_processes, config_file), env=env)
