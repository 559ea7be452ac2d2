"""Plotly figures of the dashboards, built from the API's frames. Money turns into floats here and
nowhere earlier; colours come from `palette`; labels, ticks and hovers are written by the shared
formatting layer's rules (d3 formats with the same conventions: $1,234.57, −$15). Every figure
carries its thresholds, labelled (SLOs, alert lines, healthy bands), and stays readable at the
demo's size: long names are shortened (the hover keeps them), bar charts keep the top N plus
"others", many series become small multiples rather than a tangle, log axes label decades only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from common import formatting as fmt
from dashboards import palette

LAYOUT = {"margin": {"l": 10, "r": 10, "t": 48, "b": 10}, "legend": {"orientation": "h", "y": -0.15, "x": 0},
          "hovermode": "closest", "template": "plotly_white", "font": {"size": 12}}
AXIS = {"automargin": True}
LABEL_CHARS = 28
TOP_N = 12
OTHERS = "others"
MONEY_HOVER = "$,.2f"


def _num(frame: pl.DataFrame, column: str) -> list[float | None]:
    """A column as floats (Decimal money becomes float only for drawing); NaN as a gap."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for v in frame[column].cast(pl.Float64).to_list()]


def short(name: object, limit: int = LABEL_CHARS) -> str:
    """A label that fits: the start and the end of a long name around an ellipsis."""
    text = fmt.text(name)
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep - keep // 3] + "…" + text[-(keep // 3):]


def money_axis(values: Sequence[float | None]) -> dict[str, object]:
    """A money axis: whole dollars from $100, cents from $0.10, finer below (d3 writes −$15)."""
    return {"tickformat": fmt.d3_money(max((abs(v) for v in values if v is not None), default=0.0))}


def log_ticks(values: Sequence[float | None], *, money: bool = False) -> dict[str, object]:
    """A log axis labelled at decades only (1, 10, 100, 1k …), written by the formatting layer."""
    positive = [v for v in values if v is not None and v > 0]
    if not positive:
        return {"type": "log"}
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    step = max(1, math.ceil((hi - lo + 1) / 8))
    ticks = [10.0 ** e for e in range(lo, hi + 1, step)]
    text = [("$" if money else "") + _decade(t) for t in ticks]
    return {"type": "log", "tickvals": ticks, "ticktext": text, "minor": {"showgrid": False}}


def _decade(value: float) -> str:
    """A power of ten as a tick reads it: 0.01, 1, 100, 1k, 10M."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _figure(title: str, **layout: object) -> go.Figure:
    fig = go.Figure()
    xaxis = {**AXIS, **dict(layout.pop("xaxis", {}) or {})}  # type: ignore[arg-type]
    yaxis = {**AXIS, **dict(layout.pop("yaxis", {}) or {})}  # type: ignore[arg-type]
    fig.update_layout(title={"text": title, "font": {"size": 15}}, xaxis=xaxis, yaxis=yaxis, **{**LAYOUT, **layout})
    return fig


def _hline(fig: go.Figure, value: float, text: str, colour: str, *, log: bool = False, row: int | None = None) -> None:
    """A dotted threshold line with its label at the right end. On a log axis a shape takes data
    values but an annotation takes log10 units, so the label is placed separately there."""
    where = {"row": row, "col": 1} if row else {}
    fig.add_hline(y=value, line={"color": colour, "dash": "dot", "width": 1.5}, **where)
    yref = "y" if not row or row == 1 else f"y{row}"
    fig.add_annotation(y=math.log10(value) if log else value, x=1, xref="paper", yref=yref, text=text,
                       showarrow=False, xanchor="right", yanchor="bottom", font={"size": 11, "color": colour},
                       bgcolor="rgba(255,255,255,0.7)")


def _vline(fig: go.Figure, value: float, text: str, colour: str, *, log: bool = False, y: float = 1.0) -> None:
    """A dashed vertical marker with its label (log10 units for the label on a log axis)."""
    fig.add_vline(x=value, line={"color": colour, "dash": "dash"})
    fig.add_annotation(x=math.log10(value) if log else value, y=y, yref="paper", xref="x", text=text,
                       showarrow=False, xanchor="left", yanchor="top", font={"size": 11, "color": colour},
                       bgcolor="rgba(255,255,255,0.7)")


def top_with_others(frame: pl.DataFrame, *, key: str, value: str, n: int = TOP_N) -> pl.DataFrame:
    """The `n` largest rows by `value`, and one "others (k)" row summing the rest (numeric columns)."""
    ranked = frame.sort(value, descending=True, nulls_last=True)
    if ranked.height <= n + 1:
        return ranked
    head, rest = ranked.head(n), ranked.slice(n)
    sums = {c: rest[c].sum() for c, t in rest.schema.items() if t.is_numeric() or isinstance(t, pl.Decimal)}
    other = {c: sums.get(c) for c in ranked.columns}
    other[key] = f"{OTHERS} ({rest.height})"
    return pl.concat([head, pl.DataFrame([other], schema=ranked.schema)], how="vertical")


# ---- spend -------------------------------------------------------------------------------------


def stacked_bars(series: pl.DataFrame, *, title: str, y_title: str, money: bool = True) -> go.Figure:
    """`bucket`, `key`, `value` stacked by key (largest total at the bottom, "other" last): bars for
    a few buckets, stacked areas when there are too many for bars to read."""
    values = _num(series, "value") if series.height else []
    fig = _figure(title, barmode="stack", yaxis={"title": y_title, **(money_axis(values) if money else {})})
    if series.is_empty():
        return fig
    keys = (series.group_by("key").agg(pl.col("value").cast(pl.Float64).sum()).sort("value", descending=True)["key"]
            .to_list()) if "key" in series.columns else [None]
    keys = [k for k in keys if k not in ("other", OTHERS)] + [k for k in keys if k in ("other", OTHERS)]
    areas = series["bucket"].n_unique() > 48
    colours = palette.color_map(k for k in keys if k is not None)
    hover = f"%{{fullData.name}}<br>%{{x}}<br>%{{y:{MONEY_HOVER if money else ',.0f'}}}<extra></extra>"
    for key in keys:
        part = (series.filter(pl.col("key") == key) if key is not None else series).sort("bucket")
        colour = palette.NEUTRAL if key in ("other", OTHERS) else colours[key] if key else palette.NEUTRAL
        name = short(key) if key is not None else y_title
        if areas:
            fig.add_scatter(x=part["bucket"].to_list(), y=_num(part, "value"), name=name, mode="lines",
                            stackgroup="one", line={"width": 0, "color": colour}, fillcolor=colour, hovertemplate=hover)
        else:
            fig.add_bar(x=part["bucket"].to_list(), y=_num(part, "value"), name=name, marker_color=colour,
                        hovertemplate=hover)
    return fig


def cumulative_spend(daily: pl.DataFrame, *, month_start: datetime, month_end: datetime, forecast_usd: float,
                     budget_usd: float | None = None, title: str = "Month to date and forecast") -> go.Figure:
    """Cumulative spend per day of the month (`value`; stacked `api` / `infra` parts when given), a
    dashed forecast to the month end and the budget line."""
    fig = _figure(title, xaxis={"range": [month_start, month_end]})
    if not daily.is_empty():
        days = daily.sort("bucket")
        cumulative = [v or 0.0 for v in _num(days, "value")]
        total = [sum(cumulative[: i + 1]) for i in range(len(cumulative))]
        fig.add_scatter(x=days["bucket"].to_list(), y=total, mode="lines+markers", name="spent (API + GPUs)",
                        line={"color": palette.NEUTRAL, "width": 3}, hovertemplate=f"%{{x|%b %d}}: %{{y:{MONEY_HOVER}}}"
                                                                                  "<extra></extra>")
        fig.add_scatter(x=[days["bucket"][-1], month_end], y=[total[-1], forecast_usd], mode="lines",
                        name="forecast", line={"color": palette.NEUTRAL, "dash": "dash"},
                        hovertemplate=f"forecast %{{y:{MONEY_HOVER}}}<extra></extra>")
        fig.update_yaxes(title="USD", **money_axis([forecast_usd, *total]))
    if budget_usd:
        _hline(fig, budget_usd, f"budget {fmt.money_compact(budget_usd)}", palette.CRITICAL)
    return fig


def budget_bars(budgets: pl.DataFrame) -> go.Figure:
    """Per budget: month to date and forecast as shares of the budget, the 50 / 80 / 100% lines
    labelled, each bar saying its share and status."""
    used, forecast = _num(budgets, "used"), _num(budgets, "forecast_used")
    top = max([1.1, *[(v or 0) * 1.08 for v in [*used, *forecast]]])
    fig = _figure("Budgets: month to date over the month-end forecast (grey)",
                  barmode="overlay", bargap=0.35, showlegend=False,
                  xaxis={"title": "share of the monthly budget", "tickformat": ".0%", "range": [0, top],
                         "tickvals": [t for t in (0, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0) if t <= top]},
                  margin={"l": 10, "r": 10, "t": 70, "b": 10})
    names = [short(n, 22) for n in budgets["budget"].to_list()]
    fig.add_bar(y=names, x=forecast, orientation="h", name="month-end forecast", marker={"color": "rgba(95,99,104,0.25)"},
                hovertemplate="%{y}: forecast %{x:.0%} of the budget<extra></extra>")
    status = ["over budget" if (u or 0) >= 1 else "at risk" if (f or 0) >= 1 or (u or 0) >= 0.8 else "on track"
              for u, f in zip(used, forecast, strict=True)]
    fig.add_bar(y=names, x=used, orientation="h", name="month to date", width=0.45,
                marker={"color": [palette.CRITICAL if s == "over budget" else palette.WARNING if s == "at risk"
                                  else palette.GOOD for s in status]},
                text=[f"{fmt.percent(u, 0)} · {s}" for u, s in zip(used, status, strict=True)],
                textposition="outside", cliponaxis=False,
                hovertemplate="%{y}: %{x:.0%} of the budget used<extra></extra>")
    for level, colour in ((0.5, palette.NEUTRAL), (0.8, palette.WARNING), (1.0, palette.CRITICAL)):
        fig.add_vline(x=level, line={"color": colour, "dash": "dot", "width": 1})
        fig.add_annotation(x=level, y=1, yref="paper", text=fmt.percent(level, 0), showarrow=False, yanchor="bottom",
                           font={"size": 11, "color": colour})
    fig.update_layout(height=150 + 50 * len(names))
    return fig


def heatmap(cells: pl.DataFrame) -> go.Figure:
    """Spend by weekday (rows) and UTC hour (columns)."""
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    grid = [[0.0] * 24 for _ in days]
    for weekday, hour, cost in zip(cells["weekday"].to_list(), cells["hour"].to_list(), _num(cells, "cost_usd"),
                                   strict=True):
        grid[int(weekday) - 1][int(hour)] = cost or 0.0
    fig = _figure("When the money goes: API spend by weekday and hour (UTC)", xaxis={"title": "hour of day", "dtick": 2})
    fig.add_heatmap(z=grid, x=list(range(24)), y=days, colorscale="YlOrRd",
                    colorbar={"tickformat": money_axis([max(map(max, grid))])["tickformat"]},
                    hovertemplate=f"%{{y}} %{{x}}:00 UTC<br>%{{z:{MONEY_HOVER}}}<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    return fig


def movers(frame: pl.DataFrame, *, dimension: str) -> go.Figure:
    """Change in spend against the previous period, per value (green down, red up)."""
    rows = frame.sort("delta_usd")
    deltas = _num(rows, "delta_usd")
    low, high = min([0.0, *(d or 0 for d in deltas)]), max([0.0, *(d or 0 for d in deltas)])
    pad = (high - low) * 0.22 or 1.0  # room for the labels outside the bars
    fig = _figure(f"Top movers by {dimension} vs the previous period",
                  xaxis={"title": "change in API spend", "range": [low - (pad if low < 0 else 0), high + pad],
                         **money_axis(deltas)})
    fig.add_bar(y=[short(k) for k in rows["key"].to_list()], x=deltas, orientation="h",
                marker_color=[palette.CRITICAL if (d or 0) > 0 else palette.GOOD for d in deltas],
                text=[fmt.signed_money(d, places=None) for d in deltas], textposition="outside", cliponaxis=False,
                customdata=[f"{fmt.money(b)} → {fmt.money(a)}" for a, b in
                            zip(rows["cost_usd"].to_list(), rows["previous_cost_usd"].to_list(), strict=True)],
                hovertemplate="%{y}: %{customdata}<extra></extra>")
    fig.update_layout(height=max(260, 70 + 30 * rows.height))
    return fig


def bars_by(frame: pl.DataFrame, *, value: str, dimension: str, title: str, money: bool = True,
            infra: str | None = None, n: int = TOP_N) -> go.Figure:
    """Horizontal bars per `key`, largest on top, the top `n` plus "others"; with `infra` (money),
    each bar stacks API cost and self-hosted GPU cost and the bars rank by their total. Clicking a
    bar selects its key."""
    rows = frame.with_columns(pl.col("key").cast(pl.String))
    rank = value
    if infra:
        rows = rows.with_columns((pl.col(value).cast(pl.Float64) + pl.col(infra).cast(pl.Float64).fill_null(0))
                                 .alias("__total"))
        rank = "__total"
    rows = top_with_others(rows, key="key", value=rank, n=n).reverse()
    keys = rows["key"].to_list()
    labels = [short(k) for k in keys]
    fig = _figure(title, barmode="stack", clickmode="event+select", dragmode=False,
                  xaxis=money_axis(_num(rows, rank)) if money else {"tickformat": "~s"},
                  legend={"orientation": "h", "y": -0.12, "x": 0, "yanchor": "top"})
    hover = MONEY_HOVER if money else ",.0f"
    if infra:  # two parts of one total: one colour each, so the legend says what a colour is
        colours: list[str] | str = palette.PROVIDERS["openai"]
    else:
        by_key = palette.color_map(k for k in keys if not k.startswith(OTHERS))
        colours = [palette.NEUTRAL if k.startswith(OTHERS) else by_key[k] for k in keys]
    fig.add_bar(y=labels, x=_num(rows, value), orientation="h", name="API calls" if infra else dimension,
                marker_color=colours, customdata=keys, showlegend=bool(infra),
                hovertemplate=f"%{{customdata}}<br>%{{x:{hover}}}" + (" API" if infra else "") + "<extra></extra>")
    if infra:
        fig.add_bar(y=labels, x=_num(rows, infra), orientation="h", name="self-hosted GPU time",
                    marker={"color": palette.PROVIDERS["self_hosted"]}, customdata=keys,
                    hovertemplate=f"%{{customdata}}<br>%{{x:{MONEY_HOVER}}} self-hosted GPUs<extra></extra>")
    fig.update_layout(height=max(280, 90 + 26 * len(keys)))
    return fig


# ---- distributions -----------------------------------------------------------------------------


def token_boxes(quantiles: pl.DataFrame, *, title: str, n: int = TOP_N) -> go.Figure:
    """Box plots from precomputed quantiles: box p25–p75, median, whiskers p5–p99, max as ×; the
    `n` keys with most calls (or largest medians without a call count)."""
    rank = "calls" if "calls" in quantiles.columns else "p50"
    rows = quantiles.sort(rank, descending=True, nulls_last=True).head(n).sort("p50")
    fig = _figure(title, xaxis={"title": "tokens per call (log)", **log_ticks(_num(rows, "p5") + _num(rows, "max"))})
    colours = palette.color_map(rows["key"].cast(pl.String).to_list())
    for row in rows.iter_rows(named=True):
        key = str(row["key"])
        label = short(key)
        fig.add_box(y=[label], q1=[row["p25"]], median=[row["p50"]], q3=[row["p75"]], lowerfence=[row["p5"]],
                    upperfence=[row["p99"]], mean=[row["mean"]], name=label, orientation="h",
                    marker_color=colours[key], showlegend=False, boxpoints=False)
        fig.add_scatter(y=[label], x=[row["max"]], mode="markers", marker={"symbol": "x", "color": colours[key]},
                        showlegend=False, hovertemplate=f"{key} max %{{x:,.0f}}<extra></extra>")
    fig.update_layout(height=max(260, 70 + 28 * rows.height))
    return fig


def token_histogram(bins: pl.DataFrame, *, title: str, columns: int = 3) -> go.Figure:
    """Calls per log-width token bin, one small panel per key (shared log x axis) instead of
    translucent bars piled on each other."""
    keys = [k for k in bins["key"].unique(maintain_order=True).to_list()] if bins.height else []
    rows = max(1, math.ceil(len(keys) / columns))
    fig = make_subplots(rows=rows, cols=columns, shared_xaxes=True, subplot_titles=[short(k, 24) for k in keys],
                        vertical_spacing=0.16 if rows > 1 else 0.2, horizontal_spacing=0.06)
    fig.update_annotations(font={"size": 12})
    fig.update_layout(title={"text": title, "font": {"size": 15}}, **{**LAYOUT, "showlegend": False},
                      height=120 + 170 * rows)
    colours = palette.color_map(str(k) for k in keys)
    edges: list[float] = []
    for i, key in enumerate(keys):
        part = bins.filter((pl.col("key") == key) & (pl.col("bin_lo") > 0))
        lo, hi = part["bin_lo"].to_list(), part["bin_hi"].to_list()
        edges += lo + hi
        fig.add_bar(x=[(a * b) ** 0.5 for a, b in zip(lo, hi, strict=True)], y=part["calls"].to_list(),
                    width=[b - a for a, b in zip(lo, hi, strict=True)], name=str(key), marker_color=colours[str(key)],
                    hovertemplate=f"{key}<br>%{{x:,.0f}} tokens: %{{y:,}} calls<extra></extra>",
                    row=i // columns + 1, col=i % columns + 1)
    fig.update_xaxes(**log_ticks(edges), automargin=True)
    fig.update_yaxes(automargin=True, tickformat="~s")
    fig.update_xaxes(title_text="tokens per call (log)", row=rows, col=min(2, columns))
    return fig


# ---- lines -------------------------------------------------------------------------------------


def lines(frame: pl.DataFrame, *, y: str, title: str, y_title: str, key: str = "key", percent: bool = False,
          thresholds: Sequence[tuple[float, str, str]] = (), band: tuple[float, float] | None = None,
          markers: pl.DataFrame | None = None, log_y: bool = False, dash: str | None = None,
          fig: go.Figure | None = None, suffix: str = "", scale: float = 1.0,
          y_range: tuple[float, float] | None = None, y_format: str = ",.3~f") -> go.Figure:
    """One line per `key` over `bucket`; horizontal `thresholds` (value, label, colour), a shaded
    healthy `band`, and vertical `markers` (columns at, text); values are multiplied by `scale`."""
    names = frame[key].unique(maintain_order=True).to_list() if key in frame.columns else []
    values = [v * scale if v is not None else None for v in _num(frame, y)] if frame.height and y in frame.columns \
        else []
    if fig is None:
        axis: dict[str, object] = {"title": y_title, "range": y_range}
        if percent:
            axis["tickformat"] = ".0%"
        elif log_y:
            axis.update(log_ticks([*values, *(t[0] for t in thresholds)]))
        fig = _figure(title, yaxis=axis)
    if band:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor=palette.GOOD, opacity=0.08, line_width=0,
                      annotation_text="healthy", annotation_position="top left")
    colours = palette.color_map(str(n) for n in names)
    shown = ".1%" if percent else y_format
    for name in names:
        part = frame.filter(pl.col(key) == name).sort("bucket")
        points = [v * scale if v is not None else None for v in _num(part, y)]
        fig.add_scatter(x=part["bucket"].to_list(), y=points, mode="lines", name=f"{short(name, 40)}{suffix}",
                        meta=str(name), line={"color": colours[str(name)], "dash": dash}, connectgaps=False,
                        hovertemplate=f"{name}{suffix}<br>%{{x}}<br>%{{y:{shown}}}<extra></extra>")
    for value, text, colour in thresholds:
        _hline(fig, value, text, colour, log=log_y)
    if markers is not None and markers.height:
        _markers(fig, markers)
    return fig


def _markers(fig: go.Figure, markers: pl.DataFrame) -> None:
    """Vertical release markers; markers closer than a day are one line with one label (the
    texts joined in its hover), labels staggered so neighbours do not overlap."""
    rows = markers.sort("at").to_dicts()
    groups: list[list[dict]] = []
    for row in rows:
        if groups and (row["at"] - groups[-1][-1]["at"]).total_seconds() < 86_400:
            groups[-1].append(row)
        else:
            groups.append([row])
    for i, group in enumerate(groups):
        at = group[0]["at"]
        label = short(group[0]["text"], 24) if len(group) == 1 else f"{len(group)} prompt changes"
        fig.add_vline(x=at, line={"color": palette.NEUTRAL, "dash": "dash", "width": 1})
        fig.add_annotation(x=at, y=1.0 - 0.07 * (i % 3), yref="paper", text=label, showarrow=False, xanchor="left",
                           yanchor="top", font={"size": 10, "color": palette.NEUTRAL}, bgcolor="rgba(255,255,255,0.8)",
                           hovertext="<br>".join(f"{g['at']:%m-%d %H:%M}: {g['text']}" for g in group))


def small_multiples(frame: pl.DataFrame, *, facet: str, y: str, title: str, y_title: str,
                    series: str | None = None, extra: tuple[str, str] | None = None, scale: float = 1.0,
                    percent: bool = False, log_y: bool = False, thresholds: Sequence[tuple[float, str, str]] = (),
                    columns: int = 2, y_range: tuple[float, float] | None = None, y_format: str = ",.3~f") -> go.Figure:
    """One small panel per `facet` value (shared time axis, same y scale) with a line per `series`
    value inside it (or one line), an optional dotted second measure `extra` = (column, name) and
    the `thresholds` drawn in every panel: comparable at a glance where one chart would tangle."""
    facets = frame[facet].unique(maintain_order=True).to_list() if frame.height else []
    rows = max(1, math.ceil(len(facets) / columns))
    fig = make_subplots(rows=rows, cols=columns, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[short(f, 30) for f in facets],
                        vertical_spacing=min(0.12, 0.5 / rows) if rows > 1 else 0.2, horizontal_spacing=0.04)
    fig.update_annotations(font={"size": 12})
    fig.update_layout(title={"text": title, "font": {"size": 15}}, **{**LAYOUT, "showlegend": bool(series or extra)},
                      height=110 + 170 * rows)
    values = [v * scale for v in _num(frame, y) if v is not None] if frame.height else []
    names = frame[series].unique(maintain_order=True).to_list() if series and frame.height else []
    colours = palette.color_map(str(n) for n in names) if names else {}
    shown = ".1%" if percent else y_format
    seen: set[str] = set()
    for i, value in enumerate(facets):
        row, col = i // columns + 1, i % columns + 1
        part = frame.filter(pl.col(facet) == value)
        for name in (names or [None]):
            lines_of = part.filter(pl.col(series) == name) if series else part
            lines_of = lines_of.sort("bucket")
            label = str(name) if name is not None else y_title
            colour = colours.get(str(name), palette.color(str(value))) if series else palette.color(str(value))
            fig.add_scatter(x=lines_of["bucket"].to_list(), y=[v * scale if v is not None else None
                                                                for v in _num(lines_of, y)],
                            mode="lines", name=short(label), legendgroup=label, showlegend=bool(series)
                            and label not in seen, line={"color": colour, "width": 1.5}, connectgaps=False,
                            hovertemplate=f"{value} {label if series else ''}<br>%{{x}}<br>%{{y:{shown}}}<extra></extra>",
                            row=row, col=col)
            seen.add(label)
            if extra:
                column, extra_name = extra
                fig.add_scatter(x=lines_of["bucket"].to_list(), y=[v * scale if v is not None else None
                                                                    for v in _num(lines_of, column)],
                                mode="lines", name=extra_name, legendgroup=extra_name, showlegend=extra_name not in seen,
                                line={"color": palette.NEUTRAL, "width": 1, "dash": "dot"}, connectgaps=False,
                                hovertemplate=f"{value} {extra_name}<br>%{{x}}<br>%{{y:{shown}}}<extra></extra>",
                                row=row, col=col)
                seen.add(extra_name)
        for level, text, colour in thresholds:
            fig.add_hline(y=level, line={"color": colour, "dash": "dot", "width": 1}, row=row, col=col)
            if col == columns or i == len(facets) - 1:
                ref = "" if i == 0 else str(i + 1)
                fig.add_annotation(x=1, xref=f"x{ref} domain", y=math.log10(level) if log_y else level,
                                   yref=f"y{ref}", text=text, showarrow=False, xanchor="right", yanchor="bottom",
                                   font={"size": 10, "color": colour})
    axis: dict[str, object] = {"automargin": True, "range": y_range}
    if percent:
        axis["tickformat"] = ".0%"
    elif log_y:
        axis.update(log_ticks([*values, *(t[0] for t in thresholds)]))
    fig.update_yaxes(**axis)
    fig.update_xaxes(automargin=True)
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text=y_title, row=r, col=1)
    return fig


def mean_vs_p99(frame: pl.DataFrame, *, dimension: str, labelled: int = 5) -> go.Figure:
    """Each key at (mean, p99) of end-to-end latency on log-log axes: far above the diagonal is a
    tail the mean hides. Only the `labelled` widest tails carry a name on the chart (the rest in
    their hover), so names never pile up in the crowd near the diagonal."""
    rows = frame.filter(pl.col("latency_mean_ms").is_not_null() & pl.col("latency_p99_ms").is_not_null())
    keys = rows["key"].cast(pl.String).to_list()
    mean = [v / 1000 for v in _num(rows, "latency_mean_ms")]
    p99 = [v / 1000 for v in _num(rows, "latency_p99_ms")]
    every = [*mean, *p99, 30.0]
    fig = _figure(f"Mean vs p99 latency per {dimension}: the tail the mean hides",
                  xaxis={"title": "mean latency (s, log)", **log_ticks(every)},
                  yaxis={"title": "p99 latency (s, log)", **log_ticks(every)})
    colours = palette.color_map(keys)
    # name only the tails that stand out: p99 ≥ 30 s, or a p99 / mean ratio twice the typical one
    ratios = [p / m if m else 0.0 for p, m in zip(p99, mean, strict=True)]
    typical = sorted(ratios)[len(ratios) // 2] if ratios else 0.0
    ratio = [i for i in sorted(range(len(keys)), key=lambda i: -ratios[i])
             if p99[i] >= 30 or ratios[i] >= 2 * typical][:labelled]
    positions = ("top center", "bottom center", "middle right", "middle left", "top right")
    fig.add_scatter(x=mean, y=p99, mode="markers", marker={"size": 11, "color": [colours[k] for k in keys]},
                    customdata=keys, showlegend=False,
                    hovertemplate="%{customdata}<br>mean %{x:,.2f} s · p99 %{y:,.2f} s<extra></extra>")
    for n, i in enumerate(ratio):
        fig.add_scatter(x=[mean[i]], y=[p99[i]], mode="text", text=[short(keys[i], 20)], showlegend=False,
                        textposition=positions[n % len(positions)], textfont={"size": 10}, hoverinfo="skip")
    low, high = min(every), max(every)
    fig.add_scatter(x=[low, high], y=[low, high], mode="lines", line={"color": palette.NEUTRAL, "dash": "dot"},
                    name="p99 = mean", showlegend=False, hoverinfo="skip")
    _hline(fig, 30, "p99 30 s", palette.CRITICAL, log=True)
    return fig


# ---- routing -----------------------------------------------------------------------------------


def stacked_steps(steps: pl.DataFrame) -> go.Figure:
    """Cost per routing policy, stacked by cascade step and model."""
    fig = _figure("Cost of each cascade step", barmode="stack",
                  yaxis={"title": "API cost", **money_axis(_num(steps, "cost_usd"))})
    for row in steps.sort("cascade_step").iter_rows(named=True):
        fig.add_bar(x=[row["routing_policy"]], y=[float(row["cost_usd"])],
                    name=f"step {row['cascade_step']}: {short(row['model'], 22)}", marker_color=palette.color(row["model"]),
                    hovertemplate=f"{row['routing_policy']} step {row['cascade_step']} ({row['model']})<br>"
                                  f"{fmt.money(row['cost_usd'])}<extra></extra>")
    return fig


def frontier(frame: pl.DataFrame) -> go.Figure:
    """Actual cascade cost vs the same requests all on the frontier model, per policy."""
    actual, everything = _num(frame, "actual_cost_usd"), _num(frame, "all_frontier_cost_usd")
    fig = _figure("Cascade vs everything on the frontier model", barmode="group",
                  yaxis={"title": "API cost", **money_axis([*actual, *everything]),
                         "range": [0, max([0.0, *(v or 0 for v in everything), *(v or 0 for v in actual)]) * 1.2]})
    policies = frame["routing_policy"].to_list()
    fig.add_bar(x=policies, y=actual, name="actual (cascade)", marker_color=palette.GOOD,
                text=[fmt.money(v) for v in actual], textposition="outside", cliponaxis=False)
    fig.add_bar(x=policies, y=everything, name="all on the frontier model", marker_color=palette.NEUTRAL,
                text=[f"{fmt.money(v)} ({m})" for v, m in zip(everything, frame["frontier_model"].to_list(), strict=True)],
                textposition="outside", cliponaxis=False)
    return fig


def outliers(calls: pl.DataFrame, *, runaway: int = 100_000) -> go.Figure:
    """The largest single-call reasoning counts over time, against the runaway line."""
    values = _num(calls, "reasoning_tokens") if calls.height else []
    fig = _figure("Single calls with the most reasoning tokens",
                  yaxis={"title": "reasoning tokens (log)", **log_ticks([*values, runaway])})
    for model in calls["model"].unique(maintain_order=True).to_list():
        part = calls.filter(pl.col("model") == model)
        fig.add_scatter(x=part["ts"].to_list(), y=part["reasoning_tokens"].to_list(), mode="markers", name=model,
                        marker={"size": 10, "color": palette.color(model)}, text=part["route"].to_list(),
                        hovertemplate="%{text}<br>%{y:,} reasoning tokens<extra></extra>")
    _hline(fig, runaway, f"runaway {fmt.count(runaway)}", palette.CRITICAL, log=True)
    return fig


def threshold_curve(curve: pl.DataFrame, *, recommended: float, current: float | None, title: str) -> go.Figure:
    """Router threshold → escalation rate (left axis) and monthly cost (right axis), with the healthy
    30–50% escalation band, the recommended threshold and the current one marked."""
    costs = _num(curve, "monthly_cost_usd")
    fig = _figure(title, xaxis={"title": "threshold (score below it escalates)", "range": [0, 1]},
                  yaxis={"title": "escalation rate", "tickformat": ".0%", "range": [0, 1]},
                  yaxis2={"title": "USD / month", "overlaying": "y", "side": "right", "showgrid": False,
                          "automargin": True, **money_axis(costs)})
    fig.add_hrect(y0=0.3, y1=0.5, fillcolor=palette.GOOD, opacity=0.12, line_width=0,
                  annotation_text="healthy 30–50%", annotation_position="top left")
    x = curve["threshold"].to_list()
    fig.add_scatter(x=x, y=curve["escalation_rate"].to_list(), name="escalation rate", mode="lines",
                    line={"color": palette.WARNING}, hovertemplate="threshold %{x:.2f}: %{y:.0%}<extra></extra>")
    fig.add_scatter(x=x, y=costs, name="monthly cost", mode="lines", yaxis="y2",
                    line={"color": palette.NEUTRAL, "dash": "dot"},
                    hovertemplate=f"threshold %{{x:.2f}}: %{{y:{MONEY_HOVER}}} / month<extra></extra>")
    # labels on the far side of each line, so two close thresholds do not print over each other
    lower = current is not None and current < recommended
    sides = {"recommended": "top right" if lower else "top left", "current": "top left" if lower else "bottom right"}
    for value, label, color in ((recommended, "recommended", palette.GOOD), (current, "current", palette.CRITICAL)):
        if value is not None:
            fig.add_vline(x=value, line_color=color, line_dash="dash", annotation_text=f"{label} {value:.2f}",
                          annotation_position=sides[label], annotation_font_color=color)
    return fig


# ---- self-hosted ---------------------------------------------------------------------------------


def breakeven(curve: pl.DataFrame, *, current_calls: float | None, crossing: float | None,
              api_label: str) -> go.Figure:
    """Monthly cost of the API and of self-hosting against monthly calls (log-log)."""
    calls, api, hosted = curve["calls"].to_list(), curve["api_usd"].to_list(), curve["self_hosted_usd"].to_list()
    fig = _figure("API vs self-hosted: monthly cost by call volume",
                  xaxis={"title": "calls per month (log)", **log_ticks(calls)},
                  yaxis={"title": "USD per month (log)", **log_ticks([*api, *hosted], money=True)})
    fig.add_scatter(x=calls, y=api, mode="lines", name=short(api_label, 40),
                    line={"color": palette.PROVIDERS["openai"], "width": 3},
                    hovertemplate=f"%{{x:,.0f}} calls: %{{y:{MONEY_HOVER}}}<extra>API</extra>")
    fig.add_scatter(x=calls, y=hosted, mode="lines", name="self-hosted (GPUs to fit the volume)",
                    line={"color": palette.PROVIDERS["self_hosted"], "width": 3, "shape": "hv"},
                    hovertemplate=f"%{{x:,.0f}} calls: %{{y:{MONEY_HOVER}}}<extra>self-hosted</extra>")
    if current_calls:
        _vline(fig, current_calls, f"measured now: {fmt.compact(current_calls)}", palette.NEUTRAL, log=True)
    if crossing:
        _vline(fig, crossing, f"break-even: {fmt.compact(crossing)}", palette.CRITICAL, log=True, y=0.9)
    return fig


def prompt_markers(versions: pl.DataFrame, *, limit: int = 12) -> pl.DataFrame:
    """Prompt releases to mark on a time axis (columns at, text): a version of a route first seen
    after another version of that route, and a version last seen before another one took over."""
    if versions.is_empty():
        return pl.DataFrame(schema={"at": pl.Datetime("ms", "UTC"), "text": pl.String})
    spans = versions.with_columns(pl.col("first_seen").min().over("key").alias("route_first"),
                                  pl.col("last_seen").max().over("key").alias("route_last"))
    started = spans.filter(pl.col("first_seen") > pl.col("route_first")).select(
        pl.col("first_seen").alias("at"), pl.concat_str("key", pl.lit(" → "), "prompt_version").alias("text"))
    ended = spans.filter(pl.col("last_seen") < pl.col("route_last")).select(
        pl.col("last_seen").alias("at"), pl.concat_str("key", pl.lit(" "), "prompt_version", pl.lit(" ends")).alias("text"))
    return pl.concat([started, ended]).sort("at").head(limit)


# ---- calls, sessions and incidents -------------------------------------------------------------


def session_growth(turns: pl.DataFrame) -> go.Figure:
    """A session turn by turn: input tokens per call (bars; a history re-sent whole grows every
    turn) and the session's cost so far (line, right axis)."""
    cumulative = _num(turns, "cumulative_cost_usd")
    fig = _figure("Input tokens per turn and the session's cost so far",
                  xaxis={"title": "turn", "dtick": 1 if turns.height <= 30 else None},
                  yaxis={"title": "input tokens", "tickformat": "~s", "rangemode": "tozero"},
                  yaxis2={"title": "cost so far", "overlaying": "y", "side": "right", "showgrid": False,
                          "automargin": True, "rangemode": "tozero", **money_axis(cumulative)},
                  legend={"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    turn = turns["turn"].to_list()
    fig.add_bar(x=turn, y=turns["input_tokens"].to_list(), name="input tokens", marker_color=palette.NEUTRAL,
                customdata=[fmt.count(g) for g in turns["input_growth_tokens"].to_list()],
                hovertemplate="turn %{x}: %{y:,} input tokens (+%{customdata})<extra></extra>")
    fig.add_scatter(x=turn, y=cumulative, name="cost so far", yaxis="y2", mode="lines+markers",
                    line={"color": palette.CRITICAL}, hovertemplate=f"turn %{{x}}: %{{y:{MONEY_HOVER}}}<extra></extra>")
    return fig


SEVERITY_LEVEL = {"ok": 0, "resolved": 0, "warning": 1, "critical": 2}


def incident_timeline(events: pl.DataFrame, *, until: datetime) -> go.Figure:
    """An incident's severity over time as steps (ok → warning → critical → resolved), each
    transition a labelled point (opened, escalated, acknowledged …)."""
    rows = events.sort("at").to_dicts()
    levels = [SEVERITY_LEVEL.get(str(r.get("to_state") or r.get("severity")), SEVERITY_LEVEL.get(str(r["severity"]), 0))
              for r in rows]
    fig = _figure("Timeline", yaxis={"tickvals": [0, 1, 2], "ticktext": ["ok", "warning", "critical"],
                                     "range": [-0.4, 2.6], "title": "severity"}, height=260,
                  margin={"l": 10, "r": 10, "t": 48, "b": 10})
    if not rows:
        return fig
    xs = [r["at"] for r in rows] + [until]
    fig.add_scatter(x=xs, y=levels + levels[-1:], mode="lines", line={"shape": "hv", "color": palette.NEUTRAL},
                    showlegend=False, hoverinfo="skip")
    colours = [palette.CRITICAL if lv == 2 else palette.WARNING if lv == 1 else palette.GOOD for lv in levels]
    fig.add_scatter(x=[r["at"] for r in rows], y=levels, mode="markers+text", marker={"size": 11, "color": colours},
                    text=[str(r["kind"]) for r in rows], textposition="top center", showlegend=False,
                    customdata=[f"{r['kind']} · {fmt.timestamp(r['at'])}" + (f" · by {r['actor']}" if r.get("actor") else "")
                                for r in rows],
                    hovertemplate="%{customdata}<extra></extra>")
    return fig
