"""Shared rich console and progress bars; ``--quiet`` turns both off."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

T = TypeVar("T")
console = Console(stderr=True)  # logs and progress
out = Console()  # results: printed even with --quiet
QUIET = False
LOG_FILE: Path | None = None


def set_quiet(quiet: bool) -> None:
    global QUIET
    QUIET = quiet
    console.quiet = quiet


def set_log_file(path: Path | None) -> None:
    """Also append every log line (markup stripped, timestamped) to ``path``."""
    global LOG_FILE
    LOG_FILE = path


def log(message: str) -> None:
    console.print(message)
    if LOG_FILE is not None:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().isoformat(timespec="seconds")
        with open(LOG_FILE, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {Text.from_markup(message).plain}\n")


def track(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    if QUIET:
        yield from items
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)
