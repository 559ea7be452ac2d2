"""Tables as people read them: every cell written by the shared formatting layer (money as money,
one precision per column — cents once it reaches a dollar, more decimals in a column of sub-cent
amounts such as per-call costs —, counts with separators, durations in the unit the column title names, "—" for a missing value,
never "None" or "NaN"), human column titles with units, numbers right-aligned, and drill-down
links. What the grid draws is what the page's DOM holds, so the browser test reads the same
text a person sees. Exact values stay in the CSV download.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

import polars as pl
import streamlit as st

from common import formatting as fmt

LABEL = r"#(.*)$"  # a link cell shows its URL's fragment: the cell's formatted value (percent-encoded)
NUMERIC_KINDS = {"money", "seconds", "ms", "pct", "percent", "count", "number"}


def kind_of(column: str, dtype: pl.DataType) -> str:
    """The formatting kind of a column from its name and type."""
    if isinstance(dtype, pl.Decimal):
        return "money"
    if isinstance(dtype, pl.Datetime):
        return "time"
    if dtype == pl.Boolean:
        return "bool"
    if isinstance(dtype, pl.List):
        return "list"
    if dtype.is_numeric():
        return fmt.kind(column, integer=dtype.is_integer(), floating=dtype.is_float())
    return "text"


def _writer(what: str):  # noqa: ANN202 - a callable of one value
    if what == "bool":
        return lambda v: "yes" if v else "no"
    if what == "list":
        return lambda v: ", ".join(str(x) for x in v) if v is not None and len(v) else fmt.MISSING
    return fmt.formatter(what)


def money_places(values: pl.Series) -> int:
    """The decimals of a money column: cents once it reaches a dollar; below, enough for two
    significant digits of its typical (median non-zero) amount, at most 6 — so a column of per-call
    costs reads $0.0123, $0.0093, $0.0007 rather than $0.01 beside $0.0093."""
    amounts = values.cast(pl.Float64, strict=False).abs().drop_nulls()
    amounts = amounts.filter(amounts > 0)
    if amounts.is_empty() or amounts.max() >= 1:
        return 2
    typical = float(amounts.median())
    return min(6, max(2, -math.floor(math.log10(typical)) + 1))


def displayed(frame: pl.DataFrame, *, kinds: Mapping[str, str] | None = None) -> tuple[pl.DataFrame, dict[str, str]]:
    """(every cell as its display string, column → kind). `kinds` overrides the kind of a column
    (e.g. "percent" for a 0–1 share, "count" for a float that counts)."""
    kinds = dict(kinds or {})
    found = {c: kinds.get(c) or kind_of(c, t) for c, t in frame.schema.items()}
    exprs = []
    for column, what in found.items():
        write = _writer(what)
        if what == "money":  # one precision per column
            write = partial(fmt.money, places=money_places(frame[column]))
        exprs.append(pl.col(column).map_elements(write, return_dtype=pl.String, skip_nulls=True)
                     .fill_null(fmt.MISSING).alias(column))
    return (frame.select(exprs) if exprs else frame), found


def show_table(frame: pl.DataFrame, *, kinds: Mapping[str, str] | None = None,
               titles: Mapping[str, str] | None = None, links: Mapping[str, str] | None = None,
               height: int | None = None, key: str | None = None, empty: str = "nothing in this range") -> None:
    """A table of formatted text cells with human titles (`titles` overrides the shared ones).
    `links`: column → a URL column of the same frame; that column is shown as a link whose text is
    the column's formatted value (the URL column itself is not shown)."""
    if frame.is_empty():
        st.caption(empty)
        return
    links = dict(links or {})
    shown, found = displayed(frame.drop([u for u in links.values() if u in frame.columns]), kinds=kinds)
    titles = dict(titles or {})
    config: dict[str, Any] = {}
    for column, what in found.items():
        name = titles.get(column) or fmt.title(column)
        if column in links:
            labels = shown[column].map_elements(lambda v: quote(v, safe=" "), return_dtype=pl.String)
            urls = frame[links[column]].fill_null("") + "#" + labels
            shown = shown.with_columns(urls.alias(f"{column}__url"))
            config[f"{column}__url"] = st.column_config.LinkColumn(name, display_text=LABEL)
        else:
            config[column] = st.column_config.TextColumn(name, alignment="right" if what in NUMERIC_KINDS else "left")
    order = [f"{c}__url" if c in links else c for c in found]
    fits = height is None or frame.height <= 10  # a short table takes its own height: no empty rows
    st.dataframe(shown.select(order), hide_index=True, height="auto" if fits else height, key=key,
                 column_config=config)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """CSV for export: money as exact decimal strings, times in ISO 8601 UTC, original column names."""
    out = frame.with_columns(pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Decimal))
    return out.select(pl.exclude(pl.List)).write_csv().encode()
