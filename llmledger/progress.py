"""Progress of long work, told the same way wherever the work runs.

Long operations (seeding the demo, ingesting or importing a file, re-pricing, a report dry run,
a collector back-fill) take a `Feed` and call `feed.task(description, total)` for each stage,
then the returned function with each amount done. In the CLI the feed draws Rich progress bars
on stderr; in the service it becomes progress events streamed back to the CLI that asked
(`llmledger.service.streaming`), which draws the same bars from them (`ProgressEvents`). The
contract itself (`Feed`, `SILENT`) lives in `common.progress`, so lower layers can take a feed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from common.progress import SILENT, Advance, Feed, Silent

__all__ = ["SILENT", "Advance", "Feed", "ProgressEvents", "RichFeed", "Silent", "bars", "progress_columns"]


class RichFeed:
    """Rich progress bars on stderr (drawn only on a terminal; they vanish when the work is done)."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def task(self, description: str, total: float | None = None) -> Advance:
        task_id = self.progress.add_task(description, total=total)
        return lambda amount: self.progress.advance(task_id, amount)


def progress_columns() -> tuple[Any, ...]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn())


@contextmanager
def bars() -> Iterator[RichFeed]:
    """A `RichFeed` for the length of a block."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*progress_columns(), console=Console(stderr=True), transient=True) as progress:
        yield RichFeed(progress)


class ProgressEvents:
    """Replays progress events from the service into a local feed: `{"task": id, "description", "total"}`
    starts a stage, `{"advance": id, "amount"}` moves it."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self._tasks: dict[int, Advance] = {}

    def apply(self, event: dict[str, Any]) -> None:
        if "task" in event:
            self._tasks[int(event["task"])] = self.feed.task(str(event.get("description", "")), event.get("total"))
        elif "advance" in event:
            advance = self._tasks.get(int(event["advance"]))
            if advance is not None:
                advance(float(event.get("amount", 0)))
