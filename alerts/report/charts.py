"""The report's Plotly charts as PNG bytes for inline e-mail images.

Kaleido 1.x renders through a headless Chromium it drives itself; `ChartRenderer` starts one
browser per process on first use (kaleido's sync server, never a download: the browser is
`report.browser_path`, else `$BROWSER_PATH`, else `chromium` on PATH; plotly.js comes from the
plotly package and MathJax is off, so nothing is fetched) and serialises calls to it. Money
becomes float only here, for drawing.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from alerts.report.errors import ChartsUnavailable
from alerts.report.model import WeeklyReport
from common import formatting as fmt

log = logging.getLogger(__name__)

WIDTH_PX = 640
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#94a3b8")
FONT = "Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class Chart:
    """One inline image: `name` names its file and Content-ID; `alt` is its text equivalent."""

    name: str
    title: str
    alt: str
    png: bytes


def find_browser(configured: Path | None) -> str:
    """The Chromium executable charts are drawn with; ChartsUnavailable when there is none."""
    candidates = [str(configured) if configured else None, os.environ.get("BROWSER_PATH"),
                  shutil.which("chromium"), shutil.which("chromium-browser")]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    raise ChartsUnavailable("no Chromium to draw charts with: install Debian's `chromium` "
                            "(apt-get install -y chromium) or set report.browser_path")


class ChartRenderer:
    """Plotly figure → PNG through one kaleido browser per process (started on first use)."""

    _lock = threading.Lock()
    _started_with: str | None = None

    def __init__(self, browser_path: Path | None = None) -> None:
        self.browser_path = browser_path

    def png(self, figure: go.Figure, *, width: int = WIDTH_PX, height: int = 300, scale: float = 2) -> bytes:
        """The figure as PNG bytes (`scale` × the CSS pixel size, for sharp images on HiDPI screens)."""
        import kaleido

        with ChartRenderer._lock:
            if ChartRenderer._started_with is None:
                path = find_browser(self.browser_path)
                kaleido.start_sync_server(n=1, timeout=60, mathjax=False, path=path, silence_warnings=True)
                ChartRenderer._started_with = path
                atexit.register(ChartRenderer.stop)
            result = kaleido.calc_fig_sync(figure, opts={"format": "png", "width": width, "height": height,
                                                         "scale": scale})
        if isinstance(result, BaseException):
            raise ChartsUnavailable(f"chart rendering failed: {result}") from result
        return bytes(result)

    @staticmethod
    def stop() -> None:
        """Close the browser (it is started again on the next chart)."""
        import kaleido

        with ChartRenderer._lock:
            if ChartRenderer._started_with is not None:
                kaleido.stop_sync_server(silence_warnings=True)
                ChartRenderer._started_with = None


def _layout(figure: go.Figure, *, height: int, title: str) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        height=height, width=WIDTH_PX, margin={"l": 56, "r": 16, "t": 44, "b": 40},
        font={"family": FONT, "size": 12, "color": "#1f2937"}, paper_bgcolor="white", plot_bgcolor="white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
        colorway=list(PALETTE),
    )
    figure.update_yaxes(gridcolor="#e5e7eb", zerolinecolor="#9ca3af")
    return figure


def daily_spend_figure(report: WeeklyReport) -> go.Figure:
    """Stacked daily spend of the week (by team, or by route in a team's report) with last week's
    daily total as a line on the same weekdays."""
    by = "team" if report.audience.team is None else "route"
    figure = go.Figure()
    daily = report.daily
    order: list[str] = []
    if daily.height:
        totals = daily.group_by("key").agg(pl.col("value").cast(pl.Float64).sum().alias("total"))
        order = totals.sort(["total", "key"], descending=[True, False])["key"].to_list()
    for key in order:
        rows = daily.filter(daily["key"] == key)
        figure.add_bar(x=[b.strftime("%a %d") for b in rows["bucket"].to_list()],
                       y=[float(v) for v in rows["value"].to_list()], name=str(key) or "(none)")
    before = report.daily_previous
    if before.height:
        figure.add_scatter(x=[(b + timedelta(days=7)).strftime("%a %d") for b in before["bucket"].to_list()],
                           y=[float(v) for v in before["value"].to_list()], name="last week (total)",
                           mode="lines+markers", line={"color": "#111827", "dash": "dot", "width": 2})
    figure.update_layout(barmode="stack")
    figure.update_xaxes(categoryorder="array",
                        categoryarray=[(report.week.start + timedelta(days=i)).strftime("%a %d") for i in range(7)])
    peak = daily.group_by("bucket").agg(pl.col("value").cast(pl.Float64).sum())["value"].max() if daily.height else 0
    figure.update_yaxes(tickformat=fmt.d3_money(peak))
    return _layout(figure, height=320, title=f"Daily spend by {by}")


def movers_figure(report: WeeklyReport) -> go.Figure | None:
    """Change in spend of the routes that moved most (green down, red up); None without movers."""
    movers = list(report.movers.get("route", ()))
    if not movers:
        return None
    movers.sort(key=lambda m: m.delta_usd)
    deltas = [float(m.delta_usd) for m in movers]
    figure = go.Figure(go.Bar(
        x=deltas, y=[m.key for m in movers], orientation="h",
        marker_color=["#dc2626" if d > 0 else "#16a34a" for d in deltas],
        text=[fmt.signed_money(d) for d in deltas], textposition="outside", cliponaxis=False,
    ))
    low, high = min(0.0, *deltas), max(0.0, *deltas)
    pad = (high - low) * 0.2 or 1.0  # room for the labels outside the bars, inside the plot
    figure.update_xaxes(tickformat=fmt.d3_money(max(abs(low), abs(high))), zeroline=True,
                        range=[low - (pad if low < 0 else 0), high + pad])
    figure.update_layout(showlegend=False)
    return _layout(figure, height=max(180, 60 + 34 * len(movers)), title="Biggest movers by route (vs last week)")


def budget_figure(report: WeeklyReport) -> go.Figure | None:
    """Month to date and month-end forecast against each budget; None when no team has one."""
    teams = [t for t in report.teams if t.budget_usd is not None]
    if not teams:
        return None
    names = [t.team for t in teams]
    figure = go.Figure()
    figure.add_bar(y=names, x=[float(t.month_to_date_usd) for t in teams], orientation="h", name="month to date",
                   marker_color=PALETTE[0])
    figure.add_bar(y=names, x=[float(t.forecast_usd - t.month_to_date_usd) for t in teams], orientation="h",
                   name="forecast to month end", marker_color="#93c5fd")
    figure.add_scatter(y=names, x=[float(t.budget_usd or 0) for t in teams], mode="markers", name="budget",
                       marker={"symbol": "line-ns-open", "size": 30, "color": "#dc2626",
                               "line": {"width": 4, "color": "#dc2626"}})
    figure.update_layout(barmode="stack")
    figure.update_xaxes(tickformat=fmt.d3_money(max(float(t.forecast_usd) for t in teams)))
    figure = _layout(figure, height=max(200, 110 + 40 * len(teams)), title=f"Budgets, {report.week.month_start:%B %Y}")
    figure.update_layout(legend={"y": -0.3}, margin={"b": 64})
    return figure


def render_charts(report: WeeklyReport, renderer: ChartRenderer) -> tuple[Chart, ...]:
    """Every chart the report has data for, drawn; an empty tuple (logged) when drawing fails, so a
    report is never held back by its pictures."""
    figures = [
        ("daily-spend", daily_spend_figure(report), "Daily spend this week, stacked, with last week's total"),
        ("movers", movers_figure(report), "Change in spend per route against last week"),
        ("budgets", budget_figure(report), "Month-to-date spend and forecast against budget per team"),
    ]
    charts = []
    try:
        for name, figure, alt in figures:
            if figure is None:
                continue
            height = int(figure.layout.height or 300)
            charts.append(Chart(name, str(figure.layout.title.text), alt, renderer.png(figure, height=height)))
    except ChartsUnavailable as err:
        log.warning("weekly report without charts: %s", err)
        return ()
    return tuple(charts)
