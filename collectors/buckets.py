"""Reading a provider's bucketed usage/cost export: windows, pagination and the per-stream cursor.

OpenAI and Anthropic paginate the same way (`has_more` / `next_page`, pages of whole time
buckets in ascending order), so one loop serves both; a `StreamSpec` supplies the request
parameters and the page parser. The cursor of a stream is `done_until`: every bucket ending at
or before it has been written at least once. It advances page by page, so a run killed between
pages resumes at the bucket after the last one written. Page tokens are not persisted: they can
expire, whereas a bucket boundary never does. A token refused mid-run (HTTP 4xx) restarts the
query at the end of the last written bucket. Each run also re-reads `refetch_buckets` buckets
before `done_until`, because providers revise recent buckets after the fact.

Row-paged endpoints (Anthropic's analytics API pages by rows, not by buckets, and returns no row
for a bucket without usage) are read as whole buckets all the same: a page's last bucket is held
back until the next page completes it, and every bucket of the grid the pages passed is covered,
so an empty bucket replaces stale rows too. Such an endpoint may also cap the range of one query
(`max_span`): the plan is then read in consecutive queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from collectors.base import Batch, Output, Window
from collectors.errors import BadResponse, CollectorError, ConfigError, CursorExpired, RequestRejected
from collectors.http import ApiClient

log = logging.getLogger(__name__)

WIDTH = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
MAX_LIMIT = {"1m": 1440, "1h": 168, "1d": 31}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_RESTARTS = 3

BUCKET_SCHEMA = {"bucket_start": pl.Datetime("ms", "UTC"), "bucket_end": pl.Datetime("ms", "UTC")}


def floor_to(ts: datetime, width: str) -> datetime:
    """The start of the bucket of `width` containing `ts` (UTC)."""
    step = WIDTH[width]
    return _EPOCH + ((ts.astimezone(UTC) - _EPOCH) // step) * step


def ceil_to(ts: datetime, width: str) -> datetime:
    """The first bucket boundary at or after `ts`."""
    start = floor_to(ts, width)
    return start if start == ts.astimezone(UTC) else start + WIDTH[width]


@dataclass(frozen=True)
class Page:
    """One parsed page: its rows, every bucket it covered, and the pagination fields."""

    frame: pl.DataFrame
    buckets: pl.DataFrame
    has_more: bool
    next_page: str | None


@dataclass(frozen=True)
class StreamSpec:
    """One export endpoint read with one bucket width."""

    name: str  # e.g. "openai:completions:1d"; also the unit of replacement
    path: str
    output: Output
    width: str
    limit: int
    params: Callable[[datetime, datetime, int, str | None], Any]  # (start, end, limit, page) -> query
    parse: Callable[[Any], Page]
    setting: str  # the settings key that shapes the request, named when the source rejects it
    rows_paged: bool = False  # pages split buckets and omit empty ones (see the module docstring)
    max_span: timedelta | None = None  # the longest range one query may ask for


@dataclass(frozen=True)
class StreamPlan:
    """The range one run reads: [start, end); buckets ending at or before `horizon` are complete."""

    start: datetime
    end: datetime
    horizon: datetime


def plan(
    state: dict[str, Any] | None, window: Window, *, width: str, refetch: int, backfill_days: int,
    now: datetime | None = None,
) -> StreamPlan:
    """What to read this run: an explicit `window` (back-fill) wins; else from the stream's cursor
    minus `refetch` buckets; else `backfill_days` back. The bucket in progress is included."""
    now = now or datetime.now(UTC)
    until = window.end or now
    end, horizon = ceil_to(until, width), floor_to(until, width)
    done = parse_done_until(state, width)
    if window.start is not None:
        start = floor_to(window.start, width)
    elif done is not None:
        start = done - WIDTH[width] * refetch
    else:
        start = floor_to(until - timedelta(days=backfill_days), width)
    return StreamPlan(start=min(start, end), end=end, horizon=horizon)


def parse_done_until(state: dict[str, Any] | None, width: str) -> datetime | None:
    """The stream cursor's high-water mark; None when absent or unusable (then the run back-fills)."""
    if not state:
        return None
    try:
        done = datetime.fromisoformat(str(state["done_until"]))
    except (KeyError, ValueError):
        log.warning("ignoring an unreadable stream cursor %r", state)
        return None
    if state.get("width") != width or done.tzinfo is None or done != floor_to(done, width):
        log.warning("ignoring a stream cursor for another bucket width: %r", state)
        return None
    return done


def read_stream(
    client: ApiClient, spec: StreamSpec, span: StreamPlan, state: dict[str, Any] | None
) -> Iterator[tuple[Page, dict[str, Any]]]:
    """Yield (page, the stream's cursor after that page) for every page of `span`."""
    start = span.start
    while True:
        end = span.end if spec.max_span is None else min(span.end, start + spec.max_span)
        for page, cursor in _read_range(client, spec, StreamPlan(start, end, span.horizon), state):
            state = cursor
            yield page, cursor
        if end >= span.end:
            return
        start = end


def _grid(start: datetime, end: datetime, width: str) -> list[tuple[datetime, datetime]]:
    """The buckets of `width` in [start, end)."""
    step, bounds = WIDTH[width], []
    while start < end:
        bounds.append((start, start + step))
        start += step
    return bounds


def _whole_buckets(page: Page, carry: pl.DataFrame | None, covered: datetime, end: datetime,
                   width: str) -> tuple[Page, pl.DataFrame | None, datetime]:
    """A row-paged page as whole buckets: (rows of complete buckets with the grid they cover, the
    held-back rows of the page's last bucket, where coverage now ends)."""
    frame = page.frame if carry is None else pl.concat([carry, page.frame], how="diagonal_relaxed")
    cut = end
    if page.has_more and frame.height:
        cut = frame["bucket_start"].max()  # type: ignore[assignment]
    held = frame.filter(pl.col("bucket_start") >= cut) if cut < end else None
    complete = frame.filter(pl.col("bucket_start") < cut)
    return (Page(complete, buckets_frame(_grid(covered, max(covered, cut), width)), page.has_more, page.next_page),
            held, max(covered, cut))


def _read_range(
    client: ApiClient, spec: StreamSpec, span: StreamPlan, state: dict[str, Any] | None
) -> Iterator[tuple[Page, dict[str, Any]]]:
    done = parse_done_until(state, spec.width)
    query_start, page_token = span.start, None
    written_until: datetime | None = None
    carry: pl.DataFrame | None = None
    restarts = 0
    while True:
        try:
            body = client.get_json(spec.path, spec.params(query_start, span.end, spec.limit, page_token))
        except RequestRejected as err:
            if page_token is None:
                raise ConfigError(f"{err}; check the setting {spec.setting}", setting=spec.setting) from err
            restarts += 1
            if restarts > _MAX_RESTARTS:
                raise CursorExpired(f"{spec.name}: page tokens keep being refused ({err})") from err
            query_start = written_until or query_start
            log.warning("%s: page token refused (%s); re-reading from %s", spec.name, err, query_start.isoformat())
            page_token, carry = None, None
            continue
        page = spec.parse(body)
        if spec.rows_paged:
            page, carry, _ = _whole_buckets(page, carry, written_until or query_start, span.end, spec.width)
        if page.buckets.height:
            last = page.buckets["bucket_end"].max()
            written_until = last if written_until is None else max(written_until, last)  # type: ignore[type-var]
            reached = min(written_until, span.horizon)  # type: ignore[type-var]
            done = reached if done is None else max(done, reached)
        cursor = {"done_until": done.isoformat(), "width": spec.width} if done is not None else dict(state or {})
        if page.buckets.height or not spec.rows_paged:  # a row-paged page inside one bucket waits for the next
            yield page, cursor
        if not page.has_more:
            return
        if not page.next_page:
            raise BadResponse(f"{spec.name}: has_more is true but next_page is empty")
        page_token = page.next_page


def buckets_frame(bounds: list[tuple[datetime, datetime]]) -> pl.DataFrame:
    """A frame of bucket bounds."""
    return pl.DataFrame(
        {"bucket_start": [b[0] for b in bounds], "bucket_end": [b[1] for b in bounds]}, schema=BUCKET_SCHEMA
    )


def rows_frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Result rows of a page as a typed frame (missing keys become nulls)."""
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.from_dicts(rows, schema=schema, strict=False)


def grouped_columns(configured: list[str], dimensions: dict[str, list[str]]) -> list[str]:
    """The provider-table columns a configured group-by fills (what `grouped_by` records)."""
    return sorted({column for g in configured for column in dimensions[g]})


def collect_streams(
    client: ApiClient,
    specs: list[StreamSpec],
    window: Window,
    cursor: dict[str, Any] | None,
    *,
    refetch: int,
    backfill_days: int,
    label: Callable[[pl.DataFrame, StreamSpec], pl.DataFrame],
) -> Iterator[Batch]:
    """Batches of every stream, each carrying the whole cursor `{"streams": {name: state}}` as of
    that page. A stream that fails does not stop the next; the first error is raised at the end."""
    state: dict[str, Any] = dict((cursor or {}).get("streams") or {})
    failures: list[CollectorError] = []
    for spec in specs:
        span = plan(state.get(spec.name), window, width=spec.width, refetch=refetch, backfill_days=backfill_days)
        try:
            for page, stream_state in read_stream(client, spec, span, state.get(spec.name)):
                state[spec.name] = stream_state
                yield Batch(output=spec.output, frame=label(page.frame, spec), stream=spec.name,
                            buckets=page.buckets, cursor={"streams": dict(state)})
        except CollectorError as err:
            log.warning("%s failed: %s", spec.name, err)
            failures.append(err)
    if failures:
        raise failures[0]
