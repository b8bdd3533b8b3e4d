"""Rich progress bars, shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


@contextmanager
def entry_progress(total: int, *, enabled: bool = True
                   ) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking the number of entries done, or None when not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(),
               TextColumn("entries"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("verify", total=total)

        def update(done: int) -> None:
            progress.update(task, completed=done)

        yield update


@contextmanager
def file_progress(label: str, total_files: int, total_bytes: int, *, enabled: bool = True
                  ) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking the size of each file done (files, MB/s and ETA are shown),
    or None when not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn(label), BarColumn(),
               TextColumn("{task.fields[files]}/" + str(total_files) + " files"),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=max(1, total_bytes), files=0)
        done = 0

        def update(size: int) -> None:
            nonlocal done
            done += 1
            progress.update(task, advance=size, files=done)

        yield update
