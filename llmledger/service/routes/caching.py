"""Prompt-cache endpoints: hit-ratio and cache-not-applied windows, savings realised and missed,
and prompt-version changes (the markers of prompt releases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import Field

from llmledger.service.auth import Reader, State
from llmledger.service.models import Dimension, Grain, RangeQuery, Table
from llmledger.service.reading import Tag, answer, value
from llmledger.settings import Settings
from warehouse.queries import caching

router = APIRouter(prefix="/v1", tags=["read"])


class WindowsQuery(RangeQuery):
    grain: Grain = Grain("hour")  # type: ignore[call-arg]
    by: list[Dimension] = Field(default_factory=list, max_length=3, description="Group by these (repeatable).")


class SavingsQuery(RangeQuery):
    by: list[Dimension] = Field(default_factory=list, max_length=3, description="Group by these (repeatable).")


class VersionsQuery(RangeQuery):
    by: Dimension = Dimension("route")  # type: ignore[call-arg]


def min_cacheable(settings: Settings) -> dict[str, int]:
    """`provider/model-prefix` → shortest cacheable input: the cache-not-applied signal's setting
    (the providers' documented minimums unless configured), so page and alert agree."""
    return dict(settings.signals.cache_not_applied.min_tokens or caching.DEFAULT_MIN_CACHEABLE)


@router.get("/cache/windows", response_model=Table, summary="Cache hit ratio and cache-not-applied share over time")
def cache_windows(q: Annotated[WindowsQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per bucket (and `by` values): cache read / write tokens, hit ratio, calls, calls long enough to
    cache, those that used no cache, and their share."""
    return answer(caching.cache_windows(state.read_wh, who.read_scope, q.start, q.end, grain=value(q.grain),
                                       by=[value(b) for b in q.by], filters=q.filters(),
                                       min_tokens=min_cacheable(state.settings), tag=tag))


@router.get("/cache/savings", response_model=Table, summary="What prompt caching saved and missed")
def cache_savings(q: Annotated[SavingsQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per `by` values (or one row): cache reads as billed vs at the full input price (`saved_usd`),
    the cache-write premium, `net_saved_usd`, and calls long enough to cache that were not cached
    with `missed_usd` (an upper bound)."""
    return answer(caching.cache_savings(state.read_wh, who.read_scope, q.start, q.end, by=[value(b) for b in q.by],
                                       filters=q.filters(), min_tokens=min_cacheable(state.settings), tag=tag))


@router.get("/prompt-versions", response_model=Table, summary="Prompt versions seen, first and last call")
def prompt_versions(q: Annotated[VersionsQuery, Query()], state: State, who: Reader, tag: Tag) -> Response:
    """Per value of `by` (column `key`) and prompt version: first_seen, last_seen, calls, prefix hashes."""
    return answer(caching.prompt_versions(state.read_wh, who.read_scope, q.start, q.end, by=value(q.by),
                                         filters=q.filters(), tag=tag))
