"""Plotly figures of the dashboards, built from the API's frames. Money turns into floats here and
nowhere earlier; colours come from `palette`; every figure carries its thresholds (SLOs, alert
lines, healthy bands) so a reader sees at a glance whether a line is in trouble.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go
import polars as pl

from dashboards import palette

LOG_TICKS = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000]
LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend": {"orientation": "h", "y": -0.18},
          "hovermode": "closest", "template": "plotly_white"}


def _num(frame: pl.DataFrame, column: str) -> list[float]:
    """A column as floats (Decimal money becomes float only for drawing)."""
    return frame[column].cast(pl.Float64).to_list()


def _hline(fig: go.Figure, value: float, text: str, colour: str, *, log: bool = False) -> None:
    """A dotted threshold line with its label. On a log axis a shape takes data values but an
    annotation takes log10 units, so the label is placed separately there."""
    fig.add_hline(y=value, line={"color": colour, "dash": "dot"})
    fig.add_annotation(y=math.log10(value) if log else value, x=1, xref="paper", yref="y", text=text,
                       showarrow=False, xanchor="right", yanchor="bottom", font={"size": 11, "color": colour})


def _vline(fig: go.Figure, value: float, text: str, colour: str, *, log: bool = False) -> None:
    """A dashed vertical marker with its label (log10 units for the label on a log axis)."""
    fig.add_vline(x=value, line={"color": colour, "dash": "dash"})
    fig.add_annotation(x=math.log10(value) if log else value, y=1, yref="paper", xref="x", text=text,
                       showarrow=False, xanchor="left", yanchor="top", font={"size": 11, "color": colour})


def _figure(title: str, **layout: object) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title={"text": title, "font": {"size": 15}}, **{**LAYOUT, **layout})
    return fig


def stacked_bars(series: pl.DataFrame, *, title: str, y_title: str, money: bool = True) -> go.Figure:
    """`bucket`, `key`, `value` stacked by key (largest total at the bottom): bars for a few buckets,
    stacked areas when there are too many for bars to read."""
    fig = _figure(title, barmode="stack", yaxis={"title": y_title, "tickprefix": "$" if money else ""})
    if series.is_empty():
        return fig
    keys = (series.group_by("key").agg(pl.col("value").cast(pl.Float64).sum()).sort("value", descending=True)["key"]
            .to_list()) if "key" in series.columns else [None]
    areas = series["bucket"].n_unique() > 48
    colours = palette.color_map(k for k in keys if k is not None)
    for key in keys:
        part = (series.filter(pl.col("key") == key) if key is not None else series).sort("bucket")
        colour = colours[key] if key else palette.NEUTRAL
        if areas:
            fig.add_scatter(x=part["bucket"].to_list(), y=_num(part, "value"), name=key or y_title, mode="lines",
                            stackgroup="one", line={"width": 0, "color": colour}, fillcolor=colour)
        else:
            fig.add_bar(x=part["bucket"].to_list(), y=_num(part, "value"), name=key or y_title, marker_color=colour)
    return fig


def cumulative_spend(daily: pl.DataFrame, *, month_start: datetime, month_end: datetime, forecast_usd: float,
                     budget_usd: float | None = None, title: str = "Month to date and forecast") -> go.Figure:
    """Cumulative spend per day of the month, a dashed forecast to the month end, the budget line."""
    fig = _figure(title, yaxis={"title": "USD", "tickprefix": "$"}, xaxis={"range": [month_start, month_end]})
    if not daily.is_empty():
        days = daily.sort("bucket")
        cumulative = days["value"].cast(pl.Float64).cum_sum().to_list()
        fig.add_scatter(x=days["bucket"].to_list(), y=cumulative, mode="lines+markers", name="spent",
                        line={"color": palette.NEUTRAL, "width": 3})
        fig.add_scatter(x=[days["bucket"][-1], month_end], y=[cumulative[-1], forecast_usd], mode="lines",
                        name="forecast", line={"color": palette.NEUTRAL, "dash": "dash"})
    if budget_usd:
        _hline(fig, budget_usd, "budget", palette.CRITICAL)
    return fig


def budget_bars(budgets: pl.DataFrame) -> go.Figure:
    """Per budget: month to date and forecast as shares of the budget, with the 50/80/100% lines."""
    fig = _figure("Budgets: month to date and month-end forecast", barmode="overlay",
                  xaxis={"title": "share of the monthly budget", "tickformat": ".0%"})
    names = budgets["budget"].to_list()
    fig.add_bar(y=names, x=budgets["forecast_used"].to_list(), orientation="h", name="forecast",
                marker={"color": "rgba(95,99,104,0.25)"})
    used = budgets["used"].to_list()
    fig.add_bar(y=names, x=used, orientation="h", name="month to date",
                marker={"color": [palette.CRITICAL if u >= 1 else palette.WARNING if u >= 0.8 else palette.GOOD
                                  for u in used]})
    for level, colour in ((0.5, palette.NEUTRAL), (0.8, palette.WARNING), (1.0, palette.CRITICAL)):
        fig.add_vline(x=level, line={"color": colour, "dash": "dot", "width": 1})
    fig.update_layout(height=120 + 45 * len(names))
    return fig


def heatmap(cells: pl.DataFrame) -> go.Figure:
    """Spend by weekday (rows) and UTC hour (columns)."""
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    grid = [[0.0] * 24 for _ in days]
    for weekday, hour, cost in zip(cells["weekday"].to_list(), cells["hour"].to_list(), _num(cells, "cost_usd"),
                                   strict=True):
        grid[int(weekday) - 1][int(hour)] = cost
    fig = _figure("When the money goes: spend by weekday and hour (UTC)", xaxis={"title": "hour of day", "dtick": 2})
    fig.add_heatmap(z=grid, x=list(range(24)), y=days, colorscale="YlOrRd", colorbar={"tickprefix": "$"},
                    hovertemplate="%{y} %{x}:00 UTC<br>$%{z:,.2f}<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    return fig


def movers(frame: pl.DataFrame, *, dimension: str) -> go.Figure:
    """Change in spend against the previous period, per value (green down, red up)."""
    rows = frame.sort("delta_usd")
    deltas = _num(rows, "delta_usd")
    fig = _figure(f"Top movers by {dimension} vs the previous period", xaxis={"title": "Δ USD", "tickprefix": "$"})
    fig.add_bar(y=rows["key"].to_list(), x=deltas, orientation="h",
                marker_color=[palette.CRITICAL if d > 0 else palette.GOOD for d in deltas],
                customdata=list(zip(_num(rows, "cost_usd"), _num(rows, "previous_cost_usd"), strict=True)),
                hovertemplate="%{y}: $%{customdata[1]:,.2f} → $%{customdata[0]:,.2f}<extra></extra>")
    return fig


def bars_by(frame: pl.DataFrame, *, value: str, dimension: str, title: str, money: bool = True) -> go.Figure:
    """Horizontal bars of `value` per `key`, largest on top; clicking a bar selects its key."""
    rows = frame.sort(value).tail(25)
    keys = rows["key"].cast(pl.String).to_list()
    colours = palette.color_map(keys)
    fig = _figure(title, xaxis={"tickprefix": "$" if money else ""}, clickmode="event+select", dragmode=False)
    fig.add_bar(y=keys, x=_num(rows, value), orientation="h", marker_color=[colours[k] for k in keys],
                customdata=keys, hovertemplate=f"{dimension}=%{{y}}<br>%{{x:,.4~f}}<extra></extra>")
    fig.update_layout(height=max(260, 60 + 24 * len(keys)))
    return fig


def token_boxes(quantiles: pl.DataFrame, *, title: str) -> go.Figure:
    """Box plots from precomputed quantiles: box p25–p75, median, whiskers p5–p99, max as a dot."""
    fig = _figure(title, xaxis={"type": "log", "title": "tokens per call"})
    rows = quantiles.sort("p50")
    colours = palette.color_map(rows["key"].cast(pl.String).to_list())
    for row in rows.iter_rows(named=True):
        key = str(row["key"])
        fig.add_box(y=[key], q1=[row["p25"]], median=[row["p50"]], q3=[row["p75"]], lowerfence=[row["p5"]],
                    upperfence=[row["p99"]], mean=[row["mean"]], name=key, orientation="h",
                    marker_color=colours[key], showlegend=False, boxpoints=False)
        fig.add_scatter(y=[key], x=[row["max"]], mode="markers", marker={"symbol": "x", "color": colours[key]},
                        showlegend=False, hovertemplate=f"{key} max %{{x:,}}<extra></extra>")
    fig.update_layout(height=max(260, 60 + 28 * rows.height))
    return fig


def token_histogram(bins: pl.DataFrame, *, title: str) -> go.Figure:
    """Calls per log-width token bin, one trace per key."""
    fig = _figure(title, barmode="overlay", xaxis={"type": "log", "title": "tokens per call"},
                  yaxis={"title": "calls"})
    keys = bins["key"].unique(maintain_order=True).to_list()
    colours = palette.color_map(str(k) for k in keys)
    for key in keys:
        part = bins.filter((pl.col("key") == key) & (pl.col("bin_lo") > 0))
        lo, hi = part["bin_lo"].to_list(), part["bin_hi"].to_list()
        fig.add_bar(x=[(a * b) ** 0.5 for a, b in zip(lo, hi, strict=True)], y=part["calls"].to_list(),
                    width=[b - a for a, b in zip(lo, hi, strict=True)], name=str(key), opacity=0.65,
                    marker_color=colours[str(key)])
    return fig


def lines(frame: pl.DataFrame, *, y: str, title: str, y_title: str, key: str = "key", percent: bool = False,
          thresholds: Sequence[tuple[float, str, str]] = (), band: tuple[float, float] | None = None,
          markers: pl.DataFrame | None = None, log_y: bool = False, dash: str | None = None,
          fig: go.Figure | None = None, suffix: str = "", scale: float = 1.0,
          y_range: tuple[float, float] | None = None) -> go.Figure:
    """One line per `key` over `bucket`; horizontal `thresholds` (value, label, colour), a shaded
    healthy `band`, and vertical `markers` (columns at, text); values are multiplied by `scale`."""
    fig = fig or _figure(title, yaxis={"title": y_title, "tickformat": ".0%" if percent else None,
                                       "type": "log" if log_y else None, "range": y_range,
                                       "tickvals": LOG_TICKS if log_y else None})
    if band:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor=palette.GOOD, opacity=0.08, line_width=0,
                      annotation_text="healthy", annotation_position="top left")
    names = frame[key].unique(maintain_order=True).to_list() if key in frame.columns else []
    colours = palette.color_map(str(n) for n in names)
    for name in names:
        part = frame.filter(pl.col(key) == name).sort("bucket")
        values = [v * scale if v is not None else None for v in _num(part, y)]
        fig.add_scatter(x=part["bucket"].to_list(), y=values, mode="lines", name=f"{name}{suffix}",
                        line={"color": colours[str(name)], "dash": dash}, connectgaps=False)
    for value, text, colour in thresholds:
        _hline(fig, value, text, colour, log=log_y)
    if markers is not None:
        for at, text in zip(markers["at"].to_list(), markers["text"].to_list(), strict=True):
            fig.add_vline(x=at, line={"color": palette.NEUTRAL, "dash": "dash", "width": 1})
            fig.add_annotation(x=at, y=1, yref="paper", text=text, showarrow=False, textangle=-90, xanchor="left",
                               yanchor="top", font={"size": 10, "color": palette.NEUTRAL})
    return fig


def mean_vs_p99(frame: pl.DataFrame, *, dimension: str, slo_ms: float | None = None) -> go.Figure:
    """Each key at (mean, p99) of end-to-end latency: far above the diagonal is a tail the mean hides."""
    fig = _figure(f"Mean vs p99 latency per {dimension}: the tail the mean hides",
                  xaxis={"title": "mean latency (s)"}, yaxis={"title": "p99 latency (s)"})
    keys = frame["key"].cast(pl.String).to_list()
    mean = [v / 1000 if v is not None else None for v in _num(frame, "latency_mean_ms")]
    p99 = [v / 1000 if v is not None else None for v in _num(frame, "latency_p99_ms")]
    colours = palette.color_map(keys)
    fig.add_scatter(x=mean, y=p99, mode="markers+text", text=keys, textposition="top center",
                    textfont={"size": 10}, marker={"size": 12, "color": [colours[k] for k in keys]}, showlegend=False)
    top = max([v for v in [*mean, *p99] if v is not None] or [1.0])
    fig.add_scatter(x=[0, top], y=[0, top], mode="lines", line={"color": palette.NEUTRAL, "dash": "dot"},
                    name="p99 = mean", showlegend=False)
    _hline(fig, 30, "p99 30 s", palette.CRITICAL)
    return fig


def stacked_steps(steps: pl.DataFrame) -> go.Figure:
    """Cost per routing policy, stacked by cascade step and model."""
    fig = _figure("Cost of each cascade step", barmode="stack", yaxis={"title": "USD", "tickprefix": "$"})
    for row in steps.iter_rows(named=True):
        fig.add_bar(x=[row["routing_policy"]], y=[float(row["cost_usd"])], name=f"step {row['cascade_step']}: {row['model']}",
                    marker_color=palette.color(row["model"]))
    return fig


def frontier(frame: pl.DataFrame) -> go.Figure:
    """Actual cascade cost vs the same requests all on the frontier model, per policy."""
    fig = _figure("Cascade vs everything on the frontier model", barmode="group",
                  yaxis={"title": "USD", "tickprefix": "$"})
    policies = frame["routing_policy"].to_list()
    fig.add_bar(x=policies, y=_num(frame, "actual_cost_usd"), name="actual (cascade)", marker_color=palette.GOOD)
    fig.add_bar(x=policies, y=_num(frame, "all_frontier_cost_usd"), name="all on the frontier model",
                marker_color=palette.NEUTRAL, text=frame["frontier_model"].to_list(), textposition="outside")
    return fig


def outliers(calls: pl.DataFrame, *, runaway: int = 100_000) -> go.Figure:
    """The largest single-call reasoning counts over time, against the runaway line."""
    fig = _figure("Single calls with the most reasoning tokens", yaxis={"type": "log", "title": "reasoning tokens"})
    for model in calls["model"].unique(maintain_order=True).to_list():
        part = calls.filter(pl.col("model") == model)
        fig.add_scatter(x=part["ts"].to_list(), y=part["reasoning_tokens"].to_list(), mode="markers", name=model,
                        marker={"size": 10, "color": palette.color(model)}, text=part["route"].to_list(),
                        hovertemplate="%{text}<br>%{y:,} reasoning tokens<extra></extra>")
    _hline(fig, runaway, f"{runaway:,}", palette.CRITICAL, log=True)
    return fig


def breakeven(curve: pl.DataFrame, *, current_calls: float | None, crossing: float | None,
              api_label: str) -> go.Figure:
    """Monthly cost of the API and of self-hosting against monthly calls (log-log)."""
    fig = _figure("API vs self-hosted: monthly cost by call volume", xaxis={"type": "log", "title": "calls per month"},
                  yaxis={"type": "log", "title": "USD per month", "tickprefix": "$"})
    fig.add_scatter(x=curve["calls"].to_list(), y=curve["api_usd"].to_list(), mode="lines", name=api_label,
                    line={"color": palette.PROVIDERS["openai"], "width": 3})
    fig.add_scatter(x=curve["calls"].to_list(), y=curve["self_hosted_usd"].to_list(), mode="lines",
                    name="self-hosted (GPUs to fit the volume)", line={"color": palette.PROVIDERS["self_hosted"],
                                                                        "width": 3, "shape": "hv"})
    if current_calls:
        _vline(fig, current_calls, "measured now", palette.NEUTRAL, log=True)
    if crossing:
        _vline(fig, crossing, "break-even", palette.CRITICAL, log=True)
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


def threshold_curve(curve: pl.DataFrame, *, recommended: float, current: float | None, title: str) -> go.Figure:
    """Router threshold → escalation rate (left axis) and monthly cost (right axis), with the healthy
    30–50% escalation band, the recommended threshold and the current one marked."""
    fig = _figure(title, xaxis={"title": "threshold (score below it escalates)", "range": [0, 1]},
                  yaxis={"title": "escalation rate", "tickformat": ".0%", "range": [0, 1]},
                  yaxis2={"title": "USD / month", "tickprefix": "$", "overlaying": "y", "side": "right",
                          "showgrid": False})
    fig.add_hrect(y0=0.3, y1=0.5, fillcolor=palette.GOOD, opacity=0.12, line_width=0)
    x = curve["threshold"].to_list()
    fig.add_scatter(x=x, y=curve["escalation_rate"].to_list(), name="escalation rate", mode="lines",
                    line={"color": palette.WARNING})
    fig.add_scatter(x=x, y=_num(curve, "monthly_cost_usd"), name="monthly cost", mode="lines", yaxis="y2",
                    line={"color": palette.NEUTRAL, "dash": "dot"})
    # labels on the far side of each line, so two close thresholds do not print over each other
    lower = current is not None and current < recommended
    sides = {"recommended": "top right" if lower else "top left", "current": "top left" if lower else "bottom right"}
    for value, label, color in ((recommended, "recommended", palette.GOOD), (current, "current", palette.CRITICAL)):
        if value is not None:
            fig.add_vline(x=value, line_color=color, line_dash="dash",
                          annotation_text=f"{label} {value:.2f}", annotation_position=sides[label],
                          annotation_font_color=color)
    return fig
