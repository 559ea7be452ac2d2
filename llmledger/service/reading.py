"""Shared pieces of the read endpoints: query results as JSON-safe tables and the query tag.

Every read lands in ClickHouse's `log_comment` as `api:<endpoint>`, or `page:<page>:<endpoint>`
when the caller names the dashboard page it is drawing (header `X-LLMLedger-Page`), so what each
page costs the warehouse is one query on `system.query_log` away.
"""

from __future__ import annotations

import re
from typing import Annotated

import polars as pl
from fastapi import Depends, Request

from llmledger.service.models import Table

PAGE_HEADER = "x-llmledger-page"
_PAGE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def table(frame: pl.DataFrame) -> Table:
    """A frame as JSON-safe rows: decimals as exact strings, datetimes as ISO 8601 UTC, NaN as null."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            text = col.cast(pl.String)
            exprs.append(pl.when(text.str.contains(r"\.")).then(text.str.strip_chars_end("0").str.strip_chars_end("."))
                         .otherwise(text).alias(name))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name)
                         if dtype.time_zone else col.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name))
        elif dtype.is_float():
            exprs.append(col.fill_nan(None).alias(name))
        elif isinstance(dtype, pl.List) and dtype.inner is not None and dtype.inner.is_float():
            exprs.append(col.list.eval(pl.element().fill_nan(None)).alias(name))
        else:
            exprs.append(col)
    out = frame.select(exprs) if exprs else frame
    return Table(columns=out.columns, rows=out.to_dicts())


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
