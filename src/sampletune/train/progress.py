"""A progress bar for long work (rich), silent when disabled or not attached to a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def advance(self, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, status=status)


@contextlib.contextmanager
def progress_bar(description: str, total: int, completed: int = 0,
                 enabled: bool = True) -> Iterator[_Bar]:
    """``with progress_bar("train", total=40) as bar: ... bar.advance("loss 0.3")``."""
    if not enabled:
        yield _Bar(None, None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed, status="")
        yield _Bar(progress, task)
