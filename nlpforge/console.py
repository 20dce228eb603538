"""Shared rich console and progress bars; ``--quiet`` turns both off."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
console = Console(stderr=True)  # logs and progress
out = Console()  # results: printed even with --quiet
QUIET = False


def set_quiet(quiet: bool) -> None:
    global QUIET
    QUIET = quiet
    console.quiet = quiet


def log(message: str) -> None:
    console.print(message)


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
