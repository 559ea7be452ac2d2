"""Shared pieces of the read endpoints: query results as JSON-safe tables (and as ready JSON
responses) and the query tag.

Every read lands in ClickHouse's `log_comment` as `api:<endpoint>`, or `page:<page>:<endpoint>`
when the caller names the dashboard page it is drawing (header `X-LLMLedger-Page`), so what each
page costs the warehouse is one query on `system.query_log` away.
"""

from __future__ import annotations

import re
from typing import Annotated

import polars as pl
import pydantic_core
from fastapi import Depends, Request, Response

from common.frames import json_rows
from llmledger.service.models import Table

PAGE_HEADER = "x-llmledger-page"
_PAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def table(frame: pl.DataFrame) -> Table:
    """A frame as JSON-safe rows: decimals as exact strings, datetimes as ISO 8601 UTC, NaN as null."""
    return Table(**json_rows(frame))


class TableResponse(Response):
    """A `Table` already encoded as JSON."""

    media_type = "application/json"


def answer(frame: pl.DataFrame) -> TableResponse:
    """`table(frame)` as the response itself, encoded here, in the endpoint's worker thread.

    Returned as a `Table`, FastAPI would validate it against the route's `response_model` again,
    which for a sync endpoint is a second thread-pool hop per request, then encode it on the event
    loop; a ready response skips both (the route keeps `response_model=Table` for its schema). The
    encoder is pydantic's, the one the response model used, so the bytes mean the same."""
    return TableResponse(pydantic_core.to_json(json_rows(frame)))


def value(enum: object | None) -> str | None:
    """An enum member's value (or None)."""
    return None if enum is None else str(getattr(enum, "value", enum))


async def query_tag(request: Request) -> str:
    """The `log_comment` tag of this request's queries (the endpoint is the route's name)."""
    route = request.scope.get("route")
    endpoint = getattr(route, "name", None) or "read"
    page = request.headers.get(PAGE_HEADER, "").strip().lower()
    return f"page:{page}:{endpoint}" if _PAGE.match(page) else f"api:{endpoint}"


Tag = Annotated[str, Depends(query_tag)]
