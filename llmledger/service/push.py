"""The push path shared by every ingest endpoint: parse and prepare in a worker thread, append to
the spool, answer once it is fsynced.

Parsing, normalising and validating are vectorised Polars work; nothing is written to the
warehouse here (the spool's flush thread does that). The outcome names every rejected record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from fastapi import HTTPException, status
from starlette.concurrency import run_in_threadpool

from ingest.flusher import encode
from ingest.pipeline import Rejection
from ingest.readers import RawBatch
from ingest.spool import SpoolFull
from llmledger.service.auth import Principal
from llmledger.service.state import ServiceState


@dataclass
class PushOutcome:
    """What became of a pushed batch (everything counted here is durable)."""

    accepted: int
    rejections: list[Rejection]
    unknown_fields: set[str] = field(default_factory=set)
    tool_runs: int = 0
    extra: dict[str, int] = field(default_factory=dict)


Parse = Callable[[], tuple[RawBatch, pl.DataFrame | None]]


def spool_full(err: SpoolFull, retry_after_s: int) -> HTTPException:
    """The 429 answer when the spool is at its bound."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"ingest is behind ({err}); retry after {retry_after_s}s — nothing from this request was accepted",
        headers={"Retry-After": str(retry_after_s)},
    )


async def push(state: ServiceState, parse: Parse, *, source: str, principal: Principal) -> PushOutcome:
    """Parse (may raise the format's Malformed* error), validate, spool durably, report."""

    def work() -> tuple[PushOutcome, list]:
        raw, tool_runs = parse()
        prepared = state.pipeline.prepare(raw, source=source, project=principal.project)
        if tool_runs is not None and tool_runs.height:
            project = pl.lit(principal.project) if principal.project else pl.col("project").fill_null("default")
            tool_runs = tool_runs.with_columns(project.alias("project"))
        entries = encode(prepared, tool_runs)
        outcome = PushOutcome(prepared.staged.height, prepared.rejections, raw.unknown_fields,
                              tool_runs.height if tool_runs is not None else 0)
        return outcome, entries

    outcome, entries = await run_in_threadpool(work)
    if entries:
        try:
            future = state.push.submit(entries)
        except SpoolFull as err:
            raise spool_full(err, state.settings.service.retry_after_s) from None
        await asyncio.wrap_future(future)
    return outcome
