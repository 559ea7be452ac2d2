"""A result frame as JSON-safe rows, the one shape every reader gets it in (the service's API, the
CLI's `--json`, the router advisor's document): money exact, times ISO 8601 UTC, NaN as null."""

from __future__ import annotations

from typing import Any

import polars as pl


def json_rows(frame: pl.DataFrame) -> dict[str, Any]:
    """`{"columns": [...], "rows": [{...}]}`: decimals as exact strings (trailing zeros dropped),
    datetimes as ISO 8601 UTC with milliseconds, NaN (also inside float lists) as null."""
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
    return {"columns": out.columns, "rows": out.to_dicts()}
